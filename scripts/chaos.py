"""``make chaos``: ``payout_batch`` under a real scheduler, a faulty gateway, a killed task and a
gateway restart; then the gateway is read and compared with the batch and its report.

1. Starts the demo's stack (sandbox + Airflow api-server, scheduler, dag-processor, triggerer on
   SQLite / LocalExecutor, each in its own process group) in a folder of its own
   (``CHAOS_VAR_DIR``, default ``var/chaos``, emptied at the start) on free ports
   (``CHAOS_AIRFLOW_PORT`` / ``CHAOS_SANDBOX_PORT`` to choose them).
2. Writes a batch of 1,000 valid rows and 50 invalid ones (see ``chaos_batch.py``) and turns on
   faults on every endpoint, every kind (34 % of the calls; ``delay`` 3 s against a 2 s client
   timeout; ``rate_limit`` with ``Retry-After: 1``).
3. Triggers ``payout_batch``; while a chunk task is creating its invoices, SIGKILLs that task's
   process (its pid from the REST API, checked to descend from this run's scheduler); later
   restarts the sandbox (same db file and port) and puts the faults back.
4. Once the run ends: faults off, the gateway read (``/_sandbox/ledger`` + every invoice) and
   compared with the file and ``report.csv`` (``chaos_check.py``); everything stopped (by process
   group); logs, reports and the metadata DB scanned for the secrets and every card or account
   number of the file (``leak_scan.py``).

Prints one last line, ``chaos: N rows, F faults injected, D duplicates, L lost, M report
mismatches``, and exits 0 only if D, L and M are 0, no leak was found, the faults covered every
kind on every endpoint the batch calls, and both disruptions happened. ``--keep`` leaves the stack
running (``DEMO_VAR_DIR=var/chaos make stop`` stops it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from chaos_batch import FULL_INVALID, ChaosBatch, make_batch
from chaos_check import GatewaySnapshot, compare, read_gateway, read_report
from chaos_faults import FaultTally, clear_plan, fault_plan, put_plan, read_counts
from chaos_stack import PROJECT, Stack, configure
from leak_scan import LeakScanner, ScanResult

DAG_ID = "payout_batch"
#: The connection's client settings: a short timeout (the delay fault outlasts it), and read
#: attempts and create/process rounds enough for a 34 % fault rate and a restart of the gateway.
CLIENT = {"timeout": 2, "max_retries": 10, "retry_delay": 0.2, "retry_max_wait": 5, "create_rounds": 6}
RESTART_AT_SHARE = 0.45


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Disruptions:
    """Drives the two disruptions while the run goes: SIGKILL a chunk task mid-create, then
    restart the sandbox once enough of the batch exists."""

    def __init__(self, api: Any, stack: Stack, sandbox: tuple[str, tuple[str, str]], run_id: str) -> None:
        self.api, self.stack, self.run_id = api, stack, run_id
        self.url, self.auth = sandbox
        self.chunks: dict[int, set[str]] | None = None
        self.killed: dict[str, Any] | None = None
        self.killed_at = 0.0
        self.restarted: dict[str, Any] | None = None

    def plan_chunks(self, batch: ChaosBatch, batch_id: str) -> None:
        """The references of each chunk, from what ``check_batch`` planned (its XCom)."""
        if self.chunks is not None:
            return
        specs = self.api.xcom(DAG_ID, self.run_id, "check_batch")
        if specs:
            by_row = {r.row: r.reference_id for r in batch.rows}
            self.chunks = {s["index"]: {f"{batch_id}:{by_row[n]}" for n in s["rows"]} for s in specs}

    def step(self, present: set[str], expected: int, tally: FaultTally, plan: dict[str, Any]) -> None:
        if self.killed is None:
            self._try_kill(present)
        elif self.restarted is None and (
            len(present) >= RESTART_AT_SHARE * expected or time.monotonic() - self.killed_at > 30
        ):
            clear_plan(self.url, self.auth)  # nothing is drawn between reading the counts and the stop
            tally.add(read_counts(self.url, self.auth))
            downtime = self.stack.restart_sandbox()
            put_plan(self.url, self.auth, plan)
            self.restarted = {"references": len(present), "downtime": downtime}
            say(f"Sandbox restarted at {len(present)} references (down {downtime:.1f} s); faults back on")

    def _try_kill(self, present: set[str]) -> None:
        if not self.chunks:
            return
        for ti in self.mapped():
            refs = self.chunks.get(ti.get("map_index", -1), set())
            made = len(refs & present)
            if (
                ti.get("state") == "running"
                and ti.get("pid")
                and max(3, len(refs) // 5) <= made <= len(refs) - 5
            ):
                self.stack.kill_task(int(ti["pid"]))
                self.killed = {**ti, "made": made, "of": len(refs)}
                self.killed_at = time.monotonic()
                say(
                    f"SIGKILLed chunk {ti['map_index']} (pid {ti['pid']}) after {made} of {len(refs)} creates"
                )
                return

    def mapped(self) -> list[dict[str, Any]]:
        path = f"/dags/{DAG_ID}/dagRuns/{self.run_id}/taskInstances/chunk.execute/listMapped"
        response = self.api.request("GET", path, params={"limit": 100})
        return response.json().get("task_instances", []) if response.status_code == 200 else []


def drive(
    api: Any,
    disruptions: Disruptions,
    batch: ChaosBatch,
    batch_id: str,
    plan: dict,
    tally: FaultTally,
    timeout: float,
) -> str:
    """Poll the run (and the gateway) until it ends; return its state ('timeout' if it did not)."""
    expected = len(batch.valid_rows)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = api.run_state(DAG_ID, disruptions.run_id)
        if state in ("success", "failed"):
            return state
        disruptions.plan_chunks(batch, batch_id)
        try:
            ledger = httpx.get(f"{disruptions.url}/_sandbox/ledger", auth=disruptions.auth, timeout=30)
            present = {r for r in ledger.json()["references"] if r.startswith(f"{batch_id}:")}
        except (httpx.HTTPError, ValueError):
            present = set()
        if present or disruptions.killed:
            disruptions.step(present, expected, tally, plan)
        time.sleep(0.3)
    return "timeout"


def settled_gateway(url: str, auth: tuple[str, str], prefix: str, timeout: float = 60) -> GatewaySnapshot:
    """The gateway once the batch's invoices stop moving (or ``timeout`` seconds later)."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot = read_gateway(url, auth)
        if not snapshot.non_final(prefix) or time.monotonic() > deadline:
            return snapshot
        time.sleep(1)


def leak_scan(demo: Any, batch: ChaosBatch) -> tuple[LeakScanner, ScanResult]:
    """Task and component logs, reports and the whole metadata DB (the gateway's own files and the
    input file are not ours to scan: they hold the numbers by design)."""
    scanner = LeakScanner(
        {"API key": demo.SANDBOX_PASSWORD, "public key": demo.SANDBOX_PUBLIC_KEY}, batch.numbers
    )
    result = ScanResult()
    for folder in (demo.AIRFLOW_HOME / "logs", demo.REPORTS_DIR):
        if folder.exists():
            result.extend(scanner.scan_tree(folder))
    result.extend(scanner.scan_tree(demo.LOG_DIR, skip=[demo.LOG_DIR / "sandbox.log"]))
    result.extend(scanner.scan_sqlite(demo.AIRFLOW_HOME / "airflow.db"))
    return scanner, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--valid", type=int, default=1000, help="valid rows (plus 50 invalid ones)")
    parser.add_argument("--chunk-size", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.08, help="fault rate per rule (5 rules per endpoint)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the run")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args()
    started = time.monotonic()

    demo, stop = configure(Path(os.environ.get("CHAOS_VAR_DIR") or PROJECT / "var" / "chaos").resolve())
    stack = Stack(demo, stop)
    batch = make_batch(args.valid, FULL_INVALID, seed=args.seed)
    batch_dir = demo.VAR / "batches" / "chaos"
    batch_file = batch.write(batch_dir / "chaos.csv")
    batch_id = f"chaos-{time.strftime('%Y%m%dT%H%M%S')}"
    sandbox = (demo.SANDBOX_URL, (demo.SANDBOX_LOGIN, demo.SANDBOX_PASSWORD))
    plan = fault_plan(rate=args.rate, delay_seconds=3, retry_after_seconds=1, seed=args.seed)
    tally = FaultTally()
    lines: list[str] = []
    try:
        demo.DEMO_DIR.mkdir(parents=True, exist_ok=True)
        demo.prepare_home()
        demo.start_everything(
            {
                "PAYOUT_INPUT_DIRS": os.pathsep.join([str(batch_dir), str(demo.DROP_DIR)]),
                "PAYOUT_OUTPUT_DIRS": str(demo.REPORTS_DIR),
                "PAYOUT_APPROVAL_THRESHOLD": "off",  # a proof of paying under faults, not of approving
            }
        )
        api = demo.AirflowApi()
        api.upsert_connection(CLIENT)
        api.upsert_pool()  # chunk tasks run in the gateway pool: without it they are never scheduled
        demo.wait_until(f"DAG {DAG_ID} to be parsed", lambda: api.dag_ready(DAG_ID), timeout=180)
        api.unpause(DAG_ID)
        put_plan(*sandbox, plan)
        conf = {
            "batch_file": str(batch_file),
            "batch_id": batch_id,
            "currency": "USD",
            "output_dir": str(demo.REPORTS_DIR),
            "chunk_size": args.chunk_size,
        }
        run_id = api.trigger(DAG_ID, conf)
        say(f"Triggered {DAG_ID} run {run_id}: {len(batch.rows)} rows, batch id {batch_id}")
        disruptions = Disruptions(api, stack, sandbox, run_id)
        run_started = time.monotonic()
        state = drive(api, disruptions, batch, batch_id, plan, tally, args.timeout)
        lines.append(f"[chaos] run {run_id}: {state} after {time.monotonic() - run_started:.0f} s")
        clear_plan(*sandbox)
        tally.add(read_counts(*sandbox))
        gateway = settled_gateway(*sandbox, f"{batch_id}:")
        verdict = compare(batch, batch_id, gateway, read_report(demo.REPORTS_DIR / batch_id / "report.csv"))
        if disruptions.killed:
            k = disruptions.killed
            after = {t["map_index"]: t for t in disruptions.mapped()}.get(k["map_index"], {})
            lines.append(
                f"[chaos] SIGKILL: chunk {k['map_index']} pid {k['pid']} (try {k.get('try_number')}) "
                f"after {k['made']} of {k['of']} creates; it ended {after.get('state')} "
                f"at try {after.get('try_number')}"
            )
        if disruptions.restarted:
            r = disruptions.restarted
            lines.append(f"[chaos] restart: at {r['references']} references, down {r['downtime']:.1f} s")
        problems = tally.gaps()
        if disruptions.killed is None:
            problems.append("no chunk task was caught mid-create to SIGKILL")
        if disruptions.restarted is None:
            problems.append("the sandbox was not restarted mid-batch")
        if state not in ("success", "failed"):
            problems.append(f"the run did not end within {args.timeout:.0f} s")
    finally:
        if not args.keep:
            stack.stop_all()
    scanner, leaks = leak_scan(demo, batch)

    print("[chaos] faults (calls that reached the sandbox, share faulted, faults by kind):")
    report = [
        *tally.table(),
        f"[chaos] {tally.share:.0%} of {sum(tally.requests.values())} calls faulted",
        *lines,
        *(f"[chaos] coverage: {p}" for p in problems),
        *(f"[chaos] {d}" for d in verdict.details()),
        *(f"[chaos] {leak}" for leak in leaks.leaks[:50]),
    ]
    print("\n".join(report))
    print(f"[chaos] {leaks.summary(len(scanner))}")
    print(f"[chaos] took {time.monotonic() - started:.0f} s; files in {demo.VAR}")
    print(verdict.line(tally.total_injected))
    return 0 if verdict.ok and not leaks.leaks and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
