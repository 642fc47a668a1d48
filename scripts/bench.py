"""``make bench``: ``payout_batch`` under a real scheduler against a bare HTTP client, same sandbox.

One run, one sandbox (no faults, a fixed processing delay), for each size N (``--sizes`` or
``BENCH_SIZES``, default ``1000,10000``; add ``100000`` for the long one):

- **bare**: raw HTTP (httpx, no project code), 8 threads: create then process each payout; then
  poll by walking the cursor list (newest first, 100 a page, down to the oldest invoice of the
  batch) until every invoice is final.
- **dag**: ``payout_batch`` triggered through the REST API of the demo's stack (sandbox + Airflow
  api-server, scheduler with the LocalExecutor, dag-processor, triggerer, SQLite; started with
  ``scripts/demo.py``'s code in ``BENCH_VAR_DIR``, default ``var/bench-run``, emptied first, on
  free ports) until the run is green.

For each: wall time, payouts per second, gateway calls per payout by endpoint (the sandbox's
``/_sandbox/faults/counts``, reset before each measurement), peak RSS of the Airflow processes
(every component and its children, summed per sample) and of the sandbox (sampled with psutil
every 0.25 s), task instances, and dag / bare. Also the parse time of each DAG file (a fresh
interpreter with Airflow imported, as the dag-processor's child has it; median of 3).

Writes the table into ``BENCHMARKS.md`` (between the ``bench:begin`` / ``bench:end`` marks, the
rest of the file is kept) and prints it, ending with one line per size::

    bench: 10000 payouts, bare 21.9 s, dag 136.0 s, ratio 6.21x, calls 5.00 a payout
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos_stack import PROJECT, configure

DAG_ID = "payout_batch"
BENCHMARKS = PROJECT / "BENCHMARKS.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
THREADS = 8
PAGE = 100
#: The gateway's final statuses (vendor docs; the bare client uses no project code).
FINAL = {"processed", "partially_processed", "process_failed", "expired", "terminated", "canceled",
         "partially_canceled", "cancel_failed"}  # fmt: skip
#: The Airflow settings of the bench (four-eyes approval off: nothing waits for a person).
AIRFLOW_EXTRA_ENV = {"PAYOUT_APPROVAL_THRESHOLD": "off"}


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- inputs


def generate(folder: Path, rows: int) -> Path:
    """A batch file of ``rows`` valid test_usd payouts (deterministic content)."""
    from payout_jobs.csv_safety import safe_writer  # every CSV we write is spreadsheet-safe

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench_{rows}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = safe_writer(handle)
        writer.writerow(["service", "service_amount", "fields_data", "reference_id", "description"])
        for i in range(rows):
            writer.writerow(["test_usd", amount(i), f"account:{4000000000 + i}", f"row-{i:06d}", ""])
    return path


def amount(i: int) -> str:
    return f"{1 + i % 500}.{i % 100:02d}"


# --------------------------------------------------------------------------- measuring


class RssSampler:
    """Peak RSS (MiB) of process trees (``groups``: a name to root pids; a tree is a process and
    all its descendants, e.g. the scheduler and its task processes), and the peak of the sum of
    the groups named in ``total`` at one sample."""

    def __init__(
        self, groups: dict[str, list[int]], total: set[str] = frozenset(), interval: float = 0.25
    ) -> None:
        self.groups, self.total, self.interval = groups, total, interval
        self.peak: dict[str, float] = {name: 0.0 for name in groups}
        self.peak_total = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree_rss(self, pids: list[int]) -> int:
        total = 0
        for pid in pids:
            try:
                root = psutil.Process(pid)
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = {name: self._tree_rss(pids) / 2**20 for name, pids in self.groups.items()}
            for name, value in sample.items():
                self.peak[name] = max(self.peak[name], value)
            self.peak_total = max(self.peak_total, sum(v for k, v in sample.items() if k in self.total))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Measure:
    kind: str
    n: int
    wall: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    rss: dict[str, float] = field(default_factory=dict)
    task_instances: int | None = None
    state: str = "success"
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        return self.n / self.wall if self.wall else 0.0

    @property
    def calls_per_payout(self) -> float:
        return sum(self.calls.values()) / self.n


class Sandbox:
    """The admin API of the bench's sandbox: its call counters."""

    def __init__(self, url: str, auth: tuple[str, str]) -> None:
        self.url, self.auth = url, auth

    def reset_counts(self) -> None:
        httpx.delete(f"{self.url}/_sandbox/faults/counts", auth=self.auth, timeout=60).raise_for_status()

    def ledger_check(self, prefix: str) -> dict[str, int]:
        """The gateway's ledger for references starting with ``prefix``: how many, how many with
        more than one invoice, how many not processed exactly once (both must be 0)."""
        response = httpx.get(f"{self.url}/_sandbox/ledger", auth=self.auth, timeout=300)
        response.raise_for_status()
        mine = [e for ref, e in response.json()["references"].items() if ref.startswith(prefix)]
        return {
            "references": len(mine),
            "duplicates": sum(1 for e in mine if e["invoices"] != 1),
            "not_processed_once": sum(1 for e in mine if e["process_calls"] != 1),
        }

    def counts(self) -> dict[str, int]:
        response = httpx.get(f"{self.url}/_sandbox/faults/counts", auth=self.auth, timeout=60)
        response.raise_for_status()
        return dict(response.json()["requests"])


# --------------------------------------------------------------------------- the bare client


def bare_client(url: str, auth: tuple[str, str], n: int, prefix: str) -> dict[str, Any]:
    """Create + process ``n`` payouts with 8 threads, then poll the cursor list until all are final."""
    local = threading.local()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=f"{url}/api", auth=auth, timeout=60)
        return local.client

    def pay(i: int) -> str:
        body = {
            "data": {
                "type": "payout-invoice",
                "attributes": {
                    "service": "test_usd",
                    "currency": "USD",
                    "amount": float(amount(i)),
                    "reference_id": f"{prefix}:row-{i:06d}",
                    "test_mode": True,
                    "fields": {"account": str(4000000000 + i)},
                },
            }
        }
        created = client().post("/payout-invoices", json=body)
        created.raise_for_status()
        invoice_id = created.json()["data"]["id"]
        client().post(f"/payout-invoices/{invoice_id}/process").raise_for_status()
        return invoice_id

    with ThreadPoolExecutor(THREADS) as pool:
        ids = list(pool.map(pay, range(n)))
    pending, oldest, rounds = set(ids), ids[0], 0
    with httpx.Client(base_url=f"{url}/api", auth=auth, timeout=60) as poller:
        while pending:
            rounds += 1
            page_url: str | None = f"/payout-invoices?page[size]={PAGE}"
            while page_url:
                page = poller.get(page_url)
                page.raise_for_status()
                body = page.json()
                for item in body["data"]:
                    if item["attributes"]["status"] in FINAL:
                        pending.discard(item["id"])
                seen = {item["id"] for item in body["data"]}
                next_link = body["links"]["next"]
                page_url = next_link.removeprefix("/api") if next_link and oldest not in seen else None
            if pending:
                time.sleep(0.5)
    return {"poll_rounds": rounds}


# --------------------------------------------------------------------------- the DAG


def count_tis(api: Any, run_id: str, state: str | None = None) -> int:
    params: dict[str, Any] = {"limit": 1}
    if state:
        params["state"] = state
    response = api.request("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params=params)
    response.raise_for_status()
    return int(response.json()["total_entries"])


def run_dag(
    api: Any, conf: dict[str, Any], timeout: float, on_chunks: Callable[[list[dict]], None] | None = None
) -> tuple[str, str, dict[str, Any]]:
    """Trigger, wait for the end; return (run id, state, the most tasks seen running / deferred).

    ``on_chunks`` gets the chunk task instances at every poll (the profiler picks one)."""
    run_id = api.trigger(DAG_ID, conf)
    deadline = time.monotonic() + timeout
    most = {"running": 0, "deferred": 0}
    while time.monotonic() < deadline:
        state = api.run_state(DAG_ID, run_id)
        if state in ("success", "failed"):
            return run_id, state, most
        for s in most:
            most[s] = max(most[s], count_tis(api, run_id, s))
        if on_chunks:
            path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/chunk.execute/listMapped"
            response = api.request("GET", path, params={"limit": 100})
            on_chunks(response.json().get("task_instances", []) if response.status_code == 200 else [])
        time.sleep(1.0)
    return run_id, "timeout", most


# --------------------------------------------------------------------------- parse time

PARSE = """
import json, sys, time
import airflow.sdk  # loaded in the dag-processor before it parses a file
from airflow.dag_processing.dagbag import DagBag
seconds = []
for _ in range(2):  # cold (the file's own imports), then warm (only the DAG's construction)
    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    seconds.append(time.perf_counter() - started)
print(json.dumps({"s": seconds, "errors": len(bag.import_errors), "dags": len(bag.dags)}))
"""


def parse_times(env: dict[str, str], repeats: int = 3) -> dict[str, dict[str, float]]:
    """Seconds to parse each DAG file in a fresh interpreter with Airflow imported, as the
    dag-processor's child does (``cold``), and again in the same interpreter (``warm``: the
    file's imports cached); medians of ``repeats`` interpreters."""
    results = {}
    for path in sorted((PROJECT / "dags").glob("*.py")):
        runs = []
        for _ in range(repeats):
            out = subprocess.run(  # noqa: S603 - our own interpreter and snippet
                [sys.executable, "-c", PARSE, str(path)], env=env, capture_output=True, text=True, check=True
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        if any(r["errors"] or not r["dags"] for r in runs):
            raise SystemExit(f"{path.name} did not parse cleanly")
        results[path.name] = {
            "cold": statistics.median(r["s"][0] for r in runs),
            "warm": statistics.median(r["s"][1] for r in runs),
        }
    return results


# --------------------------------------------------------------------------- report


def ledger_text(m: Measure) -> str:
    ledger = m.notes.get("ledger") or {}
    return f"{ledger.get('references')}/{ledger.get('duplicates')}/{ledger.get('not_processed_once')}"


def ledger_ok(m: Measure) -> bool:
    ledger = m.notes.get("ledger") or {}
    return (
        ledger.get("references") == m.n
        and not ledger.get("duplicates")
        and not ledger.get("not_processed_once")
    )


def mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def endpoint_row(m: Measure, endpoints: list[str]) -> str:
    return " | ".join(f"{m.calls.get(e, 0) / m.n:.2f}" for e in endpoints)


def render(
    results: list[tuple[Measure, Measure]], parse: dict[str, dict[str, float]], meta: dict[str, str]
) -> str:
    endpoints = sorted({e for pair in results for m in pair for e in m.calls})
    lines = [
        f"Machine: {meta['machine']}. Date: {meta['date']}. Commit: `{meta['commit']}`.",
        f"Command: `{meta['command']}`. Sandbox processing delay {meta['delay']} s, no faults; "
        f"Airflow: LocalExecutor, SQLite, parallelism {meta['parallelism']}, gateway pool "
        f"{meta['pool']} slots; chunk size {meta['chunk_size']}, {meta['concurrency']} requests in "
        "flight a chunk; PAYOUT_APPROVAL_THRESHOLD=off.",
        "",
        "| payouts | client | wall s | payouts/s | calls a payout | "
        + " | ".join(e for e in endpoints)
        + " | peak RSS Airflow MiB | peak RSS sandbox MiB | task instances | dag/bare |",
        "|---" * (9 + len(endpoints)) + "|",
    ]
    for bare, dag in results:
        ratio = dag.wall / bare.wall
        for m in (bare, dag):
            lines.append(
                f"| {m.n:,} | {m.kind}{'' if m.state == 'success' else ' (' + m.state + ')'} | "
                f"{m.wall:.1f} | {m.per_s:.0f} | {m.calls_per_payout:.2f} | {endpoint_row(m, endpoints)} | "
                f"{mib(m.rss.get('airflow'))} | {mib(m.rss.get('sandbox'))} | "
                f"{m.task_instances if m.task_instances is not None else '-'} | "
                f"{f'{ratio:.2f}x' if m is dag else ''} |"
            )
    lines += ["", "Calls a payout by endpoint: the sandbox's counter per endpoint divided by the payouts."]
    for bare, dag in results:
        lines.append(
            f"- {dag.n:,}: bare polled {bare.notes.get('poll_rounds')} rounds; "
            f"dag run {dag.notes.get('run_id')}, "
            f"most task instances seen at once: running {dag.notes['most']['running']}, "
            f"deferred {dag.notes['most']['deferred']}; peak RSS by Airflow component (MiB): "
            + ", ".join(f"{k} {v:.0f}" for k, v in sorted(dag.notes["rss_by_component"].items()))
            + "; gateway ledger (references, with more than one invoice, not processed exactly once): "
            + f"bare {ledger_text(bare)}, dag {ledger_text(dag)}"
        )
    lines += [
        "",
        "DAG file parse time, median of 3 (target < 200 ms). cold: a fresh interpreter with Airflow "
        "imported, as the dag-processor's child parses a file; warm: the same file again in that "
        "interpreter (the DAG's construction only).",
        "",
        "| file | cold ms | warm ms |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {t['cold'] * 1000:.0f} | {t['warm'] * 1000:.0f} |" for name, t in parse.items()]
    return "\n".join(lines)


def summary_line(bare: Measure, dag: Measure) -> str:
    return (
        f"bench: {dag.n} payouts, bare {bare.wall:.1f} s, dag {dag.wall:.1f} s, "
        f"ratio {dag.wall / bare.wall:.2f}x, calls {dag.calls_per_payout:.2f} a payout"
    )


def write_benchmarks(section: str) -> None:
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    BENCHMARKS.write_text(f"{head}{BEGIN}\n{section}\n{END}{tail}")


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True)  # noqa: S607
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=PROJECT, capture_output=True, text=True)  # noqa: S607
    return out.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    return (
        f"{os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.1f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, load average "
        f"{os.getloadavg()[0]:.1f} at the start"
    )


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=os.environ.get("BENCH_SIZES") or "1000,10000",
        help="comma-separated batch sizes (BENCH_SIZES; add 100000 for the long run)",
    )
    parser.add_argument("--processing-delay", type=float, default=0.5)
    parser.add_argument("--chunk-size", type=int, default=None, help="the DAG's default if not given")
    parser.add_argument("--concurrency", type=int, default=None, help="the DAG's default if not given")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for one DAG run")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy the triggerer, the scheduler and one chunk task during the last size's DAG run "
        "into this folder, and print the top functions (figures then carry py-spy's overhead)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    command = " ".join(["make bench" if os.environ.get("MAKELEVEL") else "scripts/bench.py", *sys.argv[1:]])
    if os.environ.get("BENCH_SIZES"):
        command = f"BENCH_SIZES={os.environ['BENCH_SIZES']} {command}"

    demo, stop = configure(
        Path(os.environ.get("BENCH_VAR_DIR") or PROJECT / "var" / "bench-run").resolve(), marker=".bench-run"
    )
    from payout_jobs import settings
    from payout_jobs.gateway_pool import pool_slots

    chunk_size = args.chunk_size or settings.DEFAULT_CHUNK_SIZE
    concurrency = args.concurrency or settings.DEFAULT_CHUNK_CONCURRENCY
    meta = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": git_commit(),
        "command": command,
        "delay": f"{args.processing_delay:g}",
        "parallelism": str(demo.PARALLELISM),
        "pool": str(pool_slots()),
        "chunk_size": str(chunk_size),
        "concurrency": str(concurrency),
    }
    sandbox = Sandbox(demo.SANDBOX_URL, (demo.SANDBOX_LOGIN, demo.SANDBOX_PASSWORD))
    results: list[tuple[Measure, Measure]] = []
    try:
        demo.DEMO_DIR.mkdir(parents=True, exist_ok=True)
        demo.prepare_home()
        files = {n: generate(demo.BENCH_DIR, n) for n in sizes}
        demo.start_everything(AIRFLOW_EXTRA_ENV, processing_delay=args.processing_delay)
        api = demo.AirflowApi()
        api.upsert_connection()
        api.upsert_pool()
        demo.wait_until(f"DAG {DAG_ID} to be parsed", lambda: api.dag_ready(DAG_ID), timeout=180)
        api.unpause(DAG_ID)
        processes = stop.load_state(stop.STATE_FILE)["processes"]
        airflow_groups = {name: [int(r["pid"])] for name, r in processes.items() if name != "sandbox"}
        sandbox_pids = [int(processes["sandbox"]["pid"])]
        stamp = time.strftime("%H%M%S")
        for n in sizes:
            say(f"{n} payouts: bare client")
            bare = Measure("bare", n)
            sandbox.reset_counts()
            with RssSampler({"sandbox": sandbox_pids}) as rss:
                started = time.monotonic()
                bare.notes = bare_client(demo.SANDBOX_URL, sandbox.auth, n, f"bare{n}-{stamp}")
                bare.wall = time.monotonic() - started
            bare.calls, bare.rss = sandbox.counts(), dict(rss.peak)
            bare.notes["ledger"] = sandbox.ledger_check(f"bare{n}-{stamp}:")
            say(f"{n} payouts: bare {bare.wall:.1f} s; now payout_batch")

            dag = Measure("dag", n)
            conf = {
                "batch_file": str(files[n]),  # no batch_id: a fresh batch, as a manual run makes
                "output_dir": str(demo.BENCH_DIR / "reports"),
                "chunk_size": chunk_size,
                "chunk_concurrency": concurrency,
            }
            sandbox.reset_counts()
            profiler = None
            if args.profile and n == sizes[-1]:
                from bench_profile import Profiler

                profiler = Profiler(args.profile.resolve(), airflow_groups["scheduler"][0])
                profiler.record("triggerer", airflow_groups["triggerer"][0], subprocesses=True)
                profiler.record("scheduler", airflow_groups["scheduler"][0])
            on_chunks = profiler.record_chunk if profiler else None
            with RssSampler({"sandbox": sandbox_pids, **airflow_groups}, total=set(airflow_groups)) as rss:
                started = time.monotonic()
                run_id, dag.state, most = run_dag(api, conf, args.timeout, on_chunks)
                dag.wall = time.monotonic() - started
            if profiler:
                profiler.stop()
                print(profiler.summaries(), flush=True)
            dag.calls = sandbox.counts()
            dag.task_instances = count_tis(api, run_id)
            by_component = {k: v for k, v in rss.peak.items() if k != "sandbox"}
            dag.rss = {"sandbox": rss.peak["sandbox"], "airflow": rss.peak_total}
            batch_id = (api.xcom(DAG_ID, run_id, "report") or {}).get("batch_id", "?")
            dag.notes = {
                "run_id": run_id,
                "most": most,
                "rss_by_component": by_component,
                "ledger": sandbox.ledger_check(f"{batch_id}:"),
            }
            say(summary_line(bare, dag) + ("" if dag.state == "success" else f" (run {dag.state})"))
            results.append((bare, dag))
        say("DAG file parse times")
        parse = parse_times({**demo.airflow_env(), **AIRFLOW_EXTRA_ENV})
    finally:
        if not args.keep:
            stop.stop_recorded(stop.STATE_FILE)
    meta["machine"] += f", {os.getloadavg()[0]:.1f} at the end"
    table = render(results, parse, meta)
    lines = "\n".join(summary_line(b, d) for b, d in results)
    if not args.no_write:
        write_benchmarks(f"{table}\n\n```\n{lines}\n```")
    print(f"\n{table}\n\n{lines}")
    return 0 if all(d.state == "success" and ledger_ok(d) and ledger_ok(b) for b, d in results) else 1


if __name__ == "__main__":
    sys.exit(main())
