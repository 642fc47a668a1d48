"""Where the payout DAGs read batch files and write reports (environment, with local defaults).

- ``PAYOUT_REPORTS_DIR``: batch reports (``<dir>/<batch_id>/``) and reconciliation outputs
  (``<dir>/reconciliation/<day>/``). Default ``$AIRFLOW_HOME/payout_reports``.
- ``PAYOUT_BATCH_DROP_DIR``: the folder the scheduled ``payout_batch`` runs take CSV files from
  (processed files move to ``<dir>/processed/``). Default ``$AIRFLOW_HOME/payout_batches/incoming``.
- ``PAYOUT_INPUT_DIRS``: the folders batch files may be read from (``os.pathsep``-separated).
  Default: the drop folder and the project's ``include/samples``.
- ``PAYOUT_OUTPUT_DIRS``: the folders reports may be written to (``os.pathsep``-separated).
  Default: the reports folder.
- ``PAYOUT_SERVICES_FILE``: the services the gateway offered, cached by the tasks that asked it
  (suggestions in the trigger form; see :mod:`payout_jobs.offered_services`). Default
  ``$AIRFLOW_HOME/payout_services.json``.

Whoever may trigger a DAG chooses ``batch_file`` and ``output_dir``: :func:`checked_input_file`
and :func:`checked_output_dir` refuse any path that is not inside one of these roots once
symlinks and ``..`` are resolved. Read at parse time only to fill in param defaults: no network;
the one file read at parse time is the small services cache (when present).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

INPUT_DIRS_ENV = "PAYOUT_INPUT_DIRS"
OUTPUT_DIRS_ENV = "PAYOUT_OUTPUT_DIRS"


def _airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


def reports_dir() -> str:
    """The default folder for reports."""
    return os.environ.get("PAYOUT_REPORTS_DIR") or str(_airflow_home() / "payout_reports")


def services_file() -> Path:
    """The cached list of the gateway's services that the trigger form offers as suggestions:
    ``PAYOUT_SERVICES_FILE``, default ``$AIRFLOW_HOME/payout_services.json``."""
    return Path(os.environ.get("PAYOUT_SERVICES_FILE") or _airflow_home() / "payout_services.json")


def drop_dir() -> str:
    """The folder scheduled batch runs take files from."""
    return os.environ.get("PAYOUT_BATCH_DROP_DIR") or str(_airflow_home() / "payout_batches" / "incoming")


def samples_dirs() -> list[Path]:
    """The project's ``include/samples``: beside the ``payout_jobs`` package (source checkout,
    editable install), and ``$AIRFLOW_HOME/include/samples`` (the Docker image mounts it there)."""
    beside_package = Path(__file__).resolve().parent.parent / "samples"
    in_home = _airflow_home() / "include" / "samples"
    return [beside_package] + ([in_home] if in_home.is_dir() and in_home != beside_package else [])


def _dirs(variable: str, default: Sequence[Path | str]) -> list[Path]:
    """The folders listed in ``variable`` (``os.pathsep``-separated; empty entries ignored), else
    ``default``; each resolved (symlinks and ``..``), whether it exists yet or not."""
    listed = [p.strip() for p in os.environ.get(variable, "").split(os.pathsep) if p.strip()]
    return [Path(p).resolve() for p in (listed or default)]


def input_dirs() -> list[Path]:
    """Where batch files may be read from: ``PAYOUT_INPUT_DIRS``, default the drop folder and
    ``include/samples``."""
    return _dirs(INPUT_DIRS_ENV, [drop_dir(), *samples_dirs()])


def output_dirs() -> list[Path]:
    """Where reports may be written: ``PAYOUT_OUTPUT_DIRS``, default the reports folder."""
    return _dirs(OUTPUT_DIRS_ENV, [reports_dir()])


class PathNotAllowedError(ValueError):
    """A path outside the configured roots (the message names the param and the setting)."""


def is_inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether resolved ``path`` is one of resolved ``roots`` or below one (by path components,
    not by string prefix: ``/x/reports-evil`` is not inside ``/x/reports``)."""
    return any(path.is_relative_to(root) for root in roots)


def _checked(value: str | Path, param: str, variable: str, roots: Sequence[Path]) -> Path:
    text = str(value).strip()
    if not text:
        raise PathNotAllowedError(f"{param}: is empty")
    resolved = Path(text).resolve(strict=False)
    if not is_inside(resolved, roots):
        allowed = ", ".join(str(r) for r in roots) or "none"
        raise PathNotAllowedError(
            f"{param}: not inside a folder allowed by {variable} (allowed: {allowed}); "
            "nothing was read or sent"
        )
    return resolved


def checked_input_file(value: str | Path, param: str = "batch_file") -> Path:
    """``value`` resolved, if inside a root of :func:`input_dirs` and an existing file; else
    :class:`PathNotAllowedError` (checked before existence, so that nothing outside the roots can
    be probed)."""
    path = _checked(value, param, INPUT_DIRS_ENV, input_dirs())
    if not path.is_file():
        raise PathNotAllowedError(f"{param}: does not exist or is not a file")
    return path.resolve(strict=True)


def checked_output_dir(value: str | Path, param: str = "output_dir") -> Path:
    """``value`` resolved, if inside a root of :func:`output_dirs` (it may not exist yet); else
    :class:`PathNotAllowedError`."""
    return _checked(value, param, OUTPUT_DIRS_ENV, output_dirs())


# ---------------------------------------------------------------------------------- time bounds
#: A row's nominal time in a chunk (its create and process with their reads and a few waits).
ROW_SECONDS = 30.0
#: The most one chunk try spends starting rows (then it stops; the rest are retried by Airflow).
CHUNK_MAX_SECONDS = 1800.0
#: Time left after the chunk's deadline for the requests in flight (each bounded by its timeout).
IN_FLIGHT_GRACE_SECONDS = 300.0


def chunk_time_budget(rows: int, concurrency: int) -> float:
    """Seconds a chunk try may spend starting rows, sized from the work: ``rows`` x
    :data:`ROW_SECONDS` / ``concurrency``, at least 60 s, at most :data:`CHUNK_MAX_SECONDS`.

    250 rows, 8 in flight: 938 s. A 429 storm slows every row down: the rows not started by then
    are reported unresolved and the chunk's retry re-attaches by reference."""
    return min(CHUNK_MAX_SECONDS, max(60.0, rows * ROW_SECONDS / max(1, concurrency)))


#: ``execution_timeout`` of every task (Airflow kills a try that runs longer; retries re-attach).
#: A chunk: its deadline plus the requests in flight.
CHUNK_TIMEOUT = timedelta(seconds=CHUNK_MAX_SECONDS + IN_FLIGHT_GRACE_SECONDS)
#: Reading and checking a file of up to 100,000 rows (ms each) plus the prerequests (one read per
#: currency, and per amount for services offered by amount), or reading a batch's invoices for
#: its report (8 at a time).
BATCH_FILE_TIMEOUT = timedelta(minutes=30)
#: One create or one process (with the reads that resolve an unknown outcome).
REQUEST_TIMEOUT = timedelta(minutes=10)
#: Walking the invoice list of up to 90 days back.
RECONCILE_TIMEOUT = timedelta(hours=1)
#: Tasks that only compute and log, or start a wait.
SHORT_TIMEOUT = timedelta(minutes=5)
#: How long a chunk's deferrable sensor waits for its payouts to be final (its own ``timeout``).
CHUNK_WAIT_SECONDS = 2 * 3600


def sensor_execution_timeout(wait_seconds: float) -> timedelta:
    """A sensor's ``execution_timeout``: its own ``timeout`` plus a margin (poke mode waits inside
    one try; deferrable mode only starts and ends the wait there)."""
    return timedelta(seconds=wait_seconds) + SHORT_TIMEOUT


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
