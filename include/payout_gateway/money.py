"""Money helpers: Decimal amounts, currency exponents, the amount grammar, JSON with exact numbers.

The grammar (:func:`parse_amount`) is the one definition of "valid money" for everything a person
types (the trigger form, batch cells): ASCII digits ``0-9``, at most one ``.`` with digits on both
sides, at most :data:`MAX_INTEGER_DIGITS` digits before it and at most the currency's decimals after
it. No sign, exponent, separator, space or other script's digits. Reasons never hold the value.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

#: Currencies with no minor unit (the gateway's documented list).
ZERO_DECIMAL_CURRENCIES: frozenset[str] = frozenset({"CLP", "JPY", "KRW", "PYG", "VND"})
#: Currencies with two decimals that the forms offer (any other code is still read with 2).
TWO_DECIMAL_CURRENCIES: frozenset[str] = frozenset({"USD", "EUR", "GBP", "ZAR"})
#: The currencies this module knows the decimals of: what the trigger forms offer.
SUPPORTED_CURRENCIES: tuple[str, ...] = (*sorted(TWO_DECIMAL_CURRENCIES), *sorted(ZERO_DECIMAL_CURRENCIES))


#: Most digits an amount may have before the point (999 trillion: far above any payout limit).
MAX_INTEGER_DIGITS = 15
_AMOUNT_TEXT = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<decimals>[0-9]+))?")
_EXPONENT = re.compile(r"[0-9]*\.?[0-9]*[eE][+-]?[0-9]+")
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")


class AmountError(ValueError):
    """An amount outside the grammar; the message is the reason, never the value."""


def currency_exponent(code: str) -> int:
    """Digits after the decimal point that ``code`` allows: 0 for zero-decimal currencies, else 2."""
    return 0 if code.strip().upper() in ZERO_DECIMAL_CURRENCIES else 2


def _currency_name(currency: str) -> str:
    code = currency.strip().upper()
    return code if _CURRENCY_CODE.fullmatch(code) else "the currency"


def amount_example(currency: str) -> str:
    """A valid amount of ``currency`` to show a person: ``125.50``, or ``12550`` without decimals."""
    return "12550" if currency_exponent(currency) == 0 else "125.50"


def amount_rule(currency: str) -> str:
    """How to write an amount of ``currency``, for a person: "use digits and at most 2 decimals
    for USD, e.g. 125.50" (never holds a typed value)."""
    name, example, exponent = _currency_name(currency), amount_example(currency), currency_exponent(currency)
    if exponent == 0:
        return f"use digits only, no decimals, for {name}, e.g. {example}"
    return f"use digits and at most {exponent} decimals for {name}, e.g. {example}"


def amount_rules() -> str:
    """The amount rule of every supported currency, in one sentence (for a form's help text)."""
    two = ", ".join(sorted(TWO_DECIMAL_CURRENCIES))
    none = ", ".join(sorted(ZERO_DECIMAL_CURRENCIES))
    return (
        f"digits 0-9 with at most 2 decimals for {two} (e.g. 125.50) and no decimals for {none} "
        "(e.g. 12550); no sign, spaces, exponent or digit separators"
    )


def _decimals_reason(count: int, exponent: int) -> str:
    return "has decimal places" if exponent == 0 else f"has {count} decimal places"


def _text_problem(text: str) -> str:
    """Why ``text`` (not in the grammar) is refused: the first rule it breaks."""
    if any(c.isspace() for c in text):
        return "must not contain spaces or line breaks"
    if not text.isascii():
        return "must use the ASCII digits 0-9 only (no other digits, letters or symbols)"
    if text[0] in "+-":
        return "must be written without a sign (+ or -)"
    if any(c in "_,'" for c in text):
        return "must not contain digit separators (_ , ')"
    if _EXPONENT.fullmatch(text):
        return "must not use an exponent (e or E)"
    if any(c.isalpha() for c in text):
        return "is not a number (digits 0-9 with an optional '.')"
    if text.count(".") > 1:
        return "has more than one '.'"
    return "must be digits 0-9, optionally a '.' and digits after it"


def parse_amount(value: Any, currency: str) -> Decimal:
    """``value`` as a Decimal with exactly ``currency``'s decimals, or :class:`AmountError`.

    Text must follow the grammar (module docstring); a float is judged by its shortest text
    (``repr``: ``10.5`` passes, ``0.1 + 0.2`` does not); an int or a Decimal by its value. Never
    rounds: more decimals than the currency allows is an error. The error says what is wrong and
    how to write the amount (:func:`amount_rule`), never the value.
    """
    try:
        return _parse_amount(value, currency)
    except AmountError as exc:
        raise AmountError(f"{exc}: {amount_rule(currency)}") from None


def _parse_amount(value: Any, currency: str) -> Decimal:
    exponent = currency_exponent(currency)
    if value is None or value == "":
        raise AmountError("is required")
    if isinstance(value, bool):
        raise AmountError("must be text such as 10.50, not true/false")
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, int):
        if value < 0:
            raise AmountError("must not be negative")
        if value >= 10**MAX_INTEGER_DIGITS:
            raise AmountError(f"has more than {MAX_INTEGER_DIGITS} digits before the point")
        return Decimal(value).quantize(Decimal(1).scaleb(-exponent))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise AmountError("is not a finite number")
        if value.is_signed():
            raise AmountError("must not be negative")
        if value and value.adjusted() >= MAX_INTEGER_DIGITS:
            raise AmountError(f"has more than {MAX_INTEGER_DIGITS} digits before the point")
        if decimal_places(value) > exponent:
            raise AmountError(_decimals_reason(decimal_places(value), exponent))
        return value.quantize(Decimal(1).scaleb(-exponent))
    if not isinstance(value, str):
        raise AmountError(f"must be text such as 10.50, not {type(value).__name__}")
    match = _AMOUNT_TEXT.fullmatch(value)
    if match is None:
        raise AmountError(_text_problem(value))
    if len(match["whole"]) > MAX_INTEGER_DIGITS:
        raise AmountError(f"has more than {MAX_INTEGER_DIGITS} digits before the point")
    decimals = len(match["decimals"] or "")
    if decimals > exponent:
        raise AmountError(_decimals_reason(decimals, exponent))
    return Decimal(value).quantize(Decimal(1).scaleb(-exponent))


def to_decimal(value: Any) -> Decimal:
    """``value`` as a Decimal; floats go through ``repr`` (their shortest exact text), never binary."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not an amount")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, int | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValueError("not a number") from exc
    else:
        raise TypeError(f"{type(value).__name__} is not an amount")
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result


def decimal_places(amount: Decimal) -> int:
    """How many digits ``amount`` has after the point, ignoring trailing zeros."""
    exponent = amount.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def format_amount(amount: Decimal | None, currency: str | None) -> str | None:
    """``amount`` as text with the currency's decimals (``10`` USD -> ``"10.00"``); None stays None."""
    if amount is None:
        return None
    if currency and decimal_places(amount) <= currency_exponent(currency):
        amount = amount.quantize(Decimal(1).scaleb(-currency_exponent(currency)))
    return format(amount, "f")


def dumps(value: Any) -> str:
    """JSON text of ``value`` with every Decimal written as an exact JSON number."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("amounts must be finite")
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)
