"""PayoutInvoiceTrigger against the real sandbox (asyncio): one event for every outcome."""

from __future__ import annotations

import time
from typing import Any

import pytest
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.triggers import PayoutInvoiceTrigger

from .conftest import FAST, card_request


async def events_of(trigger: PayoutInvoiceTrigger) -> list[dict[str, Any]]:
    """Every event the trigger yields (the contract: exactly one)."""
    return [event.payload async for event in trigger.run()]


def trigger_for(ids: list[str], **kwargs: Any) -> PayoutInvoiceTrigger:
    options = {"poll_interval": 0.1, "backoff": 1.5, "max_poll_interval": 0.3, "hook_params": FAST}
    options.update(kwargs)
    return PayoutInvoiceTrigger(ids, **options)


def payout(hook: PayoutGatewayHook, reference_id: str, process: bool = True, **test_details: str) -> str:
    fields = {f"test_details_{k}": v for k, v in test_details.items()}
    options = {"allow_partially": True} if "partially" in test_details.get("payout_status", "") else None
    request = card_request(reference_id, fields=fields, **({"options": options} if options else {}))
    invoice = hook.create_and_process(request) if process else hook.create_invoice(request)
    return invoice.id


async def test_success(hook: PayoutGatewayHook) -> None:
    ids = [payout(hook, "ref-t-ok-1"), payout(hook, "ref-t-ok-2")]
    (event,) = await events_of(trigger_for(ids))
    assert event["status"] == "success"
    assert [(i["id"], i["status"], i["processed_amount"]) for i in event["invoices"]] == [
        (ids[0], "processed", "10.00"),
        (ids[1], "processed", "10.00"),
    ]
    assert "2 payout(s) final" in event["message"]


async def test_failed_carries_status_and_resolution(hook: PayoutGatewayHook) -> None:
    ok = payout(hook, "ref-t-f-ok")
    bad = payout(hook, "ref-t-f-bad", payout_status="process failed", payout_resolution="insufficient funds")
    (event,) = await events_of(trigger_for([ok, bad]))
    assert event["status"] == "failed"
    failed = next(i for i in event["invoices"] if i["id"] == bad)
    assert (failed["status"], failed["resolution"]) == ("process_failed", "insufficient_funds")
    assert f"{bad} process_failed (insufficient_funds)" in event["message"]


async def test_partially_processed_is_success_with_the_processed_amount(hook: PayoutGatewayHook) -> None:
    invoice_id = payout(hook, "ref-t-part", payout_status="partially processed")
    (event,) = await events_of(trigger_for([invoice_id]))
    assert event["status"] == "success"
    (invoice,) = event["invoices"]
    assert invoice["status"] == "partially_processed"
    assert 0 < float(invoice["processed_amount"]) < 10


async def test_error_group_resolution_needs_a_person(hook: PayoutGatewayHook) -> None:
    invoice_id = payout(hook, "ref-t-person", payout_resolution="connection error")
    (event,) = await events_of(trigger_for([invoice_id]))
    assert event["status"] == "needs_person"
    (invoice,) = event["invoices"]
    assert invoice["moderation_required"] is True and invoice["resolution"] == "connection_error"


async def test_timeout_leaves_the_payout_alone(hook: PayoutGatewayHook, sandbox: Any) -> None:
    invoice_id = payout(hook, "ref-t-timeout", process=False)
    started = time.monotonic()
    (event,) = await events_of(trigger_for([invoice_id], end_time=time.time() + 0.6))
    assert event["status"] == "timeout"
    assert 0.5 < time.monotonic() - started < 3
    assert event["invoices"][0]["status"] == "created"
    assert sandbox.ledger()["references"]["ref-t-timeout"]["process_calls"] == 0


async def test_error_after_consecutive_transient_failures(hook: PayoutGatewayHook, sandbox: Any) -> None:
    invoice_id = payout(hook, "ref-t-err")
    sandbox.set_faults([{"endpoint": "get_invoice", "kind": "error_before", "rate": 1.0, "status": 503}])
    trigger = trigger_for([invoice_id], max_consecutive_failures=3, hook_params={**FAST, "max_retries": 1})
    (event,) = await events_of(trigger)
    assert event["status"] == "error"
    assert "3 consecutive poll round(s)" in event["message"] and "server_error" in event["message"]


async def test_transient_failures_below_the_limit_are_tolerated(
    hook: PayoutGatewayHook, sandbox: Any
) -> None:
    invoice_id = payout(hook, "ref-t-flaky")
    sandbox.set_faults([{"endpoint": "get_invoice", "kind": "reset", "rate": 0.5}], seed=11)
    trigger = trigger_for([invoice_id], max_consecutive_failures=10, hook_params={**FAST, "max_retries": 1})
    (event,) = await events_of(trigger)
    assert event["status"] == "success"


async def test_unknown_invoice_is_an_error_at_once(gateway_conn: Any) -> None:
    (event,) = await events_of(trigger_for(["cpoi_0000000000000000"]))
    assert event["status"] == "error"
    assert "404" in event["message"]


async def test_many_invoices_with_bounded_concurrency(hook: PayoutGatewayHook) -> None:
    ids = [payout(hook, f"ref-t-many-{n}") for n in range(25)]
    (event,) = await events_of(trigger_for(ids, concurrency=4))
    assert event["status"] == "success"
    assert [i["id"] for i in event["invoices"]] == ids


@pytest.mark.parametrize("gateway_down", [True])
async def test_broken_connection_is_one_error_event(
    monkeypatch: pytest.MonkeyPatch, gateway_down: bool
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT",
        '{"conn_type": "payout_gateway", "host": "http://127.0.0.1:9/api"}',
    )
    (event,) = await events_of(trigger_for(["cpoi_x"]))
    assert event["status"] == "error" and "needs login (account id) and password" in event["message"]
