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
