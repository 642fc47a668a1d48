"""Stop exactly the process groups that ``make demo`` started (``make stop``).

Reads the state file written by ``scripts/demo.py`` and sends SIGTERM to each recorded process group
(``kill -- -PGID``), then SIGKILL to a group still alive after a grace period. A group is signalled
only while its leader is the very process that the demo started (same pid and same start time in
``/proc``), so a recycled pid is never hit. Nothing is looked up or killed by name.

Standard library only: ``make stop`` runs it with the system ``python3``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
#: The demo's working folder (``DEMO_VAR_DIR`` overrides it: tests run a demo of their own).
VAR = Path(os.environ.get("DEMO_VAR_DIR") or PROJECT / "var")
#: Where ``make demo`` records what it started (``DEMO_STATE_FILE`` overrides it).
STATE_FILE = Path(os.environ.get("DEMO_STATE_FILE") or VAR / "demo" / "state.json")
GRACE_SECONDS = 20.0


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19]


def live_members(pgid: int) -> list[int]:
    """Pids of the running (not zombie) processes of process group ``pgid``, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:  # state, then ppid, then pgrp
            members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    """True while a running process is left in process group ``pgid`` (zombies do not count:
    a dead leader whose parent has not reaped it yet holds nothing)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(live_members(pgid)) if Path("/proc/self/stat").exists() else True


def owns_group(record: dict[str, Any]) -> bool:
    """True if the recorded process group is alive and still the one the demo started."""
    if not group_alive(int(record["pgid"])):
        return False
    leader_start = process_start_time(int(record["pid"]))
    # If another process now has the leader's pid, our group ended before (Linux does not hand out
    # a pid still in use as a process-group id) and this group is someone else's. If the leader
    # exited while its children still hold the group, the group is still ours.
    return leader_start is None or leader_start == record.get("start_time")


def stop_groups(records: dict[str, dict[str, Any]], grace: float = GRACE_SECONDS) -> list[str]:
    """SIGTERM every recorded group at once, SIGKILL what is left after ``grace``; report each."""
    outcome: dict[str, str] = {}
    pending: dict[str, int] = {}
    for name, record in records.items():
        pgid = int(record["pgid"])
        if not group_alive(pgid):
            outcome[name] = "already stopped"
        elif not owns_group(record):
            outcome[name] = f"pid {record['pid']} belongs to another process now, left alone"
        else:
            os.killpg(pgid, signal.SIGTERM)
            pending[name] = pgid
    started = time.monotonic()
    while pending and time.monotonic() - started < grace:
        for name, pgid in list(pending.items()):
            if not group_alive(pgid):
                outcome[name] = f"stopped (process group {pgid}, {time.monotonic() - started:.1f} s)"
                del pending[name]
        time.sleep(0.1)
    for name, pgid in pending.items():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        outcome[name] = f"killed after {grace:.0f} s (process group {pgid})"
    return [f"{name}: {outcome[name]}" for name in records]


def load_state(path: Path = STATE_FILE) -> dict[str, Any] | None:
    """The demo's state file, or None when nothing was started."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def stop_recorded(path: Path = STATE_FILE, out: Any = sys.stdout) -> None:
    """Stop every process group recorded in the state file, in reverse start order, then forget them."""
    state = load_state(path)
    if not state:
        print("Nothing to stop: no demo is recorded.", file=out)
        return
    for line in stop_groups(state.get("processes", {})):
        print(line, file=out)
    path.unlink(missing_ok=True)


def main() -> int:
    stop_recorded()
    return 0


if __name__ == "__main__":
    sys.exit(main())
