"""The real stack of a chaos run: the demo's sandbox + Airflow, started in a folder of its own, and
the two disruptions: SIGKILL of one running chunk task, and a restart of the sandbox.

Built on ``scripts/demo.py`` (start, REST client) and ``scripts/stop.py`` (stop by process group).
Both read ``DEMO_VAR_DIR`` and the ports when imported, so :func:`configure` must run first.
Nothing is found or killed by name: the chunk task's pid comes from its task instance (REST API)
and must descend from the scheduler this run started; the sandbox is stopped by its recorded
process group.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
MARKER = ".chaos-run"
CONN_ID = "payout_gateway_default"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configure(var_dir: Path, marker: str = MARKER) -> tuple[ModuleType, ModuleType]:
    """Point the demo at ``var_dir`` and free ports; import and return (demo, stop).

    ``var_dir`` is emptied first, but only if a run of the same script made it (it holds
    ``marker``: :data:`MARKER` for chaos), after stopping whatever that run recorded; any other
    non-empty folder is refused.
    """
    os.environ["DEMO_VAR_DIR"] = str(var_dir)
    os.environ["DEMO_STATE_FILE"] = str(var_dir / "demo" / "state.json")
    os.environ["DEMO_AIRFLOW_PORT"] = os.environ.get("CHAOS_AIRFLOW_PORT") or str(free_port())
    os.environ["DEMO_SANDBOX_PORT"] = os.environ.get("CHAOS_SANDBOX_PORT") or str(free_port())
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import demo
    import stop

    if var_dir.exists() and any(var_dir.iterdir()):
        if not (var_dir / marker).exists():
            raise SystemExit(f"{var_dir} is not empty and was not made by {marker}; choose another folder")
        stop.stop_recorded(stop.STATE_FILE)
        shutil.rmtree(var_dir)
    var_dir.mkdir(parents=True)
    (var_dir / marker).write_text(f"made by a {marker} run; emptied by the next one\n")
    return demo, stop


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def descends_from(pid: int, ancestor: int) -> bool:
    """True if ``ancestor`` is ``pid``'s parent, grandparent, ... (read from /proc)."""
    current: int | None = pid
    for _ in range(64):
        current = _parent(current) if current else None
        if current is None or current <= 1:
            return False
        if current == ancestor:
            return True
    return False


class Stack:
    """The running stack of one chaos run (state in the demo's state file)."""

    def __init__(self, demo: ModuleType, stop: ModuleType) -> None:
        self.demo, self.stop = demo, stop

    @property
    def processes(self) -> dict[str, Any]:
        return (self.stop.load_state(self.stop.STATE_FILE) or {}).get("processes", {})

    def kill_task(self, pid: int) -> None:
        """SIGKILL exactly ``pid``, after checking that it descends from our scheduler."""
        scheduler = int(self.processes["scheduler"]["pid"])
        if not descends_from(pid, scheduler):
            raise RuntimeError(f"pid {pid} is not a process of the scheduler {scheduler} this run started")
        os.kill(pid, signal.SIGKILL)

    def restart_sandbox(self) -> float:
        """Stop the sandbox's process group, start it again (same argv: db file, port); return
        the seconds it was down. Faults live in memory: the caller puts them back."""
        state = self.stop.load_state(self.stop.STATE_FILE)
        record = state["processes"]["sandbox"]
        stopped = time.monotonic()
        for line in self.stop.stop_groups({"sandbox": record}):
            self.demo.say(line)
        state["processes"]["sandbox"] = self.demo.start_group(
            "sandbox", record["argv"], self.demo.sandbox_env()
        )
        self.stop.STATE_FILE.write_text(json.dumps(state, indent=2))
        self.demo.wait_until("the restarted sandbox", self.demo.sandbox_healthy, timeout=120, interval=0.2)
        return time.monotonic() - stopped

    def stop_all(self) -> None:
        self.stop.stop_recorded(self.stop.STATE_FILE)
