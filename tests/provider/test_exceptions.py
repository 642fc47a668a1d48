"""Each HTTP error class, with the gateway's details (both body shapes), from real servers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from payout_gateway.exceptions import (
    PayoutAuthenticationError,
    PayoutBadRequestError,
    PayoutConflictError,
    PayoutGatewayApiError,
    PayoutMethodNotAllowedError,
    PayoutNotFoundError,
    PayoutPermissionError,
    PayoutRateLimitError,
    PayoutServerError,
    PayoutUnprocessableError,
    api_error_class,
)
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.retries import PayoutMalformedResponseError, parse_retry_after

from .conftest import FAST, card_request
from .receiver import receiver


def test_401_says_to_check_the_connection(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = json.loads(sandbox.airflow_connection())
    conn["password"] = "not-the-api-key"
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", json.dumps(conn))
    with pytest.raises(PayoutAuthenticationError) as err:
        PayoutGatewayHook(**FAST).get_invoice("cpoi_0000000000000000")
    assert err.value.status_code == 401
    assert "Check the connection" in str(err.value)
    assert "not-the-api-key" not in str(err.value)


def test_404_carries_the_gateway_error(hook: PayoutGatewayHook) -> None:
    with pytest.raises(PayoutNotFoundError) as err:
        hook.get_invoice("cpoi_0000000000000000")
    assert err.value.status_code == 404
    assert err.value.errors and err.value.errors[0].code == "404"
    assert "GET /api/payout-invoices/cpoi_0000000000000000 failed with HTTP 404" in str(err.value)


def test_405(hook: PayoutGatewayHook) -> None:
    with pytest.raises(PayoutMethodNotAllowedError) as err:
        hook._send("DELETE", "payout-services")
    assert err.value.status_code == 405


def test_409_duplicate_reference_has_the_existing_invoice(hook: PayoutGatewayHook) -> None:
    invoice = hook.create_invoice(card_request("ref-409"))
    with pytest.raises(PayoutConflictError) as err:
        hook._send(
            "POST",
            "payout-invoices",
            body={
                "data": {
                    "type": "payout-invoice",
                    "attributes": card_request("ref-409", amount=Decimal("10.00")),
                }
            },
        )
    assert err.value.meta("invoice_id") == invoice.id
    assert err.value.titles == ["duplicate_reference_id"]


def test_409_not_processable(hook: PayoutGatewayHook) -> None:
    invoice = hook.create_and_process(card_request("ref-409p"))
    with pytest.raises(PayoutConflictError) as err:
        hook._send("POST", f"payout-invoices/{invoice.id}/process")
    assert err.value.titles == ["invoice_not_processable"]
    assert err.value.meta("invoice_status") in {"processing", "processed"}


def test_422_field_errors_without_values(hook: PayoutGatewayHook) -> None:
    body = {
        "data": {
            "type": "payout-invoice",
            "attributes": card_request("ref-422", amount=Decimal("10.00"), card="51238172340600"),
        }
    }
    with pytest.raises(PayoutUnprocessableError) as err:
        hook._send("POST", "payout-invoices", body=body)
    assert "fields.card_number" in err.value.field_errors or "card_number" in str(err.value.field_errors)
    assert "51238172340600" not in str(err.value)


def test_429_with_retry_after(hook: PayoutGatewayHook, sandbox: Any) -> None:
    sandbox.set_faults([{"endpoint": "list_services", "kind": "rate_limit", "rate": 1.0, "seconds": 3}])
    with pytest.raises(PayoutRateLimitError) as err:
        hook.list_services()
    assert err.value.retry_after == 3.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx(hook: PayoutGatewayHook, sandbox: Any, status: int) -> None:
    sandbox.set_faults([{"endpoint": "get_service", "kind": "error_before", "rate": 1.0, "status": status}])
    with pytest.raises(PayoutServerError) as err:
        hook.get_service("comcpos_0000000000000000")
    assert err.value.status_code == status


@pytest.mark.parametrize(
    ("status", "body", "cls", "text"),
    [
        (
            400,
            {"errors": [{"status": "Bad Request", "code": "400", "detail": "Malformed"}]},
            PayoutBadRequestError,
            "Malformed",
        ),
        (
            403,
            {"errors": [{"status": "Forbidden", "code": "403"}]},
            PayoutPermissionError,
            "Check the connection",
        ),
        (
            422,
            {"request_id": "r-1", "error_type": "validation_error", "error_codes": ["amount_invalid"]},
            PayoutUnprocessableError,
            "validation_error: amount_invalid",
        ),
        (418, "not json at all", PayoutGatewayApiError, "not json at all"),
    ],
)
def test_statuses_the_sandbox_does_not_produce(
    monkeypatch: pytest.MonkeyPatch, status: int, body: Any, cls: type, text: str
) -> None:
    with receiver({"/api/payout-services": (status, body, {})}) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT",
            json.dumps(
                {"conn_type": "payout_gateway", "host": server.api_url, "login": "m", "password": "p-secret"}
            ),
        )
        with pytest.raises(cls) as err:
            PayoutGatewayHook(**FAST).list_services()
    assert type(err.value) is cls and err.value.status_code == status
    assert text in str(err.value)
    assert len(server.requests) == 1  # client errors are never retried


def test_a_cut_off_success_body_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    with receiver({"/api/payout-services": (200, '{"data": [', {})}) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT",
            json.dumps(
                {"conn_type": "payout_gateway", "host": server.api_url, "login": "m", "password": "p-secret"}
            ),
        )
        with pytest.raises(PayoutMalformedResponseError):
            PayoutGatewayHook(**FAST).list_services()
    assert len(server.requests) == FAST["max_retries"]


def test_links_to_another_host_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    page = {
        "meta": {},
        "links": {"next": "http://evil.example.com/api/payout-services?page[number]=2"},
        "data": [],
    }
    with receiver({"/api/payout-services": page}) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT",
            json.dumps(
                {"conn_type": "payout_gateway", "host": server.api_url, "login": "m", "password": "p-secret"}
            ),
        )
        with pytest.raises(Exception, match="another host"):
            PayoutGatewayHook(**FAST).list_services()


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, PayoutBadRequestError), (401, PayoutAuthenticationError), (403, PayoutPermissionError),
     (404, PayoutNotFoundError), (405, PayoutMethodNotAllowedError), (409, PayoutConflictError),
     (422, PayoutUnprocessableError), (429, PayoutRateLimitError), (500, PayoutServerError),
     (599, PayoutServerError), (418, PayoutGatewayApiError)],
)  # fmt: skip
def test_api_error_class(status: int, cls: type) -> None:
    assert api_error_class(status) is cls


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("0.5", 0.5), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds
