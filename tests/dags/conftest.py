"""Fixtures for the DAG tests: the project's DagBag and a runner around ``dag.test()``.

Everything is real: the DAG files are parsed by Airflow's DagBag, runs go through ``dag.test()``
on the throwaway metadata DB (``airflow_db``), and tasks talk to a real sandbox over HTTP
(``gateway_conn``).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from payout_jobs.batch_file import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

PROJECT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = PROJECT / "dags"


@pytest.fixture(scope="session")
def dagbag(airflow_db: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert not bag.import_errors, bag.import_errors
    return bag


@dataclass
class RunResult:
    """What a user looks at after a run: its state, each task's state, and the wall time."""

    state: str
    tasks: dict[str, str]
    seconds: float
    run_id: str

    def mapped(self, task_id: str) -> list[str]:
        return [state for key, state in sorted(self.tasks.items()) if key.startswith(f"{task_id}[")]


@pytest.fixture
def run_dag(dagbag: Any) -> Callable[..., RunResult]:
    """Run a DAG with ``dag.test()``; ``logical_date`` fixes the run id (same date = same run)."""

    def run(
        dag_id: str, conf: dict[str, Any] | None = None, logical_date: datetime | None = None
    ) -> RunResult:
        dag = dagbag.get_dag(dag_id)
        started = time.monotonic()
        kwargs: dict[str, Any] = {"run_conf": {**dag.params.dump(), **(conf or {})}}
        if logical_date is not None:  # Airflow 3 names manual runs after run_after: fix both
            kwargs["logical_date"] = kwargs["run_after"] = logical_date
        dag_run = dag.test(**kwargs)
        seconds = time.monotonic() - started
        tasks = {
            (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state)
            for ti in dag_run.get_task_instances()
        }
        print(f"{dag_id}: {dag_run.state} in {seconds:.1f} s; tasks {tasks}")
        return RunResult(state=str(dag_run.state), tasks=tasks, seconds=seconds, run_id=dag_run.run_id)

    return run


@pytest.fixture
def read_report() -> Callable[[Path], tuple[list[dict[str, str]], dict[str, Any]]]:
    return _read_report


@pytest.fixture
def valid_rows() -> Callable[..., list[dict[str, str]]]:
    """Rows that pass every check: ``valid_rows(count, prefix="r")`` (test_usd, distinct amounts)."""
    return _valid_rows


@pytest.fixture
def write_batch() -> Callable[[Path, list[dict[str, str]]], Path]:
    return _write_batch


def _read_report(folder: Path) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The rows of report.csv and the summary.json of one batch folder."""
    with (folder / "report.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return rows, json.loads((folder / "summary.json").read_text())


def _valid_rows(count: int, prefix: str = "r") -> list[dict[str, str]]:
    return [
        {
            "service": "test_usd",
            "service_amount": f"{1 + i}.{i % 100:02d}",
            "fields_data": f"account:{4000000000 + i}",
            "reference_id": f"{prefix}-{i:04d}",
        }
        for i in range(count)
    ]


def _write_batch(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write a batch CSV in the vendor's format (plus the optional currency column)."""
    columns = [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


SAMPLES = PROJECT / "include" / "samples"


@pytest.fixture(autouse=True)
def payout_path_roots(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Allow pytest's temporary folders (and the samples) as ``PAYOUT_INPUT_DIRS`` /
    ``PAYOUT_OUTPUT_DIRS``, as a deployment allows its batch and report folders: the DAG tests
    write their batch files and reports under ``tmp_path``. Autouse, so that every DAG test,
    old and new, runs under real roots; a test of the roots themselves sets its own (the same
    ``monkeypatch``, so its values win and are undone after it)."""
    import os

    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("PAYOUT_INPUT_DIRS", os.pathsep.join([str(base), str(SAMPLES)]))
    monkeypatch.setenv("PAYOUT_OUTPUT_DIRS", str(base))
