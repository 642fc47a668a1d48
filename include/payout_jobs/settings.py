"""Where the payout DAGs read batch files and write reports (environment, with local defaults).

- ``PAYOUT_REPORTS_DIR``: batch reports (``<dir>/<batch_id>/``) and reconciliation outputs
  (``<dir>/reconciliation/<day>/``). Default ``$AIRFLOW_HOME/payout_reports``.
- ``PAYOUT_BATCH_DROP_DIR``: the folder the scheduled ``payout_batch`` runs take CSV files from
  (processed files move to ``<dir>/processed/``). Default ``$AIRFLOW_HOME/payout_batches/incoming``.

Read at parse time only to fill in param defaults: no network, no file access.
"""

from __future__ import annotations

import os
from pathlib import Path


def _airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


def reports_dir() -> str:
    """The default folder for reports."""
    return os.environ.get("PAYOUT_REPORTS_DIR") or str(_airflow_home() / "payout_reports")


def drop_dir() -> str:
    """The folder scheduled batch runs take files from."""
    return os.environ.get("PAYOUT_BATCH_DROP_DIR") or str(_airflow_home() / "payout_batches" / "incoming")


#: Rows per mapped chunk task: 10,000 rows -> 40 task instances.
DEFAULT_CHUNK_SIZE = 250
#: Requests in flight inside one chunk task.
DEFAULT_CHUNK_CONCURRENCY = 8


# ------------------------------------------------------------------------------- batch limits
#: Default ceiling on data rows per batch file. The vendor's own dashboard takes at most 1,000 rows
#: per CSV; we allow 100 times that, bounded so that a check, its report and XCom stay small.
DEFAULT_MAX_BATCH_ROWS = 100_000
#: Default ceiling on a batch file's size: 64 MiB, room for 100,000 rows of ~670 bytes.
DEFAULT_MAX_BATCH_BYTES = 64 * 1024 * 1024


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a positive whole number (bytes or rows)")
    return int(raw)


def max_batch_bytes() -> int:
    """Largest batch file accepted, in bytes (``PAYOUT_BATCH_MAX_BYTES``; default 64 MiB)."""
    return _positive_int("PAYOUT_BATCH_MAX_BYTES", DEFAULT_MAX_BATCH_BYTES)


def max_batch_rows() -> int:
    """Most data rows a batch file may have (``PAYOUT_BATCH_MAX_ROWS``; default 100,000)."""
    return _positive_int("PAYOUT_BATCH_MAX_ROWS", DEFAULT_MAX_BATCH_ROWS)
