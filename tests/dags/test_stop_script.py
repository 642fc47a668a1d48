"""``scripts/stop.py`` (``make stop``) stops exactly the recorded process groups, with real processes."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

STOP_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "stop.py"


def load_stop() -> Any:
    spec = importlib.util.spec_from_file_location("demo_stop", STOP_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_group(command: str) -> subprocess.Popen:
    """A shell command as the leader of its own process group (it may start children)."""
    return subprocess.Popen(["/bin/sh", "-c", command], start_new_session=True)


def record(stop: Any, process: subprocess.Popen, **override: Any) -> dict[str, Any]:
    return {
        "pid": process.pid,
        "pgid": os.getpgid(process.pid),
        "start_time": stop.process_start_time(process.pid),
        **override,
    }


def group_alive(pgid: int) -> bool:
    """Any running (not zombie) process left in the group, as ``ps`` would show it."""
    result = subprocess.run(["ps", "-e", "-o", "pgid=,stat="], capture_output=True, text=True, check=True)
    rows = (line.split() for line in result.stdout.splitlines() if line.strip())
    return any(int(group) == pgid and not stat.startswith("Z") for group, stat in rows)


@pytest.fixture
def processes() -> Any:
    started: list[subprocess.Popen] = []
    yield started
    for process in started:  # clean up whatever a failing test left, by our own pids only
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def test_stop_kills_each_recorded_group_and_leaves_others(tmp_path: Path, processes: list) -> None:
    stop = load_stop()
    with_children = start_group("sleep 300 & sleep 300 & wait")
    single = start_group("exec sleep 300")
    stranger = start_group("exec sleep 300")  # its pid is recorded with another start time: not ours
    processes.extend([with_children, single, stranger])
    time.sleep(0.3)
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "processes": {
                    "api": record(stop, with_children),
                    "sandbox": record(stop, single),
                    "reused-pid": record(stop, stranger, start_time="1"),
                }
            }
        )
    )

    stop.stop_recorded(state)

    assert not group_alive(with_children.pid)  # the leader and both children
    assert not group_alive(single.pid)
    assert stranger.poll() is None and group_alive(stranger.pid)
    assert not state.exists()


def test_stop_runs_with_the_standard_library_only(tmp_path: Path, processes: list) -> None:
    """``make stop`` uses the system python3: no site-packages at all (-I -S) must be enough."""
    stop = load_stop()
    group = start_group("exec sleep 300")
    processes.append(group)
    time.sleep(0.2)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"processes": {"sandbox": record(stop, group)}}))

    result = subprocess.run(
        [shutil.which("python3") or "python3", "-I", "-S", str(STOP_SCRIPT)],
        env={"DEMO_STATE_FILE": str(state), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "sandbox: stopped" in result.stdout
    assert not group_alive(group.pid)
    again = subprocess.run(
        [shutil.which("python3") or "python3", "-I", "-S", str(STOP_SCRIPT)],
        env={"DEMO_STATE_FILE": str(state)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0 and "Nothing to stop" in again.stdout
