"""What the Payouts view reads: the reports the payout DAGs write under ``PAYOUT_REPORTS_DIR``.

- batches: ``<reports>/<batch_id>/summary.json`` + ``report.csv`` (the latest view) and
  ``ledger.jsonl`` (reference -> invoice and run), see :mod:`payout_jobs.batch_ledger`;
- single payouts: ``<reports>/single_payouts/*.json`` (:mod:`payout_jobs.payout_records`);
- reconciliation: ``<reports>/reconciliation/<day>/summary.json`` + ``reconciliation.csv``.

Every path is built from a validated name and checked to stay inside the reports folder once
symlinks and ``..`` are resolved (:class:`PathRefused` otherwise). Every cell shown is passed
through :func:`payout_gateway.redaction.redact_text` (card-like numbers and IBANs masked), even
though the reports hold none.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payout_gateway.redaction import redact_text
from payout_jobs import settings
from payout_jobs.batch_ledger import LEDGER_FILE, BatchLedger
from payout_jobs.csv_safety import TEXT_MARKER
from payout_jobs.identity import BATCH_ID_PATTERN
from payout_jobs.payout_records import SINGLE_PAYOUTS_FOLDER

RECONCILIATION_FOLDER = "reconciliation"
#: Folders of the reports directory that are not batches.
NOT_BATCHES = frozenset({SINGLE_PAYOUTS_FOLDER, RECONCILIATION_FOLDER})
BATCH_FILES = frozenset({"report.csv", "summary.json"})
_DAY_PATTERN = re.compile(r"[0-9A-Za-z_:-]{1,64}")
#: Most rows one page lists (the CSV download has them all).
MAX_ROWS = 2000
BATCH_DAG_ID = "payout_batch"


class PathRefused(ValueError):
    """A name that would leave the reports folder, or is not a name this view reads."""


def reports_root() -> Path:
    """The reports folder, resolved."""
    return Path(settings.reports_dir()).resolve()


def _inside(root: Path, *parts: str) -> Path:
    path = root.joinpath(*parts).resolve()
    if path == root or not path.is_relative_to(root):
        raise PathRefused("the path leaves the reports folder")
    return path


def batch_folder(batch_id: str, root: Path | None = None) -> Path:
    """The folder of ``batch_id``; :class:`PathRefused` for anything but a batch id inside the reports."""
    if (
        not isinstance(batch_id, str)
        or not re.fullmatch(BATCH_ID_PATTERN, batch_id)
        or set(batch_id) == {"."}
        or batch_id in NOT_BATCHES
    ):
        raise PathRefused("not a batch id")
    return _inside(root or reports_root(), batch_id)


def batch_file(batch_id: str, name: str) -> Path:
    """``report.csv`` or ``summary.json`` of a batch (checked like :func:`batch_folder`)."""
    if name not in BATCH_FILES:
        raise PathRefused("not a report file")
    root = reports_root()
    folder = batch_folder(batch_id, root)
    return _inside(root, folder.relative_to(root).as_posix(), name)


def shown(value: Any) -> str:
    """A cell as the view shows it: text, spreadsheet marker removed, card-like numbers masked."""
    text = "" if value is None else str(value)
    return redact_text(text.removeprefix(TEXT_MARKER))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class Batch:
    """A batch's latest summary."""

    batch_id: str
    summary: dict[str, Any]
    modified: float

    @property
    def run_id(self) -> str:
        return shown(self.summary.get("run_id"))


def list_batches(limit: int = 50) -> list[Batch]:
    """The batches with a summary, most recently reported first."""
    root = reports_root()
    if not root.is_dir():
        return []
    found: list[Batch] = []
    for child in root.iterdir():
        try:
            folder = batch_folder(child.name, root)
        except PathRefused:
            continue
        summary_path = folder / "summary.json"
        summary = _read_json(summary_path) if summary_path.is_file() else None
        if summary is not None:
            found.append(Batch(child.name, summary, summary_path.stat().st_mtime))
    found.sort(key=lambda b: b.modified, reverse=True)
    return found[:limit]


def read_batch(batch_id: str) -> Batch | None:
    """One batch's summary (None when it has none)."""
    path = batch_file(batch_id, "summary.json")
    summary = _read_json(path) if path.is_file() else None
    return None if summary is None else Batch(batch_id, summary, path.stat().st_mtime)


@dataclass
class PayoutRow:
    """One payout as the view lists it (every value already through :func:`shown`)."""

    reference_id: str
    invoice_id: str
    status: str
    resolution: str
    amount: str
    processed_amount: str
    currency: str
    reason: str = ""
    batch_id: str = ""
    row: str = ""
    dag_id: str = ""
    run_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], **context: Any) -> PayoutRow:
        """From a report line or a record (every value through :func:`shown`); ``context`` adds
        the batch, row, DAG and run."""
        return cls(
            **{name: shown(values.get(name)) for name in ROW_FIELDS},
            **{k: v if k == "extra" else shown(v) for k, v in context.items()},
        )


#: The columns a report line and a single-payout record share.
ROW_FIELDS = (
    "reference_id", "invoice_id", "status", "resolution", "amount", "processed_amount", "currency",
)  # fmt: skip
#: The report.csv columns the view's own columns show (the others are listed as "more columns").
SHOWN_COLUMNS = frozenset({*ROW_FIELDS, "row", "reason"})


def batch_rows(batch: Batch) -> Iterator[PayoutRow]:
    """The rows of a batch's ``report.csv``, each with the run that sent it (from the ledger)."""
    root = reports_root()
    folder = batch_folder(batch.batch_id, root)
    runs = {}
    if (folder / LEDGER_FILE).is_file():
        for reference, entries in BatchLedger(folder, batch.batch_id).invoices_by_reference().items():
            runs[reference] = entries[-1].run_id
    report = _inside(root, batch.batch_id, "report.csv")
    if not report.is_file():
        return
    with report.open(newline="", encoding="utf-8", errors="replace") as handle:
        for count, line in enumerate(csv.DictReader(handle)):
            if count >= MAX_ROWS:
                return
            reference = shown(line.get("reference_id"))
            yield PayoutRow.from_mapping(
                line,
                reason=line.get("reason"),
                batch_id=batch.batch_id,
                row=line.get("row"),
                dag_id=BATCH_DAG_ID,
                run_id=runs.get(reference) or batch.run_id,
                extra={shown(k): shown(v) for k, v in line.items() if k and k not in SHOWN_COLUMNS},
            )


def single_payouts(limit: int = 200) -> list[PayoutRow]:
    """The recorded single payouts, most recent first."""
    folder = reports_root() / SINGLE_PAYOUTS_FOLDER
    if not folder.is_dir():
        return []
    files = sorted(
        (p for p in folder.glob("*.json") if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    rows = []
    for path in files[:limit]:
        record = _read_json(path)
        if record is None:
            continue
        rows.append(PayoutRow.from_mapping(record, dag_id=record.get("dag_id"), run_id=record.get("run_id")))
    return rows


@dataclass
class Reconciliation:
    """One reconciliation day: its summary and findings."""

    day: str
    summary: dict[str, Any]
    findings: list[dict[str, str]]


def reconciliations(limit: int = 10) -> list[Reconciliation]:
    """The latest reconciliation days (newest first) with their findings."""
    root = reports_root()
    folder = root / RECONCILIATION_FOLDER
    if not folder.is_dir():
        return []
    days = sorted(
        (p for p in folder.iterdir() if p.is_dir() and _DAY_PATTERN.fullmatch(p.name)),
        key=lambda p: p.name,
        reverse=True,
    )
    found = []
    for day in days[:limit]:
        try:
            summary_path = _inside(root, RECONCILIATION_FOLDER, day.name, "summary.json")
            csv_path = _inside(root, RECONCILIATION_FOLDER, day.name, "reconciliation.csv")
        except PathRefused:
            continue
        summary = _read_json(summary_path) or {}
        findings: list[dict[str, str]] = []
        if csv_path.is_file():
            with csv_path.open(newline="", encoding="utf-8", errors="replace") as handle:
                for count, line in enumerate(csv.DictReader(handle)):
                    if count >= MAX_ROWS:
                        break
                    findings.append({shown(k): shown(v) for k, v in line.items() if k})
        found.append(Reconciliation(day.name, summary, findings))
    return found
