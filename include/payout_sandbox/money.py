"""Money arithmetic in Decimal: currency exponents, quantizing, fees and conversion."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

ZERO_DECIMAL_CURRENCIES = frozenset({"CLP", "JPY", "KRW", "PYG", "VND"})


def exponent(currency: str) -> int:
    """Number of decimals a currency allows (0 for zero-decimal currencies, else 2)."""
    return 0 if currency.upper() in ZERO_DECIMAL_CURRENCIES else 2


def quantum(currency: str) -> Decimal:
    """The smallest unit of a currency as a Decimal exponent (``Decimal('0.01')`` or ``Decimal('1')``)."""
    return Decimal(1).scaleb(-exponent(currency))


def fits_currency(amount: Decimal, currency: str) -> bool:
    """True when ``amount`` has no more decimals than the currency allows (10.10 fits USD; 10.001 not)."""
    return amount == amount.quantize(quantum(currency), rounding=ROUND_DOWN)


def quantize(amount: Decimal, currency: str, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``amount`` rounded to the currency's unit (half up unless told otherwise)."""
    return amount.quantize(quantum(currency), rounding=rounding)


def compute_fee(
    amount: Decimal,
    currency: str,
    fee_rate: Decimal,
    fee_fix: Decimal,
    fee_min: Decimal,
    fee_max: Decimal,
) -> Decimal:
    """fee = clamp(amount * fee_rate / 100 + fee_fix, fee_min, fee_max when > 0), in the invoice currency."""
    fee = amount * fee_rate / Decimal(100) + fee_fix
    fee = max(fee, fee_min)
    if fee_max > 0:
        fee = min(fee, fee_max)
    return quantize(fee, currency)


def convert(amount: Decimal, exchange_rate: Decimal, service_currency: str) -> Decimal:
    """The amount in the service currency: ``amount * exchange_rate`` rounded to that currency."""
    return quantize(amount * exchange_rate, service_currency)
