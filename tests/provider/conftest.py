"""Provider test helpers: a hook with short timeouts against the session sandbox."""

from __future__ import annotations

import random
from typing import Any

import pytest
from payout_gateway.hooks import PayoutGatewayHook

CARD = "5123817234060000"
FAST = {"timeout": 2.0, "max_retries": 3, "retry_delay": 0.01, "retry_max_wait": 0.05, "create_rounds": 3}


@pytest.fixture
def hook(gateway_conn: Any) -> PayoutGatewayHook:
    """A hook on ``payout_gateway_default`` (the sandbox) with short waits."""
    return PayoutGatewayHook(**FAST)


def card_request(reference_id: str, amount: str = "10.00", card: str = CARD, **extra: Any) -> dict[str, Any]:
    """Attributes of a card payout (as the create sample's ``data.attributes``)."""
    return {
        "service": "card",
        "currency": "USD",
        "amount": amount,
        "reference_id": reference_id,
        "fields": {"card_number": card, **extra.pop("fields", {})},
        **extra,
    }


def seed_failing_once(rate: float = 0.5) -> int:
    """A fault-plan seed whose first draw fires and whose next one does not (draws per endpoint call)."""
    for seed in range(10_000):
        rng = random.Random(seed)
        if rng.random() < rate <= rng.random():
            return seed
    raise AssertionError("no seed found")


def ledger_entry(sandbox: Any, reference_id: str) -> dict[str, Any]:
    """The sandbox ledger for one reference (zeros when it has none)."""
    return sandbox.ledger()["references"].get(
        reference_id, {"invoices": 0, "process_calls": 0, "invoice_ids": []}
    )
