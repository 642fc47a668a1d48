"""Every fault kind on create and on process: one invoice and one effective processing per reference.

Faults come from the sandbox's admin API; the sandbox ledger is the proof.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from payout_gateway.exceptions import PayoutOutcomeUnknownError, PayoutRateLimitError, PayoutServerError
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.statuses import PayoutStatus

from .conftest import FAST, card_request, ledger_entry, seed_failing_once

# Kinds where the gateway did the work although the client saw no success.
COMMITTED = [
    {"kind": "error_after_commit", "status": 502},
    {"kind": "delay", "seconds": 1.0},
    {"kind": "reset"},
]
# What the client logs for each kind (outcome class of the POST attempt).
OUTCOME = {
    "error_after_commit": "server_error",
    "delay": "timeout",
    "reset": "connection_error",
    "error_before": "server_error",
    "rate_limit": "rate_limited",
}
# Kinds where nothing happened: the client must find "absent" and send again.
NOT_COMMITTED = [{"kind": "error_before", "status": 503}, {"kind": "rate_limit", "seconds": 1}]


@pytest.fixture
def short_hook(gateway_conn: Any) -> PayoutGatewayHook:
    """A hook whose read timeout (0.5 s) is shorter than the delay fault (1 s)."""
    return PayoutGatewayHook(**{**FAST, "timeout": 0.5})


@pytest.mark.parametrize("fault", COMMITTED, ids=lambda f: f["kind"])
def test_create_with_lost_answer_adopts_the_invoice(
    short_hook: PayoutGatewayHook, sandbox: Any, fault: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.set_faults([{"endpoint": "create_invoice", "rate": 1.0, **fault}])
    invoice = short_hook.create_invoice(card_request("ref-f1"), lookup_first=False)
    logged = capsys.readouterr().out
    assert f"POST create reference_id=ref-f1 attempt=1 outcome=unknown:{OUTCOME[fault['kind']]}" in logged
    assert "found after an unknown outcome" in logged
    assert "attempt=2" not in logged
    sandbox.clear_faults()
    entry = ledger_entry(sandbox, "ref-f1")
    assert entry["invoices"] == 1 and entry["invoice_ids"] == [invoice.id]
    again = short_hook.create_invoice(card_request("ref-f1"))
    assert again.id == invoice.id
    assert ledger_entry(sandbox, "ref-f1")["invoices"] == 1


@pytest.mark.parametrize("fault", NOT_COMMITTED, ids=lambda f: f["kind"])
def test_create_that_did_nothing_is_sent_again_after_an_absent_lookup(
    short_hook: PayoutGatewayHook, sandbox: Any, fault: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.set_faults([{"endpoint": "create_invoice", "rate": 0.5, **fault}], seed=seed_failing_once())
    invoice = short_hook.create_invoice(card_request("ref-f2"), lookup_first=False)
    logged = capsys.readouterr().out
    assert f"attempt=1 outcome=unknown:{OUTCOME[fault['kind']]}" in logged
    assert "create reference_id=ref-f2: lookup answered absent after attempt 1; sending again" in logged
    assert "POST create reference_id=ref-f2 attempt=2 outcome=created" in logged
    assert ledger_entry(sandbox, "ref-f2") == {"invoices": 1, "process_calls": 0, "invoice_ids": [invoice.id]}


@pytest.mark.parametrize("fault", NOT_COMMITTED, ids=lambda f: f["kind"])
def test_create_that_keeps_failing_ends_in_outcome_unknown(
    short_hook: PayoutGatewayHook, sandbox: Any, fault: dict[str, Any]
) -> None:
    sandbox.set_faults([{"endpoint": "create_invoice", "rate": 1.0, **fault}])
    with pytest.raises(PayoutOutcomeUnknownError, match="reconcile by reference_id") as err:
        short_hook.create_invoice(card_request("ref-f3"))
    assert err.value.attempts == FAST["create_rounds"]
    assert ledger_entry(sandbox, "ref-f3")["invoices"] == 0
    sandbox.clear_faults()
    short_hook.create_invoice(card_request("ref-f3"))
    assert ledger_entry(sandbox, "ref-f3")["invoices"] == 1


def test_create_with_unreadable_gateway_after_an_ambiguous_answer_stops(
    short_hook: PayoutGatewayHook, sandbox: Any
) -> None:
    sandbox.set_faults(
        [
            {"endpoint": "create_invoice", "kind": "error_after_commit", "rate": 1.0},
            {"endpoint": "list_invoices", "kind": "error_before", "rate": 1.0},
        ]
    )
    with pytest.raises(PayoutOutcomeUnknownError, match="then the lookup failed"):
        short_hook.create_invoice(card_request("ref-f4"), lookup_first=False)
    sandbox.clear_faults()
    assert ledger_entry(sandbox, "ref-f4")["invoices"] == 1
    # the retry of the task adopts the invoice the lost answer created
    assert (
        short_hook.create_invoice(card_request("ref-f4")).id
        == ledger_entry(sandbox, "ref-f4")["invoice_ids"][0]
    )
    assert ledger_entry(sandbox, "ref-f4")["invoices"] == 1


@pytest.mark.parametrize("fault", COMMITTED, ids=lambda f: f["kind"])
def test_process_with_lost_answer_reads_and_stops(
    short_hook: PayoutGatewayHook, sandbox: Any, fault: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    invoice = short_hook.create_invoice(card_request("ref-p1"))
    sandbox.set_faults([{"endpoint": "process_invoice", "rate": 1.0, **fault}])
    result = short_hook.process_invoice(invoice.id)
    logged = capsys.readouterr().out
    assert f"POST process reference_id=ref-p1 attempt=1 outcome=unknown:{OUTCOME[fault['kind']]}" in logged
    assert "POST process reference_id=ref-p1 attempt=2" not in logged
    sandbox.clear_faults()
    assert result.status in {PayoutStatus.PROCESSING, PayoutStatus.PROCESSED}
    assert short_hook.process_invoice(invoice.id).id == invoice.id
    assert ledger_entry(sandbox, "ref-p1")["process_calls"] == 1


@pytest.mark.parametrize("fault", NOT_COMMITTED, ids=lambda f: f["kind"])
def test_process_that_did_nothing_is_sent_again_after_a_read(
    short_hook: PayoutGatewayHook, sandbox: Any, fault: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    invoice = short_hook.create_invoice(card_request("ref-p2"))
    sandbox.set_faults([{"endpoint": "process_invoice", "rate": 0.5, **fault}], seed=seed_failing_once())
    result = short_hook.process_invoice(invoice.id)
    logged = capsys.readouterr().out
    assert f"POST process reference_id=ref-p2 attempt=1 outcome=unknown:{OUTCOME[fault['kind']]}" in logged
    assert "POST process reference_id=ref-p2 attempt=2 outcome=ok" in logged
    assert result.status is not PayoutStatus.CREATED
    assert ledger_entry(sandbox, "ref-p2")["process_calls"] == 1


@pytest.mark.parametrize("fault", NOT_COMMITTED, ids=lambda f: f["kind"])
def test_process_that_keeps_failing_ends_in_outcome_unknown(
    short_hook: PayoutGatewayHook, sandbox: Any, fault: dict[str, Any]
) -> None:
    invoice = short_hook.create_invoice(card_request("ref-p3"))
    sandbox.set_faults([{"endpoint": "process_invoice", "rate": 1.0, **fault}])
    with pytest.raises(PayoutOutcomeUnknownError, match="still created"):
        short_hook.process_invoice(invoice.id)
    assert ledger_entry(sandbox, "ref-p3")["process_calls"] == 0


@pytest.mark.parametrize("lookup_first", [True, False], ids=["lookup-first", "create-first"])
@pytest.mark.parametrize(
    "fault",
    [*COMMITTED, *NOT_COMMITTED],
    ids=lambda f: f["kind"],
)
def test_create_and_process_under_faults_everywhere(
    short_hook: PayoutGatewayHook, sandbox: Any, fault: dict[str, Any], lookup_first: bool
) -> None:
    """The first pass as a chunk's first try (with or without a lookup before each create), then
    a retry: one invoice and one processing per reference either way."""
    sandbox.set_faults(
        [
            {"endpoint": "create_invoice", "rate": 0.5, **fault},
            {"endpoint": "process_invoice", "rate": 0.5, **fault},
        ],
        seed=3,
    )
    for n in range(4):
        with contextlib.suppress(PayoutOutcomeUnknownError):  # a retry below resolves it
            short_hook.create_and_process(card_request(f"ref-cp-{n}"), lookup_first=lookup_first)
    sandbox.clear_faults()
    for n in range(4):  # what a retry does: the same references again
        short_hook.create_and_process(card_request(f"ref-cp-{n}"))
    for n in range(4):
        entry = ledger_entry(sandbox, f"ref-cp-{n}")
        assert (entry["invoices"], entry["process_calls"]) == (1, 1), (n, entry)


def test_get_retries_transient_errors_then_succeeds(short_hook: PayoutGatewayHook, sandbox: Any) -> None:
    invoice = short_hook.create_invoice(card_request("ref-g1"))
    sandbox.set_faults(
        [{"endpoint": "get_invoice", "kind": "error_before", "rate": 0.5}], seed=seed_failing_once()
    )
    assert short_hook.get_invoice(invoice.id).id == invoice.id


@pytest.mark.parametrize(
    "fault",
    [{"kind": "error_before"}, {"kind": "reset"}, {"kind": "delay", "seconds": 1.0}],
    ids=lambda f: f["kind"],
)
def test_get_gives_up_after_bounded_attempts(
    short_hook: PayoutGatewayHook, sandbox: Any, fault: dict[str, Any]
) -> None:
    invoice = short_hook.create_invoice(card_request("ref-g2"))
    sandbox.set_faults([{"endpoint": "get_invoice", "rate": 1.0, **fault}])
    with pytest.raises(Exception) as err:
        short_hook.get_invoice(invoice.id)
    assert (
        err.type is PayoutServerError or "Timeout" in err.type.__name__ or "Connection" in err.type.__name__
    )


async def test_async_read_retries_transient_errors(short_hook: PayoutGatewayHook, sandbox: Any) -> None:
    invoice = short_hook.create_invoice(card_request("ref-g3"))
    sandbox.set_faults([{"endpoint": "get_invoice", "kind": "reset", "rate": 0.5}], seed=seed_failing_once())
    read = await PayoutGatewayHook(**FAST).aget_invoice(invoice.id)
    assert read.id == invoice.id


async def test_async_read_gives_up_after_bounded_attempts(
    short_hook: PayoutGatewayHook, sandbox: Any
) -> None:
    invoice = short_hook.create_invoice(card_request("ref-g4"))
    sandbox.set_faults([{"endpoint": "get_invoice", "kind": "rate_limit", "rate": 1.0, "seconds": 1}])
    with pytest.raises(PayoutRateLimitError):
        await PayoutGatewayHook(**FAST).aget_invoice(invoice.id)


def test_a_rate_limited_create_costs_time_not_a_round(gateway_conn: Any, sandbox: Any) -> None:
    """One create round allowed: a 429 (Retry-After) whose lookup proves nothing was made does not
    spend it, so the create goes through; the ledger shows one invoice."""
    hook = PayoutGatewayHook(**{**FAST, "create_rounds": 1})
    sandbox.set_faults(
        [{"endpoint": "create_invoice", "rate": 0.5, "kind": "rate_limit", "seconds": 1}],
        seed=seed_failing_once(),
    )
    invoice = hook.create_invoice(card_request("ref-f429"), lookup_first=False)
    assert ledger_entry(sandbox, "ref-f429") == {
        "invoices": 1,
        "process_calls": 0,
        "invoice_ids": [invoice.id],
    }


def test_a_server_error_spends_the_only_round(gateway_conn: Any, sandbox: Any) -> None:
    """The same with a 503: it is a round, so with one round the outcome is reported unknown."""
    hook = PayoutGatewayHook(**{**FAST, "create_rounds": 1})
    sandbox.set_faults(
        [{"endpoint": "create_invoice", "rate": 0.5, "kind": "error_before", "status": 503}],
        seed=seed_failing_once(),
    )
    with pytest.raises(PayoutOutcomeUnknownError, match="lookups found nothing") as err:
        hook.create_invoice(card_request("ref-f503"), lookup_first=False)
    assert err.value.attempts == 1
    assert ledger_entry(sandbox, "ref-f503")["invoices"] == 0
