"""Check a payout request against a service before anything is sent.

Errors name the field and the reason, never the value (card and account numbers stay out).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from payout_gateway.exceptions import PayoutValidationError
from payout_gateway.models import CreatePayoutInvoiceRequest, PrerequestService
from payout_gateway.money import currency_exponent, decimal_places, to_decimal

__all__ = ["coerce_request", "currency_exponent", "quantize_amount", "validate_request"]


def quantize_amount(amount: Any, currency: str) -> Decimal:
    """``amount`` as a Decimal with exactly the currency's decimals.

    Raises :class:`PayoutValidationError` (field ``amount``) for non-numbers and for more decimals
    than the currency allows (``10.001`` USD, ``10.5`` JPY); never rounds.
    """
    try:
        value = to_decimal(amount)
    except (TypeError, ValueError) as exc:
        raise PayoutValidationError("amount", f"is not a number ({exc})") from None
    exponent = currency_exponent(currency)
    if decimal_places(value) > exponent:
        raise PayoutValidationError(
            "amount", f"has {decimal_places(value)} decimal places; {currency.upper()} allows {exponent}"
        )
    return value.quantize(Decimal(1).scaleb(-exponent))


def coerce_request(request: CreatePayoutInvoiceRequest | Mapping[str, Any]) -> CreatePayoutInvoiceRequest:
    """The request as a model with its amount quantized; a dict may be the attributes or a document.

    Raises :class:`PayoutValidationError` naming every bad field (pydantic's messages, no values).
    """
    if not isinstance(request, CreatePayoutInvoiceRequest):
        try:
            request = CreatePayoutInvoiceRequest.model_validate(dict(request))
        except ValidationError as exc:
            problems = [
                (".".join(str(p) for p in err["loc"]) or "request", err["msg"]) for err in exc.errors()
            ]
            raise PayoutValidationError(problems[0][0], problems[0][1], problems) from None
    amount = quantize_amount(request.amount, request.currency)
    return request.model_copy(update={"amount": amount})


def validate_request(request: CreatePayoutInvoiceRequest, service: PrerequestService) -> None:
    """Check ``request`` against ``service`` (from a prerequest): service code, currency, amount
    (exponent, limits), unknown fields, required fields and regexps.

    Raises :class:`PayoutValidationError` listing every problem; the first names ``field``.
    """
    problems: list[tuple[str, str]] = []
    if request.service != service.code:
        problems.append(("service", f"is {request.service!r} but the service checked is {service.code!r}"))
    if service.invoice_currency and request.currency != service.invoice_currency.upper():
        problems.append(
            ("currency", f"is {request.currency} but the service was offered for {service.invoice_currency}")
        )
    try:
        amount = quantize_amount(request.amount, request.currency)
    except PayoutValidationError as exc:
        problems.append((exc.field, exc.reason))
    else:
        if service.amount_min is not None and amount < service.amount_min:
            problems.append(("amount", f"is below the service minimum {service.amount_min}"))
        if service.amount_max is not None and amount > service.amount_max:
            problems.append(("amount", f"is above the service maximum {service.amount_max}"))

    known = {f.key for f in service.fields}
    for key in request.fields:
        if key not in known:
            problems.append((f"fields.{key}", f"is not a field of service {service.code}"))
    for spec in service.fields:
        value = request.fields.get(spec.key)
        if value is None or value == "":
            if spec.required:
                problems.append((f"fields.{spec.key}", "is required"))
            continue
        if not isinstance(value, str):
            problems.append((f"fields.{spec.key}", "must be a string"))
            continue
        if spec.pattern is not None and spec.pattern.fullmatch(value) is None:
            problems.append((f"fields.{spec.key}", f"does not match the service's pattern {spec.regexp}"))
    if problems:
        raise PayoutValidationError(problems[0][0], problems[0][1], problems)
