"""The steps of the ``payout_batch`` DAG, as plain functions (the DAG file only wires them).

1. :func:`resolve_batch`: which file, which batch id (see :mod:`payout_jobs.identity`).
2. :func:`check_and_plan`: check every row against the gateway's services; plan the chunks.
3. :func:`payout_jobs.chunks.run_chunk` per chunk (mapped), then a sensor per chunk.
4. :func:`make_report`: report.csv + summary.json from what the chunks and sensors returned,
   reading the gateway for anything they could not tell (a chunk that crashed, a wait that ran out).
5. :func:`verdict`: fail the run when a row was rejected or a payout did not succeed.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypedDict

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from payout_jobs import settings
from payout_jobs.batch_file import BatchFileError, file_digest, read_rows
from payout_jobs.batch_report import build_lines, summary_table, write_report
from payout_jobs.batch_validation import check_batch
from payout_jobs.chunks import ChunkSpec, plan_chunks
from payout_jobs.identity import BATCH_ID_PATTERN, dropped_batch_id, manual_batch_id

log = logging.getLogger(__name__)
PROCESSED_FOLDER = "processed"
READ_CONCURRENCY = 8


class BatchInfo(TypedDict):
    """The batch's identity and check results (XCom: no fields, no card data)."""

    batch_id: str
    batch_file: str
    file_digest: str
    currency: str
    output_dir: str
    from_drop_folder: bool
    total_rows: int
    rejected: list[list[Any]]


class NoBatchFile(Exception):
    """No ``batch_file`` was given and the drop folder is empty: nothing to do this run."""


def oldest_dropped_file(drop_dir: Path) -> Path | None:
    """The oldest regular ``*.csv`` file waiting in the drop folder (by modification time, then
    name). Symbolic links are not taken (a warning names them): copy or move the file in."""
    if not drop_dir.is_dir():
        return None
    files = []
    for path in drop_dir.glob("*.csv"):
        if path.is_symlink():
            log.warning("Drop folder: %s is a symbolic link and is not taken; copy the file in", path.name)
        elif path.is_file():
            files.append(path)
    return min(files, key=lambda p: (p.stat().st_mtime, p.name)) if files else None


def resolve_batch(params: Mapping[str, Any], run_id: str) -> BatchInfo:
    """The file and batch id of this run.

    ``batch_file`` given: that file. Else the oldest file in the drop folder (none: the run is
    skipped). A file of the drop folder is identified by its name whatever run picks it up;
    another file by its name and this run (unless ``batch_id`` is given). See
    :mod:`payout_jobs.identity` for why the content is not part of the id.

    Before anything is read: the file must be inside a folder of ``PAYOUT_INPUT_DIRS`` and the
    report folder inside one of ``PAYOUT_OUTPUT_DIRS`` (symlinks and ``..`` resolved), else the
    task fails naming the param and the setting.
    """
    drop_dir = Path(settings.drop_dir())
    given = (params.get("batch_file") or "").strip()
    batch_id = (params.get("batch_id") or "").strip()
    if batch_id and (not re.fullmatch(BATCH_ID_PATTERN, batch_id) or batch_id in {".", ".."}):
        raise AirflowFailException("batch_id: must be 1-40 letters, digits, '_', '.' or '-' (not . or ..)")
    try:
        output_dir = settings.checked_output_dir(params.get("output_dir") or settings.reports_dir())
        picked = Path(given) if given else oldest_dropped_file(drop_dir)
        if picked is None:
            raise NoBatchFile(f"No batch file given and none waiting in {drop_dir}")
        path = settings.checked_input_file(picked, "batch_file" if given else "batch_file (drop folder)")
    except settings.PathNotAllowedError as exc:
        raise AirflowFailException(str(exc)) from None
    digest = file_digest(path)
    from_drop_folder = path.parent == drop_dir.resolve()
    if not batch_id:
        batch_id = dropped_batch_id(path.name) if from_drop_folder else manual_batch_id(path.name, run_id)
    currency = str(params.get("currency") or "USD").upper()
    return BatchInfo(
        batch_id=batch_id,
        batch_file=str(path),
        file_digest=digest,
        currency=currency,
        output_dir=str(output_dir),
        from_drop_folder=from_drop_folder,
        total_rows=0,
        rejected=[],
    )


def check_and_plan(info: BatchInfo, hook: Any, chunk_size: int) -> tuple[BatchInfo, list[ChunkSpec]]:
    """Check every row (services from the gateway's prerequest); plan chunks of the valid rows."""

    def services(currency: str, amount: str) -> Mapping[str, Any]:
        return hook.prerequest(currency, amount).services

    try:
        result = check_batch(read_rows(info["batch_file"]), info["batch_id"], info["currency"], services)
    except BatchFileError as exc:
        raise AirflowFailException(f"batch_file: {exc}") from None
    info = BatchInfo(
        **{
            **info,
            "total_rows": result.total_rows,
            "rejected": sorted([n, r] for n, r in result.rejected.items()),
        }
    )
    chunks = plan_chunks(
        result.valid_rows,
        chunk_size,
        batch_id=info["batch_id"],
        batch_file=info["batch_file"],
        digest=info["file_digest"],
        currency=info["currency"],
    )
    log.info(
        "Batch %s (%s): %d rows, %d valid in %d chunk(s) of up to %d, %d rejected",
        info["batch_id"],
        Path(info["batch_file"]).name,
        result.total_rows,
        len(result.valid_rows),
        len(chunks),
        chunk_size,
        len(result.rejected),
    )
    for number, reason in info["rejected"][:50]:
        log.warning("Row %s rejected (not sent): %s", number, reason)
    return info, chunks


def per_thread(factory: Callable[[], Any]) -> Callable[[], Any]:
    """A getter that makes one object per thread with ``factory`` (hooks hold a requests session)."""
    local = threading.local()

    def get() -> Any:
        if not hasattr(local, "value"):
            local.value = factory()
        return local.value

    return get


def _parallel(items: Sequence[str], read: Callable[[str], Any]) -> dict[str, Any]:
    if not items:
        return {}
    with ThreadPoolExecutor(max_workers=READ_CONCURRENCY, thread_name_prefix="payout-report") as pool:
        return dict(zip(items, pool.map(read, items), strict=True))


def make_report(
    info: BatchInfo,
    chunk_invoices: Iterable[Sequence[Sequence[Any]]],
    chunk_errors: Iterable[Sequence[Sequence[Any]]],
    waited: Iterable[Sequence[Mapping[str, Any]] | None],
    hook_factory: Callable[[], Any],
    run_id: str,
) -> dict[str, Any]:
    """Write the report; return the summary. Statuses come from the sensors' results, else from a
    fresh read of the gateway (by id, or by reference for rows no chunk reported)."""
    sent = {int(n): str(i) for pairs in chunk_invoices if pairs for n, i in pairs}
    refused = {int(n): str(r) for pairs in chunk_errors if pairs for n, r in pairs}
    invoices: dict[str, Mapping[str, Any]] = {
        str(i["id"]): i for batch in waited if batch for i in batch if isinstance(i, Mapping)
    }
    hook = per_thread(hook_factory)

    missing = [i for i in sent.values() if i not in invoices]
    if missing:
        log.info("Reading %d invoice(s) the sensors did not report", len(missing))
        invoices.update(_parallel(missing, lambda i: hook().get_invoice(i).summary()))

    def find(references: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        refs = list(references)
        log.info("Looking up %d row(s) no chunk reported, by reference", len(refs))

        def lookup(reference: str) -> Mapping[str, Any] | None:
            invoice = hook().find_invoice_by_reference(reference)
            return invoice.summary() if invoice else None

        return {r: s for r, s in _parallel(refs, lookup).items() if s}

    lines = build_lines(
        info["batch_file"],
        info["batch_id"],
        info["currency"],
        {int(n): str(r) for n, r in info["rejected"]},
        sent,
        refused,
        invoices,
        find,
    )
    meta = {
        "batch_file": info["batch_file"],
        "file_sha256": info["file_digest"],
        "currency": info["currency"],
        "run_id": run_id,
    }
    summary = write_report(info["output_dir"], info["batch_id"], lines, meta)
    log.info("\n%s", summary_table(summary))
    if info["from_drop_folder"]:
        move_to_processed(Path(info["batch_file"]), info["batch_id"])
    return summary


def move_to_processed(path: Path, batch_id: str) -> None:
    """Move a reported drop-folder file to ``processed/`` so that scheduled runs do not pick it again
    (if they did, the same batch id would re-attach and send nothing)."""
    if not path.exists():
        return
    target = path.parent / PROCESSED_FOLDER / f"{batch_id}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), target)
    log.info("Moved %s to %s", path.name, target)


def report_from_xcom(ti: Any, run_id: str, hook_factory: Callable[[], Any]) -> dict[str, Any]:
    """The report task: gather what ``check_batch`` and the chunk tasks returned, write the report.

    Runs whatever happened upstream. No batch (check_batch failed) fails; nothing to do (empty
    drop folder) skips.
    """
    batch = ti.xcom_pull(task_ids="check_batch", key="batch")
    if not batch:
        reason = ti.xcom_pull(task_ids="check_batch", key="nothing_to_do")
        if reason:
            raise AirflowSkipException(reason)
        raise AirflowFailException("check_batch did not finish, so no row was sent; see its log")
    return make_report(
        batch,
        ti.xcom_pull(task_ids=["chunk.execute"], key="invoices"),
        ti.xcom_pull(task_ids=["chunk.execute"], key="errors"),
        ti.xcom_pull(task_ids=["chunk.wait"]),
        hook_factory,
        run_id,
    )


def check_task(params: Mapping[str, Any], ti: Any, run_id: str, hook: Any) -> list[ChunkSpec]:
    """The check task: resolve the batch, check its rows, push it (key ``batch``), return the chunks.

    An empty drop folder pushes ``nothing_to_do`` and returns no chunks (the run then skips).
    """
    try:
        info = resolve_batch(params, run_id)
    except NoBatchFile as exc:
        log.info("%s", exc)
        ti.xcom_push(key="nothing_to_do", value=str(exc))
        return []
    info, chunks = check_and_plan(info, hook, int(params["chunk_size"]))
    ti.xcom_push(key="batch", value=info)
    return chunks


def verdict(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Log the summary table; fail (no retry) when any row was rejected or did not succeed."""
    log.info("\n%s", summary_table(summary))
    if summary["failing_rows"]:
        raise AirflowFailException(
            f"Batch {summary['batch_id']}: {summary['failing_rows']} of {summary['rows']} row(s) were "
            f"rejected or did not succeed (counts: {summary['counts']}). Report: {summary['report_csv']}. "
            f"To retry after fixing rows, run the same file with batch_id={summary['batch_id']}: "
            "rows already paid re-attach to their invoices and are not paid again (a row that failed "
            "for good stays failed: pay it again under a new row reference_id)."
        )
    return {"batch_id": summary["batch_id"], "rows": summary["rows"], "counts": summary["counts"]}
