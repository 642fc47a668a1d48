"""The Airflow pool that bounds how many batch chunks talk to the gateway at once, on all workers.

Every ``payout_batch`` chunk task (``chunk.execute``) runs in the pool :data:`GATEWAY_POOL`, so at
most ``slots`` chunks are paying at the same time whatever the number of workers, and at most
``slots x chunk_concurrency`` requests are in flight at the gateway. Waits (deferred sensors) are
not in the pool. The pool must exist wherever the DAG runs: ``scripts/demo.py``, the compose
``airflow-init`` service and ``make cluster-check`` create it. A task whose pool does not exist is
never run: in Airflow 3.3.2 it stays ``scheduled`` for ever, the scheduler logs "Tasks using
non-existent pool 'payout_gateway' will not be scheduled" at every loop, and no DAG warning or
error shows in the UI. ``dag.test()`` ignores pools.

Slots: ``PAYOUT_GATEWAY_POOL_SLOTS`` (default 4), read by whoever creates the pool.
"""

from __future__ import annotations

import os

GATEWAY_POOL = "payout_gateway"
DEFAULT_POOL_SLOTS = 4
POOL_DESCRIPTION = "Batch chunks paying at the gateway at once (all workers); size it to its rate limit"


def pool_slots() -> int:
    """Slots of the gateway pool (``PAYOUT_GATEWAY_POOL_SLOTS``, at least 1)."""
    raw = os.environ.get("PAYOUT_GATEWAY_POOL_SLOTS", "").strip()
    if not raw:
        return DEFAULT_POOL_SLOTS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError("PAYOUT_GATEWAY_POOL_SLOTS must be a whole number of at least 1")
    return int(raw)
