"""Requests are checked against the service before anything is sent; errors name the field only."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from payout_gateway.exceptions import PayoutValidationError
from payout_gateway.models import CreatePayoutInvoiceRequest, PrerequestResult, PrerequestService
from payout_gateway.references import derive_reference_id
from payout_gateway.validation import coerce_request, currency_exponent, quantize_amount, validate_request

SAMPLES = Path(__file__).resolve().parents[1] / "spec_samples"
CARD = "5123817234060000"


@pytest.fixture
def test_usd() -> PrerequestService:
    return PrerequestResult.model_validate(
        json.loads((SAMPLES / "prerequest.response.json").read_text())
    ).services["test_usd"]


@pytest.fixture
def card_service() -> PrerequestService:
    return PrerequestService.model_validate(
        {
            "code": "card",
            "method": "payment_card",
            "currency": "USD",
            "invoice_currency": "USD",
            "amount_min": 1,
            "amount_max": 5000,
            "fields": [
                {"key": "card_number", "regexp": "^\\\\d{16}$", "required": True},
                {"key": "card_holder", "required": False},
            ],
        }
    )


def request(**overrides: object) -> CreatePayoutInvoiceRequest:
    values = {
        "service": "test_usd",
        "currency": "USD",
        "amount": "10",
        "reference_id": "ref-1",
        "fields": {"account": "42"},
    }
    values.update(overrides)
    return coerce_request(values)


@pytest.mark.parametrize(
    ("code", "exponent"), [("USD", 2), ("eur", 2), ("JPY", 0), ("KRW", 0), ("CLP", 0), ("VND", 0), ("PYG", 0)]
)
def test_currency_exponent(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("10", "USD", "10.00"),
        (10.5, "USD", "10.50"),
        (Decimal("1000"), "JPY", "1000"),
        ("0.10", "EUR", "0.10"),
        (Decimal("5.000"), "JPY", "5"),  # a Decimal is judged by its value; text by the grammar
    ],
)
def test_quantize_amount(amount: object, currency: str, expected: str) -> None:
    result = quantize_amount(amount, currency)
    assert isinstance(result, Decimal) and str(result) == expected


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("10.001", "USD"), ("10.5", "JPY"), ("5.000", "JPY"), ("abc", "USD"), ("NaN", "USD"), (True, "USD")],
)
def test_quantize_amount_rejects(amount: object, currency: str) -> None:
    with pytest.raises(PayoutValidationError) as err:
        quantize_amount(amount, currency)
    assert err.value.field == "amount"


def test_valid_request_passes(test_usd: PrerequestService) -> None:
    validate_request(request(), test_usd)
    validate_request(
        request(fields={"account": "1", "test_details_payout_status": "process failed"}), test_usd
    )


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"fields": {}}, "fields.account", "is required"),
        ({"fields": {"account": "12ab"}}, "fields.account", "does not match"),
        ({"fields": {"account": "1", "iban": "x"}}, "fields.iban", "is not a field of service test_usd"),
        ({"amount": "0.001"}, "amount", "decimal places"),
        ({"amount": "10000000"}, "amount", "above the service maximum"),
        ({"currency": "EUR"}, "currency", "offered for USD"),
        ({"service": "card"}, "service", "service checked is 'test_usd'"),
    ],
)
def test_invalid_requests_name_the_field(
    test_usd: PrerequestService, overrides: dict[str, object], field: str, reason: str
) -> None:
    values = {
        "service": "test_usd",
        "currency": "USD",
        "amount": "10",
        "reference_id": "r",
        "fields": {"account": "42"},
    }
    values.update(overrides)
    model = CreatePayoutInvoiceRequest.model_validate(values)
    with pytest.raises(PayoutValidationError) as err:
        validate_request(model, test_usd)
    assert err.value.field == field
    assert reason in str(err.value)
    assert field in str(err.value)


def test_card_number_never_in_the_error_text(card_service: PrerequestService) -> None:
    bad = CARD[:-1] + "X"
    with pytest.raises(PayoutValidationError) as err:
        validate_request(request(service="card", fields={"card_number": bad}), card_service)
    assert err.value.field == "fields.card_number"
    assert CARD[:12] not in str(err.value)


def test_amount_below_minimum(card_service: PrerequestService) -> None:
    with pytest.raises(PayoutValidationError, match="below the service minimum 1"):
        validate_request(request(service="card", amount="0.50", fields={"card_number": CARD}), card_service)


def test_every_problem_is_listed(card_service: PrerequestService) -> None:
    with pytest.raises(PayoutValidationError) as err:
        validate_request(request(service="card", amount="9000", fields={"pin": "1"}), card_service)
    assert [f for f, _ in err.value.problems] == ["amount", "fields.pin", "fields.card_number"]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"service": "card", "currency": "usd", "amount": "-1", "reference_id": "r"}, "amount"),
        ({"service": "card", "currency": "US", "amount": "1", "reference_id": "r"}, "currency"),
        ({"service": "card", "currency": "USD", "amount": "1"}, "reference_id"),
        (
            {
                "service": "card",
                "currency": "USD",
                "amount": "1",
                "reference_id": "r",
                "fields": {"card_number": 5123817234060000},
            },
            "fields.card_number",
        ),
    ],
)
def test_coerce_request_names_the_field_without_values(values: dict[str, object], field: str) -> None:
    with pytest.raises(PayoutValidationError) as err:
        coerce_request(values)
    assert err.value.field == field
    assert "5123817234060000" not in str(err.value)


def test_coerce_request_quantizes() -> None:
    assert str(request(amount=10.1).amount) == "10.10"
    assert request(currency="jpy", amount="500").currency == "JPY"


def test_derive_reference_id_is_deterministic_and_bounded() -> None:
    first = derive_reference_id("dag", "task", "-1", "2026-01-01T00:00:00+00:00")
    assert first == derive_reference_id("dag", "task", "-1", "2026-01-01T00:00:00+00:00")
    assert first != derive_reference_id("dag", "task", "0", "2026-01-01T00:00:00+00:00")
    assert derive_reference_id("ab", "c") != derive_reference_id("a", "bc")
    assert len(first) <= 64 and first.startswith("af-")
    # stable across processes, machines and versions: pinned values
    assert derive_reference_id("x") == "af-028f0df5b8596fbcd10c9720b7a4784f8e7e04f6"
    with pytest.raises(ValueError):
        derive_reference_id()
