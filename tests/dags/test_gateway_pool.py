"""The gateway pool: payout_batch's chunk tasks run in it, so chunks in flight are bounded on all
workers together; its size is a setting. (Its creation: demo.py is exercised by test_main_job,
the compose init service by tests/test_deploy_files.py, `make cluster-check` by itself.)"""

from __future__ import annotations

from typing import Any

import pytest
from payout_jobs.gateway_pool import DEFAULT_POOL_SLOTS, GATEWAY_POOL, pool_slots


def test_chunk_tasks_run_in_the_gateway_pool_and_waits_do_not(dagbag: Any) -> None:
    dag = dagbag.get_dag("payout_batch")
    assert dag.get_task("chunk.execute").pool == GATEWAY_POOL == "payout_gateway"
    # A deferred wait holds no slot anywhere; its short worker runs must not queue behind chunks.
    assert dag.get_task("chunk.wait").pool == "default_pool"
    assert dag.get_task("check_batch").pool == "default_pool"


def test_pool_slots_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYOUT_GATEWAY_POOL_SLOTS", raising=False)
    assert pool_slots() == DEFAULT_POOL_SLOTS
    monkeypatch.setenv("PAYOUT_GATEWAY_POOL_SLOTS", " 12 ")
    assert pool_slots() == 12
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv("PAYOUT_GATEWAY_POOL_SLOTS", bad)
        with pytest.raises(ValueError, match="at least 1"):
            pool_slots()
