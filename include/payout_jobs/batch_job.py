"""The steps of the ``payout_batch`` DAG, as plain functions (the DAG file only wires them).

1. :func:`resolve_batch`: which file, which batch id (see :mod:`payout_jobs.identity`).
2. :func:`check_and_plan`: check every row against the gateway's services; plan the chunks.
3. :func:`payout_jobs.chunks.run_chunk` per chunk (mapped), then a sensor per chunk.
4. :func:`make_report`: report.csv + summary.json from what the chunks and sensors returned,
   reading the gateway for anything they could not tell (a chunk that crashed, a wait that ran out);
   always written (a failed read is an ``unknown`` row). Each run's report is kept under ``runs/``;
   the batch's latest view also holds what earlier runs paid (see :mod:`payout_jobs.batch_ledger`).
5. :func:`verdict`: fail the run when a row was rejected, did not succeed, could not be read or
   needs a person (a reference conflict).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from payout_gateway.exceptions import PayoutDuplicateReferenceError

from payout_jobs import approval, settings
from payout_jobs.atomic_files import atomic_write
from payout_jobs.batch_file import (
    BatchFileError,
    BatchRow,
    count_rows,
    file_digest,
    parse_properties,
    read_rows,
)
from payout_jobs.batch_ledger import BatchLedger, LedgerEntry, batch_folder, batch_lock, new_run_folder
from payout_jobs.batch_report import (
    Conflict,
    InvoiceRead,
    ReferenceRead,
    ReportFacts,
    ReportLine,
    Unreadable,
    build_lines,
    covered_references,
    earlier_lines,
    references_to_look_up,
    summary_table,
    write_report,
)
from payout_jobs.batch_requests import row_currency
from payout_jobs.batch_validation import check_batch
from payout_jobs.chunks import ChunkSpec, plan_chunks
from payout_jobs.gateway_client import GatewayFactory, PayoutGateway, per_thread
from payout_jobs.identity import BATCH_ID_PATTERN, dropped_batch_id, item_reference, manual_batch_id
from payout_jobs.report_cells import reference_cell

log = logging.getLogger(__name__)
PROCESSED_FOLDER = "processed"
#: Drop-folder files whose batch was not approved (move one back into the drop folder to ask again).
NOT_APPROVED_FOLDER = "not_approved"
CHECKS_FOLDER = "checks"
READ_CONCURRENCY = 8
#: Rejected rows logged one by one by the check (all of them are in the check file and the report).
LOGGED_REJECTIONS = 50


class BatchInfo(TypedDict):
    """The batch's identity and check results (XCom: no fields, no card data, no per-row lists).

    The rejected rows are in ``rejected_file`` (read them with :func:`rejected_rows`), so that the
    XCom stays a few hundred bytes whatever the file's size.
    """

    batch_id: str
    batch_file: str
    file_digest: str
    currency: str
    output_dir: str
    from_drop_folder: bool
    total_rows: int
    #: How many rows the check rejected, and the JSON file listing them (row -> reason).
    rejected_count: NotRequired[int]
    rejected_file: NotRequired[str]
    #: Before the check: empty. (XComs of older versions carried ``[row, reason]`` pairs here.)
    rejected: NotRequired[list[list[Any]]]


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


def check_file_path(info: BatchInfo, run_id: str) -> Path:
    """Where the check of this run writes its rejected rows: ``<output>/<batch>/checks/<run hash>.json``."""
    run_hash = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:16]
    return Path(info["output_dir"]) / info["batch_id"] / CHECKS_FOLDER / f"{run_hash}.json"


def rejected_rows(info: BatchInfo) -> dict[int, str]:
    """The rows the check rejected (row -> reason), from the check's file."""
    if info.get("rejected_file"):
        document = json.loads(Path(info["rejected_file"]).read_text(encoding="utf-8"))
        return {int(n): str(r) for n, r in document["rejected"].items()}
    return {int(n): str(r) for n, r in info.get("rejected") or []}


def check_and_plan(
    info: BatchInfo, hook: PayoutGateway, chunk_size: int, run_id: str = ""
) -> tuple[BatchInfo, list[ChunkSpec]]:
    """Check every row (services from the gateway's prerequest); plan chunks of the valid rows.

    The whole file is read once first (size, encoding, header, CSV syntax, row limit), so that a
    file-level problem stops the batch before any request. The rejected rows go to the check file
    (:func:`check_file_path`); the returned info holds their count and that file's path.
    """

    def services(currency: str, amount: str) -> Mapping[str, Any]:
        return hook.prerequest(currency, amount).services

    try:
        count_rows(info["batch_file"])
        result = check_batch(read_rows(info["batch_file"]), info["batch_id"], info["currency"], services)
    except BatchFileError as exc:
        raise AirflowFailException(f"batch_file: {exc}. Nothing was sent") from None
    check_file = check_file_path(info, run_id)
    check = {
        "batch_id": info["batch_id"],
        "file_sha256": info["file_digest"],
        "run_id": run_id,
        "total_rows": result.total_rows,
        "rejected": {str(n): r for n, r in sorted(result.rejected.items())},
    }
    atomic_write(check_file, lambda handle: json.dump(check, handle, indent=1, sort_keys=True))
    fields = {k: v for k, v in info.items() if k != "rejected"}
    info = BatchInfo(
        **{
            **fields,
            "total_rows": result.total_rows,
            "rejected_count": len(result.rejected),
            "rejected_file": str(check_file),
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
        "Batch %s (%s): %d rows, %d valid in %d chunk(s) of up to %d, %d rejected (listed in %s)",
        info["batch_id"],
        Path(info["batch_file"]).name,
        result.total_rows,
        len(result.valid_rows),
        len(chunks),
        chunk_size,
        len(result.rejected),
        check_file,
    )
    for number, reason in sorted(result.rejected.items())[:LOGGED_REJECTIONS]:
        log.warning("Row %s rejected (not sent): %s", number, reason)
    return info, chunks


def approval_request(info: BatchInfo, valid_rows: Sequence[int]) -> approval.ApprovalRequest:
    """What the approver is shown: the valid rows' totals and largest payouts (masked recipients),
    the rejected count, the file and its digest (the rows are read again: nothing kept in memory)."""
    payouts = (
        approval.payout(
            row.row,
            reference_cell(info["batch_id"], row.reference_id),
            row.service_amount,
            row_currency(row, info["currency"]),
            row.service,
            parse_properties(row.fields_data, "fields_data"),
        )
        for row in read_rows(info["batch_file"], only=valid_rows)
    )
    return approval.build_request(
        kind="batch",
        batch_id=info["batch_id"],
        payouts=payouts,
        rejected=int(info.get("rejected_count") or 0),
        file=Path(info["batch_file"]).name,
        file_sha256=info["file_digest"],
    )


def _parallel(items: Sequence[str], read: Callable[[str], Any]) -> dict[str, Any]:
    """``read`` every item, ``READ_CONCURRENCY`` at a time; a read that raises gives
    :class:`Unreadable` (its error's class name) for that item, and the others go on."""
    if not items:
        return {}

    def attempt(item: str) -> Any:
        try:
            return read(item)
        except Exception as exc:
            return Unreadable(type(exc).__name__)

    with ThreadPoolExecutor(max_workers=READ_CONCURRENCY, thread_name_prefix="payout-report") as pool:
        results = dict(zip(items, pool.map(attempt, items), strict=True))
    failed = Counter(r.why for r in results.values() if isinstance(r, Unreadable))
    if failed:
        log.warning(
            "%d of %d read(s) of the gateway failed: %s", sum(failed.values()), len(items), dict(failed)
        )
    return results


def _chunk_facts(
    chunk_invoices: Iterable[Sequence[Sequence[Any]] | None],
    chunk_errors: Iterable[Sequence[Sequence[Any]] | None],
    waited: Iterable[Sequence[Mapping[str, Any]] | None],
) -> tuple[dict[int, str], dict[int, str], dict[int, Conflict], dict[str, InvoiceRead]]:
    """Sent (row -> invoice id), refused (row -> reason), conflicts and the sensors' invoices."""
    sent = {int(n): str(i) for pairs in chunk_invoices if pairs for n, i in pairs}
    refused: dict[int, str] = {}
    conflicts: dict[int, Conflict] = {}
    for entries in chunk_errors:
        for entry in entries or ():
            if len(entry) > 2 and isinstance(entry[2], Mapping):
                conflicts[int(entry[0])] = Conflict.from_json(entry[2])
            else:
                refused[int(entry[0])] = str(entry[1])
    invoices: dict[str, InvoiceRead] = {
        str(i["id"]): i for batch in waited if batch for i in batch if isinstance(i, Mapping)
    }
    return sent, refused, conflicts, invoices


def _batch_rows(info: BatchInfo) -> list[BatchRow]:
    """The batch file's rows (a drop-folder file may already be in ``processed/``)."""
    path = Path(info["batch_file"])
    if not path.exists() and info["from_drop_folder"]:
        path = path.parent / PROCESSED_FOLDER / f"{info['batch_id']}.csv"
    return list(read_rows(path))


def make_report(
    info: BatchInfo | None,
    chunk_invoices: Iterable[Sequence[Sequence[Any]] | None],
    chunk_errors: Iterable[Sequence[Sequence[Any]] | None],
    waited: Iterable[Sequence[Mapping[str, Any]] | None],
    hook_factory: GatewayFactory,
    run_id: str,
    nothing_to_do: str | None = None,
    approval_decision: Mapping[str, Any] | bool | None = False,
) -> dict[str, Any]:
    """The report task: write this run's report and the batch's latest view from what
    ``check_batch`` and the chunk tasks returned (the DAG passes them); return the latest view's
    summary. No batch (check_batch failed) fails; nothing to do (``nothing_to_do``: an empty drop
    folder) skips.

    ``approval_decision``: what the approval task returned (None: it did not finish, so the batch
    was not approved); ``False`` (the default): the DAG has no approval step. When the batch
    was not approved, a row the gateway has no invoice for is ``not_approved`` (not ``not_sent``),
    and ``summary.json`` holds the decision under ``approval``.

    Statuses come from the sensors' results, else from a fresh read of the gateway (by id, or by
    reference for rows no chunk reported). A read that fails makes its row ``unknown`` (the run is
    red); it never stops the report. Every invoice the batch made is recorded in the batch ledger
    first; the latest view adds the ledger's references this file does not hold (read again).
    """
    if not info:
        if nothing_to_do:
            raise AirflowSkipException(nothing_to_do)
        raise AirflowFailException("check_batch did not finish, so no row was sent; see its log")
    approval_decision = _approval_or_unfinished(approval_decision)
    batch_id = info["batch_id"]
    rows = _batch_rows(info)
    rejected = rejected_rows(info)
    sent, refused, conflicts, invoices = _chunk_facts(chunk_invoices, chunk_errors, waited)
    references = {row.row: reference_cell(batch_id, row.reference_id) for row in rows}
    hook = per_thread(hook_factory)
    folder = batch_folder(info["output_dir"], batch_id)
    ledger = BatchLedger(folder, batch_id)

    def entry(row: BatchRow, invoice_id: str) -> LedgerEntry:
        return LedgerEntry(
            item_reference(batch_id, row.reference_id), invoice_id, row.reference_id, run_id, row.row
        )

    def read_invoice(invoice_id: str) -> Mapping[str, Any]:
        return hook().get_invoice(invoice_id).summary()

    def lookup(reference: str) -> ReferenceRead:
        try:
            invoice = hook().find_invoice_by_reference(reference)
        except PayoutDuplicateReferenceError as exc:
            return Conflict(invoice_ids=tuple(exc.invoice_ids), duplicate=True)
        return invoice.summary() if invoice else None

    with batch_lock(folder):
        ledger.record(entry(row, sent[row.row]) for row in rows if row.row in sent and references[row.row])
        known = ledger.invoices_by_reference()
        facts = ReportFacts(sent=sent, refused=refused, conflicts=conflicts, invoices=invoices)
        to_find = references_to_look_up(rows, batch_id, rejected, facts)
        # A row no chunk reported but an earlier run sent: read its invoice by the ledger's id.
        for row in rows:
            reference = references[row.row]
            if reference in to_find and len(known.get(reference, ())) == 1:
                sent[row.row] = known[reference][0].invoice_id
        to_find = [r for r in to_find if len(known.get(r, ())) != 1]
        if to_find:
            log.info("Looking up %d row(s) no chunk reported, by reference", len(to_find))
        facts.by_reference = _parallel(to_find, lookup)
        found = {
            r: str(s["id"]) for r, s in facts.by_reference.items() if isinstance(s, Mapping) and s.get("id")
        }
        ledger.record(entry(row, found[references[row.row]]) for row in rows if references[row.row] in found)

        lookups = [f for f in facts.by_reference.values() if isinstance(f, Conflict)]
        conflict_ids = [i for c in [*conflicts.values(), *lookups] for i in c.invoice_ids]
        to_read = list(dict.fromkeys(i for i in [*sent.values(), *conflict_ids] if i not in invoices))
        if to_read:
            log.info("Reading %d invoice(s) the sensors did not report", len(to_read))
        invoices.update(_parallel(to_read, read_invoice))
        not_approved = (
            f"not approved: {approval_decision['reason']}"
            if approval_decision and not approval_decision.get("approved")
            else None
        )
        lines = build_lines(rows, batch_id, info["currency"], rejected, facts, not_approved)

        known = ledger.invoices_by_reference()
        covered = covered_references(lines)
        earlier_ids = [e.invoice_id for r, es in known.items() if r not in covered for e in es]
        if earlier_ids:
            log.info("Reading %d invoice(s) that earlier runs of batch %s made", len(earlier_ids), batch_id)
        invoices.update(_parallel([i for i in dict.fromkeys(earlier_ids) if i not in invoices], read_invoice))
        earlier = earlier_lines(known, covered, invoices)
        summary = _write_reports(info, run_id, folder, lines, earlier, ledger, approval_decision)
    log.info("\n%s", summary_table(summary))
    if info["from_drop_folder"]:
        move_to_processed(
            Path(info["batch_file"]), batch_id, NOT_APPROVED_FOLDER if not_approved else PROCESSED_FOLDER
        )
    return summary


def _write_reports(
    info: BatchInfo,
    run_id: str,
    folder: Path,
    lines: list[ReportLine],
    earlier: list[ReportLine],
    ledger: BatchLedger,
    approval_decision: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """This run's report (its file's rows) under ``runs/``, then the latest view (all the batch)."""
    meta = {
        "batch_id": info["batch_id"],
        "batch_file": info["batch_file"],
        "file_sha256": info["file_digest"],
        "currency": info["currency"],
        "run_id": run_id,
        **({"approval": dict(approval_decision)} if approval_decision else {}),
    }
    run = write_report(new_run_folder(folder, run_id), lines, meta)
    latest_meta = {
        **meta,
        "run_report_csv": run["report_csv"],
        "run_summary_json": run["summary_json"],
        "ledger": str(ledger.path),
    }
    return write_report(folder, [*lines, *earlier], latest_meta)


def move_to_processed(path: Path, batch_id: str, folder: str = PROCESSED_FOLDER) -> None:
    """Move a reported drop-folder file to ``processed/`` (or ``not_approved/``) so that scheduled
    runs do not pick it again (if they did, the same batch id would re-attach and send nothing).
    A file that was not approved can be moved back into the drop folder to ask again."""
    if not path.exists():
        return
    target = path.parent / folder / f"{batch_id}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), target)
    log.info("Moved %s to %s", path.name, target)


def _approval_or_unfinished(decision: Mapping[str, Any] | bool | None) -> Mapping[str, Any] | None:
    """The approval decision; an approval task that did not finish means "not approved"."""
    if decision is False:
        return None
    if not decision:
        return approval.decision(
            approval.NOT_APPROVED, "the approval task did not finish (see approve_batch's log)"
        )
    return decision


def check_task(params: Mapping[str, Any], ti: Any, run_id: str, hook: PayoutGateway) -> list[ChunkSpec]:
    """The check task: resolve the batch, check its rows, push it (key ``batch``), return the chunks.

    An empty drop folder pushes ``nothing_to_do`` and returns no chunks (the run then skips).
    """
    try:
        info = resolve_batch(params, run_id)
    except NoBatchFile as exc:
        log.info("%s", exc)
        ti.xcom_push(key="nothing_to_do", value=str(exc))
        # an empty request (nothing to pay: no question asked); a None XCom reads as missing
        ti.xcom_push(key="approval", value={})
        return []
    except BatchFileError as exc:  # e.g. beyond the byte limit: refused before it is read
        raise AirflowFailException(f"batch_file: {exc}. Nothing was sent") from None
    info, chunks = check_and_plan(info, hook, int(params["chunk_size"]), run_id)
    ti.xcom_push(key="batch", value=info)
    ti.xcom_push(key="approval", value=approval_request(info, [n for c in chunks for n in c["rows"]]))
    return chunks


def verdict(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Log the summary table; fail (no retry) when any row was rejected, did not succeed, could not
    be read or needs a person."""
    log.info("\n%s", summary_table(summary))
    decision = summary.get("approval") or {}
    if decision and not decision.get("approved"):
        raise AirflowFailException(
            f"Batch {summary['batch_id']} was not approved ({decision.get('reason')}): this run sent "
            f"nothing. Report: {summary['report_csv']}. To pay it, trigger it again and have an "
            "approver approve it."
        )
    if summary["failing_rows"]:
        raise AirflowFailException(
            f"Batch {summary['batch_id']}: {summary['failing_rows']} of {summary['rows']} row(s) were "
            "rejected, did not succeed, could not be read or need a person "
            f"(counts: {summary['counts']}). Report: {summary['report_csv']}. "
            f"To retry after fixing rows, run the same file with batch_id={summary['batch_id']}: "
            "rows already paid re-attach to their invoices and are not paid again (a row that failed "
            "for good stays failed: pay it again under a new row reference_id)."
        )
    return {"batch_id": summary["batch_id"], "rows": summary["rows"], "counts": summary["counts"]}
