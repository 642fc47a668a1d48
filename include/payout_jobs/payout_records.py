"""Records of single payouts (``payout_by_reference``), for the Payouts view.

Batches keep their own reports (``<reports>/<batch_id>/report.csv`` + ``summary.json``). A single
payout's summary task writes one small JSON record here, whatever its outcome:
``<reports>/single_payouts/<safe reference>.json`` (one file per reference: a later run of the same
reference replaces it). A record holds the summary (ids, status, amounts as text: no fields, no
customer data) plus the DAG and run that made it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from payout_jobs import settings
from payout_jobs.atomic_files import atomic_write

SINGLE_PAYOUTS_FOLDER = "single_payouts"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
#: What a record keeps of a summary (:func:`payout_jobs.single_payout.summary_of`).
RECORD_KEYS = (
    "reference_id",
    "invoice_id",
    "status",
    "resolution",
    "outcome",
    "service",
    "currency",
    "amount",
    "processed_amount",
    "fee",
    "writeoff",
    "moderation_required",
)


def records_folder(reports_dir: Path | str | None = None) -> Path:
    """``<reports>/single_payouts`` (``PAYOUT_REPORTS_DIR`` by default)."""
    return Path(reports_dir or settings.reports_dir()) / SINGLE_PAYOUTS_FOLDER


def record_name(reference_id: str) -> str:
    """A file name for a reference: its safe characters and a hash (two references never share one)."""
    readable = _UNSAFE.sub("-", reference_id).strip("-.")[:80] or "payout"
    return f"{readable}-{hashlib.sha256(reference_id.encode('utf-8')).hexdigest()[:12]}.json"


def write_record(
    summary: Mapping[str, Any], dag_id: str, run_id: str, reports_dir: Path | str | None = None
) -> Path:
    """Write the record of one payout (atomically); return its path."""
    record = {key: summary.get(key) for key in RECORD_KEYS}
    record.update(dag_id=dag_id, run_id=run_id, recorded_at=datetime.now(UTC).isoformat(timespec="seconds"))
    reference = str(summary.get("reference_id") or summary["invoice_id"])
    path = records_folder(reports_dir) / record_name(reference)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: json.dump(record, handle, indent=2))
    return path
