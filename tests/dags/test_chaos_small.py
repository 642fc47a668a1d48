"""The small chaos run of the default suite: ``payout_batch`` under ``dag.test()`` over 200 valid
rows and 11 invalid ones (every kind), with faults on at least 30 % of the requests (every
endpoint the batch calls, every kind). ``make chaos`` is the full run: 1,000 + 50 rows under a real
scheduler, a chunk task SIGKILLed mid-create and the gateway restarted mid-batch (too slow here:
a restart costs a chunk retry, 15 s or more).

Then, from the gateway's side: one invoice per valid reference, processed once, none for an
invalid row, all final, and ``report.csv`` equal to the gateway row for row.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from chaos_batch import SMALL_INVALID, make_batch
from chaos_check import compare, read_gateway, read_report
from chaos_faults import FaultTally, clear_plan, fault_plan, put_plan, read_counts

BATCH_ID = "chaos-small"
#: Client settings of the run: a short timeout (the delay fault outlasts it), short waits (a
#: Retry-After is capped at 0.3 s), and enough read attempts and create/process rounds to ride out
#: a 34 % fault rate.
CLIENT = {"timeout": 0.5, "max_retries": 10, "retry_delay": 0.05, "retry_max_wait": 0.3, "create_rounds": 6}
PLAN = fault_plan(rate=0.08, delay_seconds=0.7, retry_after_seconds=1, seed=5)


@pytest.mark.timeout(300)
def test_200_rows_under_faults_are_paid_once_and_reported_as_the_gateway_holds_them(
    sandbox_factory: Any,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox = sandbox_factory("--seed", "3", "--processing-delay", "0.2")
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", sandbox.airflow_connection(**CLIENT))
    batch = make_batch(200, SMALL_INVALID, seed=11)
    batch_file = batch.write(tmp_path / "in" / "chaos-small.csv")
    out = tmp_path / "out"
    put_plan(sandbox.url, sandbox.auth, PLAN)
    started = time.monotonic()
    result = run_dag(
        "payout_batch",
        {
            "batch_file": str(batch_file),
            "batch_id": BATCH_ID,
            "output_dir": str(out),
            "chunk_size": 110,
            "chunk_concurrency": 16,
        },
    )
    elapsed = time.monotonic() - started

    clear_plan(sandbox.url, sandbox.auth)
    tally = FaultTally()
    tally.add(read_counts(sandbox.url, sandbox.auth))
    gateway = _settled_gateway(sandbox)
    verdict = compare(batch, BATCH_ID, gateway, read_report(out / BATCH_ID / "report.csv"))
    print("\n".join([*tally.table(), *verdict.details(), verdict.line(tally.total_injected)]))
    print(f"small chaos run: {elapsed:.1f} s")

    assert tally.gaps() == []
    assert verdict.ok, "\n".join(verdict.details())
    assert result.tasks["report"] == "success"
    assert result.state == "failed"  # red: the invalid rows were rejected (and reported)


def _settled_gateway(sandbox: Any, timeout: float = 20) -> Any:
    """The gateway once the batch's invoices stopped moving (processing takes 0.2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            snapshot = read_gateway(sandbox.url, sandbox.auth)
        except httpx.HTTPError:
            snapshot = None
        if snapshot is not None and (not snapshot.non_final(f"{BATCH_ID}:") or time.monotonic() > deadline):
            return snapshot
        time.sleep(0.5)
