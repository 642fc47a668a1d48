"""The sensor maps every wait event explicitly; nothing falls through to success."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from payout_gateway.events import error_event, settled_event, timeout_event
from payout_gateway.exceptions import (
    PayoutGatewayError,
    PayoutInvoiceFailedError,
    PayoutNeedsPersonError,
    PayoutWaitTimeoutError,
)
from payout_gateway.models import PayoutInvoice
from payout_gateway.sensors import PayoutInvoiceSensor, default_deferrable, normalize_invoice_ids
from payout_gateway.triggers import PayoutInvoiceTrigger


def invoice(invoice_id: str, status: str, resolution: str = "ok", **extra: Any) -> PayoutInvoice:
    return PayoutInvoice(
        id=invoice_id,
        status=status,
        resolution=resolution,
        reference_id=f"ref-{invoice_id}",
        amount=Decimal("10"),
        currency="USD",
        **extra,
    )


def sensor(**kwargs: Any) -> PayoutInvoiceSensor:
    return PayoutInvoiceSensor(task_id="wait", invoice_ids=["a", "b"], **kwargs)


def test_success_returns_the_invoice_list_and_warns_on_partial(caplog: pytest.LogCaptureFixture) -> None:
    latest = {
        "a": invoice("a", "processed", processed_amount=Decimal("10")),
        "b": invoice("b", "partially_processed", processed_amount=Decimal("4.5")),
    }
    event = settled_event(["a", "b"], latest)
    assert event["status"] == "success"
    result = sensor().complete(event)
    assert [(i["id"], i["status"], i["processed_amount"]) for i in result] == [
        ("a", "processed", "10.00"),
        ("b", "partially_processed", "4.50"),
    ]


@pytest.mark.parametrize(
    ("statuses", "event_status", "error"),
    [
        (("processed", "process_failed"), "failed", PayoutInvoiceFailedError),
        (("expired", "processed"), "failed", PayoutInvoiceFailedError),
        (("canceled", "processed"), "failed", PayoutInvoiceFailedError),
        (("processed", "terminated"), "failed", PayoutInvoiceFailedError),
    ],
)
def test_failures_fail_without_retry(statuses: tuple[str, str], event_status: str, error: type) -> None:
    latest = {"a": invoice("a", statuses[0], "insufficient_funds"), "b": invoice("b", statuses[1])}
    event = settled_event(["a", "b"], latest)
    assert event["status"] == event_status
    with pytest.raises(error) as err:
        sensor().complete(event)
    assert isinstance(err.value, AirflowFailException)
    assert "failed" in str(err.value)


def test_failure_message_names_status_and_resolution() -> None:
    event = settled_event(["a"], {"a": invoice("a", "process_failed", "insufficient_funds")})
    with pytest.raises(PayoutInvoiceFailedError, match="a process_failed \\(insufficient_funds\\)"):
        sensor().complete(event)


@pytest.mark.parametrize(
    "waiting",
    [invoice("b", "processing", "connection_error"), invoice("b", "created", moderation_required=True)],
)
def test_needs_person_fails_and_says_so(waiting: PayoutInvoice, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT",
        json.dumps(
            {
                "conn_type": "payout_gateway",
                "host": "http://127.0.0.1:9/api",
                "login": "merchant",
                "password": "secret",
                "extra": {
                    "dashboard_url_template": "https://dashboard.example.com/payout-invoices/{invoice_id}"
                },
            }
        ),
    )
    event = settled_event(["a", "b"], {"a": invoice("a", "processed"), "b": waiting})
    assert event["status"] == "needs_person"
    with pytest.raises(
        PayoutNeedsPersonError, match="A person must review it in the gateway dashboard"
    ) as err:
        sensor().complete(event)
    assert "https://dashboard.example.com/payout-invoices/b" in str(err.value)
    assert "payout-invoices/a" not in str(err.value)


@pytest.mark.parametrize(
    "event_status",
    ["failed", "needs_person"],
)
def test_fail_on_payout_failure_false_returns_the_list(event_status: str) -> None:
    other = (
        invoice("b", "process_failed")
        if event_status == "failed"
        else invoice("b", "process_error", "unknown")
    )
    event = settled_event(["a", "b"], {"a": invoice("a", "processed"), "b": other})
    assert event["status"] == event_status
    result = sensor(fail_on_payout_failure=False).complete(event)
    assert [i["id"] for i in result] == ["a", "b"]


def test_timeout_and_error_raise_even_without_fail_on_payout_failure() -> None:
    latest = {"a": invoice("a", "processing")}
    with pytest.raises(PayoutWaitTimeoutError, match="a retry waits again"):
        sensor(fail_on_payout_failure=False).complete(timeout_event(["a", "b"], latest))
    with pytest.raises(PayoutGatewayError, match="unreadable"):
        sensor(fail_on_payout_failure=False).complete(error_event("Gateway unreadable", ["a"], latest))
    assert not issubclass(PayoutWaitTimeoutError, AirflowFailException)


@pytest.mark.parametrize("event", [None, {}, {"status": "succeeded"}, {"status": "SUCCESS"}, "success"])
def test_unknown_events_fail(event: Any) -> None:
    with pytest.raises(AirflowException, match="Unexpected payout wait event"):
        sensor(fail_on_payout_failure=False).complete(event)


def test_unknown_status_is_not_settled() -> None:
    latest = {"a": invoice("a", "brand_new_status")}
    event = timeout_event(["a"], latest)
    assert event["invoices"][0]["status"] == "unknown"


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ("cpoi_1", ["cpoi_1"]),
        (["cpoi_1", "cpoi_2", "cpoi_1"], ["cpoi_1", "cpoi_2"]),
        ([{"id": "cpoi_1", "status": "created"}, {"id": "cpoi_2"}], ["cpoi_1", "cpoi_2"]),
        (None, []),
        ("", []),
    ],
)
def test_normalize_invoice_ids(value: Any, ids: list[str]) -> None:
    assert normalize_invoice_ids(value) == ids


@pytest.mark.parametrize("text", ['["cpoi_1", "cpoi_2"]', "['cpoi_1']", '{"id": "cpoi_1"}'])
def test_the_text_of_a_list_is_refused_not_parsed(text: str) -> None:
    with pytest.raises(PayoutGatewayError, match="pass the XComArg"):
        normalize_invoice_ids(text)


def test_sensor_needs_an_invoice() -> None:
    with pytest.raises(ValueError, match="invoice_id or invoice_ids"):
        PayoutInvoiceSensor(task_id="wait")


def test_deferrable_by_default_and_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_deferrable() is True
    assert PayoutInvoiceSensor(task_id="w", invoice_id="a").deferrable is True
    monkeypatch.setenv("AIRFLOW__PAYOUT_GATEWAY__DEFAULT_DEFERRABLE", "False")
    assert PayoutInvoiceSensor(task_id="w", invoice_id="a").deferrable is False
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert PayoutInvoiceSensor(task_id="w", invoice_id="a").deferrable is True
    assert PayoutInvoiceSensor(task_id="w", invoice_id="a", deferrable=False).deferrable is False


def test_trigger_serialize_round_trips() -> None:
    trigger = PayoutInvoiceTrigger(
        ["cpoi_1", "cpoi_2"],
        payout_gateway_conn_id="gw",
        poll_interval=2.0,
        backoff=2.0,
        max_poll_interval=30.0,
        end_time=1_900_000_000.0,
        max_consecutive_failures=3,
        concurrency=4,
        hook_params={"timeout": 5},
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "payout_gateway.triggers.PayoutInvoiceTrigger"
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["invoice_ids"] == ["cpoi_1", "cpoi_2"] and kwargs["hook_params"] == {"timeout": 5}
