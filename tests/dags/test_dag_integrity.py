"""Every DAG file imports cleanly, fast, and without touching the network; the DAGs have the
shape users rely on (schedules, params, asset outlet, chunking by mapping)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
DAG_IDS = {"payout_by_reference", "payout_batch", "payout_reconciliation"}

PARSE_BUDGET_S = 3.0  # per file, after the shared imports are warm
COLD_PARSE_BUDGET_S = 30.0  # a fresh interpreter parsing the whole folder


def test_every_dag_file_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == DAG_IDS
    for dag_id in DAG_IDS:
        assert dagbag.get_dag(dag_id).doc_md, f"{dag_id} has no documentation for the UI"


class _Listener:
    """A real TCP server that counts the connections it receives (it never answers)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


_connects: list[tuple[Any, ...]] = []
_recording = threading.Event()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording.is_set() and event == "socket.connect":
        _connects.append(args[1:])


sys.addaudithook(_audit)


def test_parsing_makes_no_network_call(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway connection points at a live listener: parsing must not connect to it, nor to
    anything else (Python's socket.connect audit event records every attempt)."""
    from airflow.dag_processing.dagbag import DagBag

    listener = _Listener()
    conn = json.dumps(
        {
            "conn_type": "payout_gateway",
            "host": f"http://127.0.0.1:{listener.port}/api",
            "login": "x",
            "password": "y",
            "extra": {"public_key": "pk_test_x"},
        }
    )
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", conn)
    _connects.clear()
    _recording.set()
    try:
        started = time.monotonic()
        bag = DagBag(dag_folder=str(DAGS_FOLDER))
        elapsed = time.monotonic() - started
    finally:
        _recording.clear()
        listener.close()
    assert bag.import_errors == {}
    assert listener.accepted == 0
    assert _connects == []
    assert elapsed < 10, f"parsing took {elapsed:.1f} s (a timeout waiting on the network?)"


@pytest.mark.parametrize("path", sorted(DAGS_FOLDER.glob("*.py")), ids=lambda p: p.name)
def test_parse_time_per_file_is_bounded(airflow_db: Path, path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    DagBag(dag_folder=str(path))  # warm the shared imports (airflow, the provider)
    started = time.monotonic()
    bag = DagBag(dag_folder=str(path))
    elapsed = time.monotonic() - started
    print(f"{path.name}: parsed in {elapsed * 1000:.0f} ms")
    assert bag.import_errors == {}
    assert bag.dag_ids, f"{path.name} defines no DAG"
    assert elapsed < PARSE_BUDGET_S


def test_cold_parse_of_the_folder_is_bounded(airflow_db: Path) -> None:
    """What the dag-processor pays: a fresh interpreter importing Airflow and every DAG file."""
    code = (
        "import time; t = time.monotonic();"
        "from airflow.dag_processing.dagbag import DagBag;"
        f"b = DagBag(dag_folder={str(DAGS_FOLDER)!r});"
        "assert not b.import_errors, b.import_errors;"
        "print(round(time.monotonic() - t, 2))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    seconds = float(result.stdout.strip().splitlines()[-1])
    print(f"cold parse of {DAGS_FOLDER.name}/: {seconds:.2f} s")
    assert seconds < COLD_PARSE_BUDGET_S


def test_dag_shapes(dagbag: Any) -> None:
    single = dagbag.get_dag("payout_by_reference")
    assert single.schedule is None
    assert [t.task_id for t in single.topological_sort()] == [
        "discover_services",
        "validate_request",
        "approve_payout",
        "create_invoice",
        "process_invoice",
        "wait_for_final_status",
        "summary",
    ]
    assert single.params.get_param("currency").schema["enum"] == [
        *("EUR", "GBP", "USD", "ZAR"),
        *("CLP", "JPY", "KRW", "PYG", "VND"),
    ]
    assert single.params.get_param("amount").schema["type"] == "string"

    batch = dagbag.get_dag("payout_batch")
    assert batch.schedule == "@hourly"
    for task_id in ("chunk.execute", "chunk.wait"):  # one mapped group instance per chunk
        assert batch.get_task(task_id).get_closest_mapped_task_group() is not None
    assert [o.name for o in batch.get_task("report").outlets] == ["payout_batch_reports"]
    # four eyes: nothing is sent before approve_batch, which runs right after the check
    assert batch.get_task("approve_batch").upstream_task_ids == {"check_batch"}
    assert "approve_batch" in batch.get_task("chunk.execute").upstream_task_ids
    # create takes the validated reference and service from validate_request, and waits for approval
    assert single.get_task("create_invoice").upstream_task_ids == {"approve_payout", "validate_request"}

    reconciliation = dagbag.get_dag("payout_reconciliation")
    assert reconciliation.timetable.expression == "0 0 * * *"  # daily, with a data interval


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({"currency": "XXX"}, "currency"),
        ({"amount": 12.5}, "amount"),
        ({"fields": "account:1"}, "fields"),
        ({"test_mode": "yes"}, "test_mode"),
    ],
)
def test_bad_params_are_refused_at_trigger_time(dagbag: Any, conf: dict[str, Any], field: str) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    valid = {"service": "test_usd", "amount": "10.00", "fields": {"account": "1"}}  # no defaults
    with pytest.raises(ParamValidationError, match=field):
        dagbag.get_dag("payout_by_reference").test(run_conf={**valid, **conf})
