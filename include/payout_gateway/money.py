"""Money helpers: Decimal amounts, currency exponents, and JSON with exact numbers."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

#: Currencies with no minor unit (the gateway's documented list).
ZERO_DECIMAL_CURRENCIES: frozenset[str] = frozenset({"CLP", "JPY", "KRW", "PYG", "VND"})


def currency_exponent(code: str) -> int:
    """Digits after the decimal point that ``code`` allows: 0 for zero-decimal currencies, else 2."""
    return 0 if code.strip().upper() in ZERO_DECIMAL_CURRENCIES else 2


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
