"""Processes of ``make cluster-check``: each started in its own process group, stopped by its id.

Nothing here looks a process up by name: a group is signalled by the pgid recorded when it was
started, and a tree (a worker and what it forked) is found from the recorded pid through
``/proc``'s parent links.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Proc:
    """One process this check started (the leader of its own process group)."""

    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


def start(name: str, argv: list[str], *, env: dict[str, str], log_dir: Path, **kwargs: object) -> Proc:
    """Start ``argv`` as the leader of a new session (and process group), output to a log file."""
    log = log_dir / f"{name}.log"
    with log.open("ab") as handle:
        popen = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,  # type: ignore[arg-type]
        )
    return Proc(name, popen, log)


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgid) of ``pid`` from /proc, or None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else (int(fields[1]), int(fields[2]))


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren...), from /proc parent links."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            parents[int(entry.name)] = stat[0]
    found: list[int] = []
    frontier = {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        found.extend(sorted(children))
        frontier = children
    return found


def kill_tree(proc: Proc) -> int:
    """SIGKILL ``proc``'s process group and the groups of everything it forked; return how many
    processes were hit. Airflow's task supervisor puts each task in a process group of its own, so
    killing the worker's group alone would leave the running task behind (a machine that dies
    leaves nothing)."""
    tree = [proc.pid, *descendants(proc.pid)]
    groups = {stat[1] for pid in tree if (stat := _stat(pid))}
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    proc.popen.wait(timeout=30)
    return len(tree)


def signal_group(proc: Proc, sig: int) -> None:
    """Send ``sig`` to ``proc``'s process group if its leader still runs."""
    if proc.popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)


def reap(proc: Proc, deadline: float) -> None:
    """Wait for the leader until ``deadline`` (monotonic), then SIGKILL the group; leave nothing."""
    try:
        proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.popen.wait(timeout=10)
    _kill_leftovers(proc.pid)


def stop(proc: Proc, sig: int = signal.SIGTERM, grace: float = 20.0) -> None:
    """``sig`` to the process group, SIGKILL after ``grace`` seconds; reap the leader."""
    signal_group(proc, sig)
    reap(proc, time.monotonic() + grace)


def stop_all(procs: list[Proc], grace: float = 20.0) -> None:
    """SIGTERM every group at once, then reap each (SIGKILL what is left after ``grace``)."""
    for proc in procs:
        signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        reap(proc, deadline)


def _kill_leftovers(pgid: int) -> None:
    """SIGKILL what is still alive in the group after its leader ended (a worker's children)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        members = [
            int(e.name)
            for e in Path("/proc").iterdir()
            if e.name.isdigit() and (stat := _stat(int(e.name))) and stat[1] == pgid
        ]
        if not members:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        time.sleep(0.2)
