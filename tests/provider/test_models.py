"""Every documented sample parses as is, quirks included (FACTS.md)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from payout_gateway.models import (
    CreatePayoutInvoiceRequest,
    InvoicePage,
    PayoutInvoice,
    PayoutService,
    PrerequestResult,
    ServicePage,
    normalize_regexp,
    parse_error_body,
)
from payout_gateway.money import dumps
from payout_gateway.statuses import PayoutStatus

SAMPLES = Path(__file__).resolve().parents[1] / "spec_samples"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def test_every_sample_file_is_covered() -> None:
    covered = {
        "error.401.json", "error.404.json", "error.405.json", "error.422.json", "error.500.json",
        "payout-invoices.create.request.json", "payout-invoices.create.response.json",
        "payout-invoices.get.private.response.json", "payout-invoices.get.public.response.json",
        "payout-invoices.list.response.json", "payout-invoices.process.response.json",
        "payout-services.get.response.json", "payout-services.list.response.json",
        "prerequest.request.json", "prerequest.response.json",
    }  # fmt: skip
    assert {p.name for p in SAMPLES.glob("*.json")} == covered


def test_prerequest_keeps_methods_and_account_apart_from_services() -> None:
    result = PrerequestResult.model_validate(sample("prerequest.response.json"))
    assert list(result.services) == ["test_usd"]
    assert result.methods["test"].category == "alternative"
    assert result.account is not None and result.account.name == "4Docs"
    service = result.services["test_usd"]
    assert service.invoice_currency == "USD"
    assert (service.amount_min, service.amount_max, service.amount) == (
        Decimal("0.01"),
        Decimal("9999999"),
        Decimal("10.00"),
    )
    assert [f.key for f in service.fields] == [
        "account",
        "test_details_success_rate",
        "test_details_payout_status",
        "test_details_payout_resolution",
    ]
    assert service.field("account").required is True


def test_prerequest_regexps_are_normalised_and_usable() -> None:
    service = PrerequestResult.model_validate(sample("prerequest.response.json")).services["test_usd"]
    account = service.field("account")
    assert account.regexp == r"^\d{1,15}$"
    assert account.pattern.fullmatch("123456789012345")
    assert not account.pattern.fullmatch("12a")
    status = service.field("test_details_payout_status")
    assert status.regexp == r"^[A-Z\-\sa-z]{2,64}$"
    assert status.pattern.fullmatch("process failed")
    assert not status.pattern.fullmatch("processed!")


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("^\\\\d{1,15}$", r"^\d{1,15}$"),
        (r"^\d{16}$", r"^\d{16}$"),
        ("^[A-Z]{2}$", "^[A-Z]{2}$"),
        (None, None),
    ],
)
def test_normalize_regexp(raw: str | None, normalised: str | None) -> None:
    assert normalize_regexp(raw) == normalised


def test_prerequest_request_sample_matches_what_the_hook_sends() -> None:
    body = sample("prerequest.request.json")
    assert set(body) == {"currency", "amount", "public_key"}


def test_service_list_item_without_links_or_service_relationship() -> None:
    page = ServicePage.model_validate(sample("payout-services.list.response.json"))
    assert (page.total, page.pages, page.page) == (168, 9, 1)
    assert page.next_link == "/api/payout-services?page[number]=2&page[size]=20"
    first, second = page.items
    assert (first.id, first.service, first.method, first.currency) == (
        "comcpos_RHUGUgEnmmedR7h3",
        "swift_jpy",
        "swift",
        "GBP",
    )
    assert (second.service, second.method, second.amount_min) == (
        "bank_transfer_zar",
        "bank_transfer",
        Decimal("0.01"),
    )


def test_service_by_id() -> None:
    service = PayoutService.model_validate(sample("payout-services.get.response.json"))
    assert (service.id, service.service, service.service_currency, service.amount_max) == (
        "comcpos_RHUGUgEnmmedR7h3",
        "swift_jpy",
        "JPY",
        Decimal("999999"),
    )


@pytest.mark.parametrize(
    ("name", "status", "processed_amount"),
    [
        ("payout-invoices.create.response.json", PayoutStatus.CREATED, None),
        ("payout-invoices.process.response.json", PayoutStatus.CREATED, None),
        ("payout-invoices.get.private.response.json", PayoutStatus.PROCESSED, Decimal("10")),
        ("payout-invoices.get.public.response.json", PayoutStatus.PROCESSED, Decimal("10")),
    ],
)
def test_invoice_samples(name: str, status: PayoutStatus, processed_amount: Decimal | None) -> None:
    invoice = PayoutInvoice.model_validate(sample(name))
    assert invoice.id == "cpoi_VdHYVxq4RsLEebAQ"
    assert invoice.status is status
    assert invoice.resolution == "ok"
    assert invoice.amount == Decimal("10") and isinstance(invoice.amount, Decimal)
    assert invoice.currency == "USD"
    assert invoice.service == "card"
    assert invoice.processed_amount == processed_amount


def test_private_invoice_keeps_masked_fields_out_of_repr_and_summary() -> None:
    invoice = PayoutInvoice.model_validate(sample("payout-invoices.get.private.response.json"))
    assert invoice.fields == {"card_number": "512381******0000"}
    assert invoice.reference_id == "ada8c01f-f5d4-4037-88f1-d222ee6497ad"
    assert "512381" not in repr(invoice)
    summary = invoice.summary()
    assert summary == {
        "id": "cpoi_VdHYVxq4RsLEebAQ",
        "reference_id": "ada8c01f-f5d4-4037-88f1-d222ee6497ad",
        "status": "processed",
        "resolution": "ok",
        "amount": "10.00",
        "processed_amount": "10.00",
        "currency": "USD",
        "moderation_required": False,
        "service": "card",
        "outcome": "succeeded",
        "fee": "0.00",
        "writeoff": "10.00",
        "processed_fee": "0.00",
        "processed_writeoff": "10.00",
        "created": "2020-08-19T11:15:35Z",
        "processed": "2020-08-19T11:18:53Z",
    }
    assert json.loads(json.dumps(summary)) == summary


def test_invoice_list_with_empty_links() -> None:
    page = InvoicePage.model_validate(sample("payout-invoices.list.response.json"))
    assert [i.id for i in page.items] == ["cpoi_S1zoJnT8x4iZ4oPr", "cpoi_O2aH69xK7mgwZUK1"]
    assert [i.status for i in page.items] == [PayoutStatus.CREATED, PayoutStatus.PROCESSED]
    assert (page.count, page.size, page.before, page.after) == (
        5,
        20,
        "cpoi_WSvqrC4BztUHs5Ji",
        "cpoi_S1zoJnT8x4iZ4oPr",
    )
    assert page.next_link is None and page.prev_link is None


def test_create_request_sample_round_trips_with_exact_numbers() -> None:
    document = sample("payout-invoices.create.request.json")
    request = CreatePayoutInvoiceRequest.model_validate(document)
    assert (request.service, request.currency, request.amount) == ("card", "USD", Decimal("10"))
    assert request.customer is not None and request.customer.reference_id == "1203515"
    assert request.options is not None and request.options.auto_process is False
    assert "5123817234060000" not in repr(request)
    assert json.loads(dumps(request.to_document())) == document


def test_amounts_from_floats_keep_their_decimal_text() -> None:
    invoice = PayoutInvoice.model_validate(
        {"id": "cpoi_x", "amount": 100.55, "currency": "USD", "status": "created"}
    )
    assert invoice.amount == Decimal("100.55")
    assert dumps({"amount": Decimal("100.55")}) == '{"amount":100.55}'


def test_unknown_status_and_new_keys() -> None:
    invoice = PayoutInvoice.model_validate(
        {"id": "cpoi_x", "amount": 1, "currency": "USD", "status": "on_hold_v2", "brand_new_key": {"a": 1}}
    )
    assert invoice.status is PayoutStatus.UNKNOWN
    assert invoice.outcome.value == "pending"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("error.401.json", [("Unauthorized", "401", None, None)]),
        ("error.404.json", [("Not Found", "404", None, None)]),
        ("error.405.json", [("Method Not Allowed", "405", None, None)]),
        ("error.422.json", [(None, None, "amount", "This value should be greater than 0.")]),
        ("error.500.json", [("internal_error", "500", None, "Internal server error.")]),
    ],
)
def test_error_samples(name: str, expected: list[tuple[str | None, ...]]) -> None:
    errors = parse_error_body(sample(name))
    assert [(e.status, e.code, e.field, e.detail) for e in errors] == expected


def test_legacy_422_error_shape() -> None:
    errors = parse_error_body(
        {"request_id": "r1", "error_type": "validation_error", "error_codes": ["amount_invalid"]}
    )
    assert errors[0].title == "validation_error"
    assert errors[0].meta == {"request_id": "r1", "error_codes": ["amount_invalid"]}


@pytest.mark.parametrize("body", [None, "oops", [], {"errors": None}, {"message": "x"}])
def test_error_bodies_without_errors(body: Any) -> None:
    assert parse_error_body(body) == []
