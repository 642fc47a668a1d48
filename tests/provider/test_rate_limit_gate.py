"""Issue 7 item 13, provider side: the shared rate-limit gate, deadlines, and a wait that keeps
waiting through 429s and 5xx (real sandbox; waits are counted, never timed)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.retries import PayoutDeadlineError, RateLimitGate, rate_limit_gate
from payout_gateway.triggers import PayoutInvoiceTrigger

from .conftest import FAST, card_request, ledger_entry


@pytest.fixture
def gate() -> Iterator[RateLimitGate]:
    shared = rate_limit_gate(PayoutGatewayHook.default_conn_name)
    shared.reset()
    yield shared
    shared.reset()


def seed_firing_first(count: int, rate: float = 0.5) -> int:
    """A fault seed whose first ``count`` draws fire and whose next one does not."""
    for seed in range(100_000):
        rng = random.Random(seed)
        if all(rng.random() < rate for _ in range(count)) and rng.random() >= rate:
            return seed
    raise AssertionError("no seed found")


# ----------------------------------------------------------------------------- the gate itself


def test_overlapping_holds_share_one_closed_window() -> None:
    gate = RateLimitGate("unit")
    assert gate.hold(30) == pytest.approx(30, abs=0.01)
    assert gate.hold(10) == pytest.approx(30, abs=0.01)  # a shorter Retry-After never shortens it
    assert gate.hold(30) == pytest.approx(30, abs=0.01)  # nor does an equal one add to it
    assert gate.rate_limited == 3
    assert gate.closed_seconds == pytest.approx(30, abs=0.05)


def test_a_gate_opening_after_the_deadline_refuses_at_once_without_sleeping() -> None:
    gate = RateLimitGate("unit")
    gate.hold(30)
    with pytest.raises(PayoutDeadlineError):
        gate.wait(deadline=time.monotonic() + 1)
    assert gate.waits == 0 and gate.waited_seconds == 0
    assert RateLimitGate("open").wait(deadline=time.monotonic() + 1) == 0.0


async def test_waiting_coroutines_leave_at_the_shared_instant() -> None:
    gate = RateLimitGate("unit")
    gate.hold(0.2)
    gate.hold(0.1)
    await gate.await_open()
    assert gate.remaining() == 0 and gate.waits == 1 and gate.longest_wait <= 0.25


# ----------------------------------------------------------------------------- with the sandbox


def test_a_read_spends_time_not_attempts_on_429s(
    gateway_conn: Any, sandbox: Any, gate: RateLimitGate
) -> None:
    """Three 429s in a row (``Retry-After: 1``) do not exhaust a read of 2 attempts: they cost
    3 s of its 10 s rate-limit budget (2 attempts x 5 s max wait), spent at the shared gate."""
    hook = PayoutGatewayHook(**{**FAST, "max_retries": 2, "retry_max_wait": 5.0})
    invoice = hook.create_invoice(card_request("ref-gate-read"))
    sandbox.set_faults(
        [{"endpoint": "get_invoice", "kind": "rate_limit", "rate": 0.5, "seconds": 1}],
        seed=seed_firing_first(3),
    )

    assert hook.get_invoice(invoice.id).id == invoice.id
    assert gate.rate_limited == 3 and gate.waits == 3
    assert gate.longest_wait <= 1.05


def test_nothing_is_sent_past_the_deadline(gateway_conn: Any, sandbox: Any, gate: RateLimitGate) -> None:
    hook = PayoutGatewayHook(**FAST)
    hook.deadline = time.monotonic() - 1
    with pytest.raises(PayoutDeadlineError):
        hook.create_and_process(card_request("ref-gate-late"))
    assert ledger_entry(sandbox, "ref-gate-late")["invoices"] == 0


async def test_the_wait_keeps_waiting_through_429s_and_5xx(
    gateway_conn: Any, sandbox: Any, gate: RateLimitGate
) -> None:
    """Reads answering 429 (``Retry-After: 1``) or 502 often, one attempt per read and one failed
    round allowed: the wait still ends in ``success`` (it used to end in ``error``)."""
    hook = PayoutGatewayHook(**FAST)
    ids = [hook.create_and_process(card_request(f"ref-gate-wait-{i}")).id for i in range(5)]
    sandbox.set_faults(
        [
            {"endpoint": "get_invoice", "kind": "rate_limit", "rate": 0.3, "seconds": 1},
            {"endpoint": "get_invoice", "kind": "error_before", "rate": 0.3, "status": 502},
        ],
        seed=5,
    )
    trigger = PayoutInvoiceTrigger(
        ids,
        poll_interval=0.1,
        max_poll_interval=0.2,
        max_consecutive_failures=1,
        end_time=time.time() + 120,
        hook_params={**FAST, "max_retries": 1, "retry_max_wait": 1.0},
    )

    (event,) = [e.payload async for e in trigger.run()]

    sandbox.clear_faults()
    assert event["status"] == "success", event["message"]
    assert [i["status"] for i in event["invoices"]] == ["processed"] * 5
    assert gate.rate_limited > 0


async def test_the_wait_still_ends_at_its_end_time_under_429s(
    gateway_conn: Any, sandbox: Any, gate: RateLimitGate
) -> None:
    hook = PayoutGatewayHook(**FAST)
    invoice_id = hook.create_and_process(card_request("ref-gate-end")).id
    sandbox.set_faults([{"endpoint": "get_invoice", "kind": "rate_limit", "rate": 1.0, "seconds": 5}])
    trigger = PayoutInvoiceTrigger(
        [invoice_id], poll_interval=0.1, end_time=time.time() + 1, hook_params={**FAST, "retry_max_wait": 5.0}
    )

    (event,) = [e.payload async for e in trigger.run()]

    sandbox.clear_faults()
    assert event["status"] == "timeout"  # retryable: a retry waits again; the payout is left alone
    assert gate.waits == 0  # the 5 s Retry-After ends after the wait: nobody slept for it
