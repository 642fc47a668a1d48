"""Sampling profiles of a bench run (``scripts/bench.py --profile DIR``) with py-spy.

py-spy (installed from PyPI on first use) attaches to running processes: the triggerer (and its
trigger-runner subprocess), the scheduler, and the first chunk task seen running (its pid from the
REST API, checked to descend from the scheduler). Each profile is py-spy's "raw" collapsed stacks
(one ``frame;frame;... count`` a line); :func:`summary` turns one into the functions that take the
most samples (inclusive and self), which is what BENCHMARKS.md quotes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from chaos_stack import descends_from

BIN = Path(sys.executable).parent
RATE = 50  # samples a second: enough for a 1-minute task, light on 2 cores


def ensure_py_spy() -> Path:
    """The venv's py-spy, installed with uv if missing."""
    exe = BIN / "py-spy"
    if not exe.exists():
        subprocess.run(  # noqa: S603 - the venv's own uv
            [str(BIN / "uv"), "pip", "install", "-q", "--python", sys.executable, "py-spy"], check=True
        )
    return exe


class Profiler:
    """py-spy recorders started on pids; stopped (SIGINT: py-spy writes its file) at the end."""

    def __init__(self, folder: Path, scheduler_pid: int) -> None:
        self.folder, self.scheduler_pid = folder, scheduler_pid
        self.exe = ensure_py_spy()
        self.recorders: dict[str, subprocess.Popen[bytes]] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def record(self, name: str, pid: int, subprocesses: bool = False) -> None:
        if name in self.recorders:
            return
        argv = [str(self.exe), "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw"]
        argv += ["--output", str(self.folder / f"{name}.txt"), "--nonblocking"]
        if subprocesses:
            argv.append("--subprocesses")
        log = (self.folder / f"{name}.py-spy.log").open("wb")
        self.recorders[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603

    def record_chunk(self, tis: list[dict]) -> None:
        """Start recording the first running chunk task (once)."""
        if "chunk_task" in self.recorders:
            return
        for ti in tis:
            pid = ti.get("pid")
            if ti.get("state") == "running" and pid and descends_from(int(pid), self.scheduler_pid):
                self.record("chunk_task", int(pid))
                return

    def stop(self) -> None:
        for recorder in self.recorders.values():
            if recorder.poll() is None:
                recorder.send_signal(subprocess.signal.SIGINT)
        for recorder in self.recorders.values():
            try:
                recorder.wait(timeout=60)
            except subprocess.TimeoutExpired:
                recorder.kill()

    def summaries(self, top: int = 25) -> str:
        return "\n\n".join(
            summary(path, top) for path in sorted(self.folder.glob("*.txt")) if path.stat().st_size
        )


def summary(path: Path, top: int = 25) -> str:
    """The functions with the most samples in a raw py-spy profile (inclusive %, self %; line
    numbers dropped, so a function's samples add up)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [re.sub(r":\d+\)$", ")", f.strip()) for f in stack.split(";") if f.strip()]
        for frame in set(frames):
            inclusive[frame] += samples
        if frames:
            own[frames[-1]] += samples
    lines = [f"{path.stem}: {total} samples at {RATE}/s", "  incl%  self%  function (file:line)"]
    for frame, samples in inclusive.most_common(top):
        lines.append(f"  {100 * samples / total:5.1f}  {100 * own[frame] / total:5.1f}  {frame}")
    lines.append("  top self:")
    for frame, samples in own.most_common(top // 2):
        lines.append(f"  {100 * inclusive[frame] / total:5.1f}  {100 * samples / total:5.1f}  {frame}")
    return "\n".join(lines)
