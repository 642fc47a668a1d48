"""Each hook method against the real sandbox over HTTP."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from payout_gateway.exceptions import PayoutReferenceConflictError, PayoutValidationError
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.statuses import PayoutStatus

from .conftest import CARD, FAST, card_request, ledger_entry


def test_prerequest_lists_services_with_usable_fields(hook: PayoutGatewayHook) -> None:
    result = hook.prerequest("USD", "10")
    assert result.currency == "USD"
    assert {"test_usd", "card"} <= set(result.services)
    account = result.services["test_usd"].field("account")
    assert account is not None and account.required and account.regexp == r"^\d{1,15}$"
    card = result.services["card"]
    assert card.field("card_number").pattern.fullmatch(CARD)
    assert card.amount_min == Decimal("1") and card.amount_max == Decimal("5000")
    assert "methods" not in result.services and "account" not in result.services


def test_list_services_walks_every_page(hook: PayoutGatewayHook) -> None:
    small_pages = hook.list_services(page_size=2)
    one_page = hook.list_services(page_size=100)
    assert [s.id for s in small_pages] == [s.id for s in one_page]
    assert len({s.id for s in small_pages}) == len(small_pages) >= 10
    codes = {s.service for s in small_pages}
    assert {"test_usd", "card", "bank_transfer_zar", "swift_jpy"} <= codes


def test_get_service(hook: PayoutGatewayHook) -> None:
    listed = next(s for s in hook.list_services() if s.service == "swift_jpy")
    service = hook.get_service(listed.id)
    assert (service.id, service.service, service.currency, service.service_currency) == (
        listed.id,
        "swift_jpy",
        "GBP",
        "JPY",
    )
    assert service.id.startswith("comcpos_")


def test_create_get_find_public(hook: PayoutGatewayHook, sandbox: Any) -> None:
    invoice = hook.create_invoice(card_request("ref-create-1"))
    assert invoice.id.startswith("cpoi_") and invoice.status is PayoutStatus.CREATED
    assert (invoice.amount, invoice.currency, invoice.service) == (Decimal("10"), "USD", "card")
    assert invoice.fields["card_number"] == "512381******0000"
    assert hook.get_invoice(invoice.id).reference_id == "ref-create-1"
    found = hook.find_invoice_by_reference("ref-create-1")
    assert found is not None and found.id == invoice.id
    assert hook.find_invoice_by_reference("ref-absent") is None
    public = hook.get_public_invoice(invoice.id)
    assert (public.id, public.status, public.service) == (invoice.id, PayoutStatus.CREATED, "card")
    assert ledger_entry(sandbox, "ref-create-1")["invoices"] == 1


def test_create_from_the_sample_document(hook: PayoutGatewayHook) -> None:
    from pathlib import Path

    document = json.loads(
        (Path(__file__).parents[1] / "spec_samples" / "payout-invoices.create.request.json").read_text()
    )
    document["data"]["attributes"]["callback_url"] = None
    invoice = hook.create_invoice(document)
    assert invoice.reference_id == "a5c22bfb-04c1-4dbf-8b46-9753bf1f6570"


def test_process_only_once(hook: PayoutGatewayHook, sandbox: Any) -> None:
    invoice = hook.create_invoice(card_request("ref-process-1"))
    processed = hook.process_invoice(invoice.id)
    assert processed.status in {PayoutStatus.PROCESSING, PayoutStatus.PROCESSED}
    again = hook.process_invoice(invoice.id)
    assert again.id == invoice.id
    assert ledger_entry(sandbox, "ref-process-1")["process_calls"] == 1


def test_create_and_process(hook: PayoutGatewayHook, sandbox: Any) -> None:
    invoice = hook.create_and_process(card_request("ref-cap-1"))
    assert invoice.status is not PayoutStatus.CREATED
    again = hook.create_and_process(card_request("ref-cap-1"))
    assert again.id == invoice.id
    assert ledger_entry(sandbox, "ref-cap-1") | {"invoice_ids": None} == {
        "invoices": 1,
        "process_calls": 1,
        "invoice_ids": None,
    }


def test_list_invoices_walks_the_cursor(hook: PayoutGatewayHook) -> None:
    created = {hook.create_invoice(card_request(f"ref-list-{n}"), lookup_first=False).id for n in range(5)}
    walked = [i.id for i in hook.list_invoices(page_size=2)]
    assert sorted(walked) == sorted(created)
    filtered = list(hook.list_invoices(filters={"reference_id": "ref-list-3"}))
    assert [i.reference_id for i in filtered] == ["ref-list-3"]


@pytest.mark.parametrize("lookup_first", [True, False])
def test_second_create_adopts_the_first(hook: PayoutGatewayHook, sandbox: Any, lookup_first: bool) -> None:
    first = hook.create_invoice(card_request("ref-dup"), lookup_first=False)
    second = hook.create_invoice(card_request("ref-dup"), lookup_first=lookup_first)
    assert second.id == first.id
    assert ledger_entry(sandbox, "ref-dup")["invoices"] == 1


@pytest.mark.parametrize(
    ("changes", "difference"),
    [
        ({"amount": "11.00"}, "amount"),
        ({"card": "4111111111111111"}, "fields.card_number"),
        ({"service": "card_eur", "currency": "EUR"}, "currency, service"),
    ],
)
@pytest.mark.parametrize("lookup_first", [True, False])
def test_reference_reused_for_another_payout_is_refused(
    hook: PayoutGatewayHook, sandbox: Any, changes: dict[str, str], difference: str, lookup_first: bool
) -> None:
    hook.create_invoice(card_request("ref-reuse"))
    with pytest.raises(PayoutReferenceConflictError) as err:
        hook.create_invoice(card_request("ref-reuse", **changes), lookup_first=lookup_first)
    assert f"differs in: {difference}" in str(err.value)
    assert "4111111111111111" not in str(err.value) and CARD not in str(err.value)
    assert ledger_entry(sandbox, "ref-reuse")["invoices"] == 1


def test_invalid_request_sends_nothing(hook: PayoutGatewayHook, sandbox: Any) -> None:
    with pytest.raises(PayoutValidationError) as err:
        hook.create_invoice(card_request("ref-bad", amount="10.001"))
    assert err.value.field == "amount"
    assert sandbox.ledger()["references"] == {}


def test_connection_test_is_a_harmless_read(hook: PayoutGatewayHook, sandbox: Any) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert "payout services" in message
    assert sandbox.ledger()["references"] == {}


def test_connection_test_reports_bad_credentials(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = json.loads(sandbox.airflow_connection())
    conn["password"] = "wrong-password-value"
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", json.dumps(conn))
    ok, message = PayoutGatewayHook(**FAST).test_connection()
    assert not ok
    assert "401" in message and "Check the connection" in message
    assert "wrong-password-value" not in message


async def test_aget_invoice(hook: PayoutGatewayHook) -> None:
    invoice = hook.create_invoice(card_request("ref-async"))
    read = await PayoutGatewayHook(**FAST).aget_invoice(invoice.id)
    assert (read.id, read.reference_id, read.status) == (invoice.id, "ref-async", PayoutStatus.CREATED)
    async with PayoutGatewayHook(**FAST) as shared:
        assert (await shared.aget_invoice(invoice.id)).id == invoice.id
        assert (await shared.aget_invoice(invoice.id)).amount == Decimal("10")


def test_dashboard_url(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT",
        sandbox.airflow_connection(
            dashboard_url_template="https://dashboard.example.com/payout-invoices/{invoice_id}"
        ),
    )
    assert (
        PayoutGatewayHook().dashboard_url("cpoi_x") == "https://dashboard.example.com/payout-invoices/cpoi_x"
    )
