"""A batch's folder of reports and its ledger of the references it paid.

``<output_dir>/<batch_id>/``:

- ``report.csv`` + ``summary.json``: the batch's latest view (every reference the batch ever paid);
- ``runs/<run>/report.csv`` + ``summary.json``: each report of each run, kept (a later run never
  replaces what an earlier one knew);
- ``ledger.jsonl``: one JSON line per reference sent (gateway reference -> invoice id, the row
  reference, the run), appended by every run's report in one write of whole lines;
- ``.lock``: held (``flock``) while a report reads the ledger and writes the latest view.

Only identities are stored: no amounts, no fields (card or account numbers).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from payout_jobs.csv_safety import TEXT_MARKER
from payout_jobs.identity import ITEM_SEPARATOR, ROW_REFERENCE_PATTERN
from payout_jobs.report_cells import INVOICE_ID_PATTERN

log = logging.getLogger(__name__)

LEDGER_FILE = "ledger.jsonl"
LOCK_FILE = ".lock"
RUNS_FOLDER = "runs"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class LedgerEntry:
    """One reference the batch sent and the invoice the gateway made for it."""

    reference_id: str
    invoice_id: str
    row_reference_id: str
    run_id: str
    row: int | None = None
    recorded_at: str = ""


def batch_folder(output_dir: Path | str, batch_id: str) -> Path:
    """``<output_dir>/<batch_id>``."""
    return Path(output_dir) / batch_id


def run_folder_name(run_id: str) -> str:
    """A file-system-safe, unique name for a run id (readable part + hash)."""
    readable = _UNSAFE.sub("-", run_id).strip("-.")[:60] or "run"
    return f"{readable}-{hashlib.sha256(run_id.encode('utf-8')).hexdigest()[:8]}"


def new_run_folder(folder: Path, run_id: str) -> Path:
    """A new, empty ``runs/<run>`` folder; a second report of the same run gets ``<run>.2`` ..."""
    base = folder / RUNS_FOLDER / run_folder_name(run_id)
    base.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 10_000):
        candidate = base if attempt == 1 else base.with_name(f"{base.name}.{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RuntimeError(f"too many reports kept for run {run_id} in {base.parent}")


@contextlib.contextmanager
def batch_lock(folder: Path) -> Iterator[None]:
    """Hold the batch folder's lock (exclusive, blocking) for the ``with`` block."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class BatchLedger:
    """The references a batch sent (``ledger.jsonl`` in its folder)."""

    def __init__(self, folder: Path, batch_id: str) -> None:
        self.folder = folder
        self.batch_id = batch_id
        self.path = folder / LEDGER_FILE

    def _valid(self, entry: LedgerEntry) -> bool:
        prefix = f"{self.batch_id}{ITEM_SEPARATOR}"
        return (
            entry.reference_id == prefix + entry.row_reference_id
            and re.fullmatch(ROW_REFERENCE_PATTERN, entry.row_reference_id) is not None
            and INVOICE_ID_PATTERN.fullmatch(entry.invoice_id) is not None
        )

    def entries(self) -> list[LedgerEntry]:
        """Every well-formed entry, in the order written (a torn or foreign line is skipped)."""
        if not self.path.exists():
            return self._from_legacy_report()
        found: list[LedgerEntry] = []
        skipped = 0
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
                entry = LedgerEntry(
                    reference_id=str(data["reference_id"]),
                    invoice_id=str(data["invoice_id"]),
                    row_reference_id=str(data["row_reference_id"]),
                    run_id=str(data.get("run_id") or ""),
                    row=int(data["row"]) if data.get("row") is not None else None,
                    recorded_at=str(data.get("recorded_at") or ""),
                )
            except (ValueError, KeyError, TypeError):
                skipped += 1
                continue
            if self._valid(entry):
                found.append(entry)
            else:
                skipped += 1
        if skipped:
            log.warning("Skipped %d unreadable line(s) of %s", skipped, self.path)
        return found

    def invoices_by_reference(self) -> dict[str, list[LedgerEntry]]:
        """reference -> its entries, one per distinct invoice id (first seen first)."""
        result: dict[str, list[LedgerEntry]] = {}
        for entry in self.entries():
            known = result.setdefault(entry.reference_id, [])
            if all(e.invoice_id != entry.invoice_id for e in known):
                known.append(entry)
        return result

    def record(self, entries: Iterable[LedgerEntry]) -> int:
        """Append the entries not in the ledger yet, in one write of whole lines; return how many."""
        existing = self.entries()
        known = {(e.reference_id, e.invoice_id) for e in existing}
        now = datetime.now(UTC).isoformat(timespec="seconds")
        # The first write of a batch reported before the ledger existed keeps what it knew.
        new: list[LedgerEntry] = [] if self.path.exists() else list(existing)
        for entry in entries:
            key = (entry.reference_id, entry.invoice_id)
            if key in known or not self._valid(entry):
                continue
            known.add(key)
            new.append(LedgerEntry(**{**asdict(entry), "recorded_at": entry.recorded_at or now}))
        if not new:
            return 0
        data = "".join(json.dumps(asdict(e), sort_keys=True) + "\n" for e in new).encode("utf-8")
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(new)

    def _from_legacy_report(self) -> list[LedgerEntry]:
        """Entries from a latest report written before the ledger existed (its invoice ids)."""
        legacy = self.folder / "report.csv"
        if not legacy.exists():
            return []
        prefix = f"{self.batch_id}{ITEM_SEPARATOR}"
        found = []
        with legacy.open(newline="", encoding="utf-8") as handle:
            for line in csv.DictReader(handle):
                reference = (line.get("reference_id") or "").removeprefix(TEXT_MARKER)
                invoice_id = (line.get("invoice_id") or "").removeprefix(TEXT_MARKER)
                if not reference.startswith(prefix) or not invoice_id or line.get("status") == "conflict":
                    continue
                entry = LedgerEntry(reference, invoice_id, reference[len(prefix) :], "earlier report")
                if self._valid(entry):
                    found.append(entry)
        return found
