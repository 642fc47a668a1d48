"""The main job: ``scripts/demo.py`` (``make demo``) from nothing, again, then ``scripts/stop.py``.

A real run: the sandbox and Airflow's api-server, scheduler, dag-processor and triggerer start in
their own process groups on free loopback ports, in a folder of the test's own (``DEMO_VAR_DIR``),
and both payout DAGs are triggered over the REST API (as admin) and approved over it (as checker).
About a minute.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.timeout(600)
def test_demo_runs_both_dags_green_twice_and_stop_stops_it(tmp_path: Path) -> None:
    airflow_port, sandbox_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "DEMO_VAR_DIR": str(tmp_path / "var"),
        "DEMO_AIRFLOW_PORT": str(airflow_port),
        "DEMO_SANDBOX_PORT": str(sandbox_port),
    }
    demo = [sys.executable, str(PROJECT / "scripts" / "demo.py")]
    stop = [sys.executable, str(PROJECT / "scripts" / "stop.py")]
    state_file = tmp_path / "var" / "demo" / "state.json"
    try:
        first = subprocess.run(demo, env=env, capture_output=True, text=True, timeout=400)
        print(first.stdout[-3000:])
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert "payout_by_reference  run" in first.stdout and first.stdout.count(": SUCCESS") == 2
        assert f"http://127.0.0.1:{airflow_port}" in first.stdout and "admin / admin" in first.stdout
        # four eyes: admin triggered, checker approved both runs through the REST API
        for dag_id in ("payout_batch", "payout_by_reference"):
            assert f"approved {dag_id} run demo__" in first.stdout, dag_id
        assert first.stdout.count(" as checker (Approve payout") == 2
        reports = list((tmp_path / "var" / "reports").glob("*/report.csv"))
        assert len(reports) == 1
        recorded = json.loads(state_file.read_text())["processes"]
        assert set(recorded) == {"sandbox", "api-server", "scheduler", "dag-processor", "triggerer"}

        second = subprocess.run(demo, env=env, capture_output=True, text=True, timeout=400)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert "reusing it" in second.stdout and second.stdout.count(": SUCCESS") == 2
        assert second.stdout.count(" as checker (Approve payout") == 2
        assert json.loads(state_file.read_text())["processes"] == recorded
    finally:
        stopped = subprocess.run(stop, env=env, capture_output=True, text=True, timeout=120)
        print(stopped.stdout)
    assert stopped.returncode == 0
    assert not state_file.exists()
    for record in recorded.values():  # gone, or a zombie until init reaps it
        state = subprocess.run(
            ["ps", "-o", "stat=", "-p", str(record["pid"])], capture_output=True, text=True
        )
        assert state.stdout.strip()[:1] in ("", "Z")
    assert not listening(airflow_port) and not listening(sandbox_port)
