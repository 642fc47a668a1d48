"""One grammar for money: ASCII digits, one optional '.', the currency's decimals, a bounded size.

Every refusal names the field ``amount`` and a reason that never holds the value.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from payout_gateway.exceptions import PayoutValidationError
from payout_gateway.money import amount_rule
from payout_gateway.validation import coerce_request, quantize_amount

GRAMMAR = {2: re.compile(r"[0-9]{1,15}(\.[0-9]{1,2})?"), 0: re.compile(r"[0-9]{1,15}")}
EXPONENT = {"USD": 2, "EUR": 2, "JPY": 0, "KRW": 0}

HOSTILE = [
    "1e3",
    "1E3",
    "1e30",
    "1_000",
    "1,000",
    " 10 ",
    "10 ",
    "10\n",
    "\t10",
    "+10",
    "-0",
    "-5.00",
    "\uff11\uff12",  # full-width digits
    "١٢٣",  # Arabic-Indic digits
    "۱۲",  # Extended Arabic-Indic digits
    "१२",  # Devanagari digits
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "sNaN",
    "9" * 10_000,
    "0." + "1" * 10_000,
    "1" * 16,
    "4111111111111111",  # a card number in the amount column
    ".5",
    "5.",
    "1.2.3",
    "0x10",
    '=HYPERLINK("http://x")',
    "=1+1",
    "10.001",
    "",
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t)[:24])
def test_hostile_amount_text_is_refused_naming_the_field_not_the_value(text: str) -> None:
    with pytest.raises(PayoutValidationError) as caught:
        quantize_amount(text, "USD")
    assert caught.value.field == "amount"
    assert caught.value.reason
    if len(text.strip()) >= 2:  # the rule's example (125.50) is fixed text, not the value
        assert text.strip() not in str(caught.value).replace(amount_rule("USD"), "")


@pytest.mark.parametrize("text", ["10.5", "10.50", "1000.00", "0.1"])
def test_zero_decimal_currencies_take_no_decimals_at_all(text: str) -> None:
    with pytest.raises(PayoutValidationError, match=r"no decimals, for JPY, e\.g\. 12550"):
        quantize_amount(text, "JPY")


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("10", "USD", "10.00"),
        ("10.5", "USD", "10.50"),
        ("0.01", "EUR", "0.01"),
        ("999999999999999.99", "USD", "999999999999999.99"),
        ("007", "USD", "7.00"),
        ("1000", "JPY", "1000"),
    ],
)
def test_amounts_in_the_grammar_keep_their_exact_value(text: str, currency: str, expected: str) -> None:
    assert str(quantize_amount(text, currency)) == expected


def test_json_numbers_are_judged_by_their_exact_text_never_rounded() -> None:
    assert quantize_amount(10.5, "USD") == Decimal("10.50")
    assert quantize_amount(7, "JPY") == Decimal(7)
    for number in (0.1 + 0.2, 1e16, float("nan"), float("inf"), -1.0, -3, 10**15, True):
        with pytest.raises(PayoutValidationError) as caught:
            quantize_amount(number, "USD")
        assert caught.value.field == "amount"


def test_a_request_dict_is_checked_as_typed_not_after_the_model_parsed_it() -> None:
    """On main the model turned "1e3" or full-width digits into Decimals first, and they passed."""
    base = {"service": "test_usd", "currency": "USD", "reference_id": "r", "fields": {"account": "1"}}
    for text in ("1e3", "\uff11\uff12", " 10 ", "1_000"):
        with pytest.raises(PayoutValidationError) as caught:
            coerce_request({**base, "amount": text})
        assert caught.value.field == "amount"
        document = {"data": {"type": "payout-invoice", "attributes": {**base, "amount": text}}}
        with pytest.raises(PayoutValidationError):
            coerce_request(document)
    assert coerce_request({**base, "amount": "10.5"}).amount == Decimal("10.50")


@pytest.mark.parametrize(
    ("text", "currency", "rule"),
    [
        ("12.345", "USD", "has 3 decimal places: use digits and at most 2 decimals for USD, e.g. 125.50"),
        ("10.5", "CLP", "has decimal places: use digits only, no decimals, for CLP, e.g. 12550"),
        ("1,000", "KRW", "use digits only, no decimals, for KRW, e.g. 12550"),
        ("", "EUR", "is required: use digits and at most 2 decimals for EUR, e.g. 125.50"),
    ],
)
def test_a_refusal_says_how_to_write_the_amount_in_its_currency(text: str, currency: str, rule: str) -> None:
    """The message a person reads: the field, what is wrong, how to write it for this currency."""
    with pytest.raises(PayoutValidationError) as caught:
        quantize_amount(text, currency)
    assert f"amount: {rule}" in str(caught.value) or caught.value.reason.endswith(rule)
    assert caught.value.reason.endswith(rule)


def test_clp_and_krw_amounts_are_whole_numbers() -> None:
    assert quantize_amount("125000", "CLP") == Decimal(125000)
    assert quantize_amount("15000", "KRW") == Decimal(15000)


@settings(max_examples=600, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=40),
        st.text(alphabet="0123456789.eE+-_, ", max_size=25),
        st.from_regex(r"\A[0-9]{0,17}(\.[0-9]{0,4})?\Z"),
        st.text(st.characters(categories=["Nd"]), min_size=1, max_size=6),
    ),
    currency=st.sampled_from(sorted(EXPONENT)),
)
def test_every_text_is_exact_money_or_refused_without_echo(text: str, currency: str) -> None:
    exponent = EXPONENT[currency]
    try:
        value = quantize_amount(text, currency)
    except PayoutValidationError as exc:
        assert exc.field == "amount"
        assert GRAMMAR[exponent].fullmatch(text) is None
        if sum(c.isdigit() for c in text) >= 4:  # number-like: must not be echoed
            assert text not in str(exc).replace(amount_rule(currency), "")
        return
    assert GRAMMAR[exponent].fullmatch(text), "accepted outside the grammar"
    assert value == Decimal(text)  # paid exactly as written
    assert value.as_tuple().exponent == -exponent
