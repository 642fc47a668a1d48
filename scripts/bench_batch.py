"""Measure ``payout_batch`` on big files (1,000 and 10,000 rows by default) and print the figures.

Two modes:

- ``--mode dagtest`` (default, self-contained): a throwaway Airflow home and metadata DB, a fresh
  sandbox on a free loopback port, and ``dag.test()`` (tasks run one after another in this process;
  inside a chunk, ``--concurrency`` requests are in flight).
- ``--mode demo``: trigger the batch on the Airflow started by ``make demo`` (REST API; the
  LocalExecutor runs chunk tasks in parallel) and poll until it ends.

    .venv/bin/python scripts/bench_batch.py                 # 1,000 and 10,000 rows
    .venv/bin/python scripts/bench_batch.py --rows 1000 --chunk-size 250 --mode demo

Measured on 2 cores: ``--mode demo`` 1,000 rows in ~12-16 s, 10,000 rows in ~122 s (40 chunk
tasks). ``--mode dagtest`` is fine for 1,000 rows (~29 s) but slows down quadratically beyond:
all chunk tasks share one process there, and every card/account number the hook registers with
Airflow's secrets masker (one per row) makes each later log line slower; in a real deployment each
chunk task is its own process and holds only its own chunk's values.

Files are generated under ``var/bench/`` (never committed). Each row is a ``test_usd`` payout that
the sandbox processes after ``--processing-delay`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from payout_jobs.csv_safety import safe_writer  # every CSV we write is spreadsheet-safe

PROJECT = Path(__file__).resolve().parent.parent
#: Under the demo's var/ (DEMO_VAR_DIR): make demo allows reading and writing there (--mode demo).
BENCH_DIR = Path(os.environ.get("DEMO_VAR_DIR") or PROJECT / "var") / "bench"
BIN = Path(sys.executable).parent


def generate(rows: int) -> Path:
    """A batch file of ``rows`` valid test_usd payouts (deterministic content)."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"bench_{rows}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = safe_writer(handle)
        writer.writerow(["service", "service_amount", "fields_data", "reference_id", "description"])
        for i in range(rows):
            writer.writerow(
                ["test_usd", f"{1 + i % 500}.{i % 100:02d}", f"account:{4000000000 + i}", f"row-{i:06d}", ""]
            )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_dagtest(files: list[Path], args: argparse.Namespace) -> list[dict[str, Any]]:
    home = Path(tempfile.mkdtemp(prefix="bench_airflow_"))
    port = free_port()
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT / "dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        PAYOUT_REPORTS_DIR=str(BENCH_DIR / "reports"),
        PAYOUT_APPROVAL_THRESHOLD="off",  # a benchmark of paying, not of approving
        PAYOUT_INPUT_DIRS=str(BENCH_DIR),
        PAYOUT_OUTPUT_DIRS=str(BENCH_DIR / "reports"),
        AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT=json.dumps(
            {
                "conn_type": "payout_gateway",
                "host": f"http://127.0.0.1:{port}/api",
                "login": "merchant",
                "password": "bench-secret",
                "extra": {"public_key": "pk_test_bench", "test_mode": True},
            }
        ),
    )
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], check=True, capture_output=True)  # noqa: S603
    sandbox_env = {
        **os.environ,
        "PAYOUT_SANDBOX_LOGIN": "merchant",
        "PAYOUT_SANDBOX_PASSWORD": "bench-secret",
        "PAYOUT_SANDBOX_PUBLIC_KEY": "pk_test_bench",
    }
    log = (home / "sandbox.log").open("wb")
    sandbox = subprocess.Popen(  # noqa: S603 - our own console script
        [
            str(BIN / "payout-sandbox"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            str(home / "sandbox.db"),
            "--processing-delay",
            str(args.processing_delay),
            "--log-level",
            "warning",
        ],
        env=sandbox_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        from airflow.dag_processing.dagbag import DagBag

        results = []
        for path in files:
            dag = DagBag(dag_folder=str(PROJECT / "dags" / "payout_batch.py")).get_dag("payout_batch")
            conf = {
                **dag.params.dump(),
                "batch_file": str(path),
                "output_dir": str(BENCH_DIR / "reports"),
                "chunk_size": args.chunk_size,
                "chunk_concurrency": args.concurrency,
            }
            started = time.monotonic()
            dag_run = dag.test(run_conf=conf)
            wall = time.monotonic() - started
            tis = dag_run.get_task_instances()
            durations: dict[str, float] = {}
            for ti in tis:
                durations[ti.task_id] = durations.get(ti.task_id, 0.0) + (ti.duration or 0.0)
            with httpx.Client(auth=("merchant", "bench-secret"), timeout=60) as client:
                ledger = client.get(f"http://127.0.0.1:{port}/_sandbox/ledger").json()["references"]
            results.append(_figures(path, str(dag_run.state), wall, tis, durations, ledger, args.chunk_size))
        return results
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=20)


def bench_demo(files: list[Path], args: argparse.Namespace) -> list[dict[str, Any]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import demo  # the running demo's settings and REST client
    import httpx

    api = demo.AirflowApi()
    approver = demo.Approver()  # the demo's Airflow asks for approval (threshold 0)
    results = []
    for path in files:
        conf = {
            "batch_file": str(path),
            "output_dir": str(BENCH_DIR / "reports"),
            "chunk_size": args.chunk_size,
            "chunk_concurrency": args.concurrency,
        }
        started = time.monotonic()
        run_id = api.trigger("payout_batch", conf)
        state = demo.wait_for_run(  # checker approves
            api, "payout_batch", run_id, lambda r=run_id: approver.approve_if_asked("payout_batch", r)
        )
        wall = time.monotonic() - started
        tasks = api.task_states("payout_batch", run_id)
        report = api.xcom("payout_batch", run_id, "report") or {}
        with httpx.Client(auth=(demo.SANDBOX_LOGIN, demo.SANDBOX_PASSWORD), timeout=120) as client:
            ledger = client.get(f"{demo.SANDBOX_URL}/_sandbox/ledger").json()["references"]
        mine = [e for ref, e in ledger.items() if ref.startswith(f"{report.get('batch_id')}:")]
        results.append(
            {
                "rows": sum(1 for _ in path.open()) - 1,
                "mode": "demo (LocalExecutor, REST)",
                "state": state,
                "wall_s": round(wall, 1),
                "rows_per_s": round((sum(1 for _ in path.open()) - 1) / wall, 1),
                "chunk_tasks": sum(1 for t in tasks if t[0] == "chunk.execute"),
                "task_instances": len(tasks),
                "counts": report.get("counts"),
                "invoices_in_ledger": sum(e["invoices"] for e in mine),
                "process_calls": sum(e["process_calls"] for e in mine),
                "report": report.get("report_csv"),
            }
        )
    return results


def _figures(
    path: Path,
    state: str,
    wall: float,
    tis: list[Any],
    durations: dict[str, float],
    ledger: dict[str, Any],
    chunk_size: int,
) -> dict[str, Any]:
    rows = sum(1 for _ in path.open()) - 1
    return {
        "rows": rows,
        "mode": "dag.test (serial tasks)",
        "state": state,
        "wall_s": round(wall, 1),
        "rows_per_s": round(rows / wall, 1),
        "chunk_size": chunk_size,
        "chunk_tasks": sum(1 for ti in tis if ti.task_id == "chunk.execute"),
        "task_instances": len(tis),
        "task_seconds": {k: round(v, 1) for k, v in sorted(durations.items())},
        "invoices_in_ledger": sum(e["invoices"] for e in ledger.values()),
        "process_calls": sum(e["process_calls"] for e in ledger.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--chunk-size", type=int, default=250)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--processing-delay", type=float, default=0.5)
    parser.add_argument("--mode", choices=["dagtest", "demo"], default="dagtest")
    args = parser.parse_args()
    files = [generate(n) for n in args.rows]
    results = bench_dagtest(files, args) if args.mode == "dagtest" else bench_demo(files, args)
    print("\n=== payout_batch benchmark ===")
    for result in results:
        print(json.dumps(result, indent=2))
    return 0 if all(r["state"] == "success" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
