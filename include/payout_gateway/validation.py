"""Check a payout request against a service before anything is sent.

Errors name the field and the reason, never the value (card and account numbers stay out).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from payout_gateway.exceptions import PayoutValidationError
from payout_gateway.models import CreatePayoutInvoiceRequest, PrerequestResult, PrerequestService
from payout_gateway.money import AmountError, currency_exponent, parse_amount

__all__ = ["coerce_request", "currency_exponent", "field_label", "quantize_amount", "validate_request"]

_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_DIGIT_RUN = re.compile(r"[0-9]{6}")


def field_label(key: Any, position: int) -> str:
    """``fields.<key>`` for a key that looks like a field name; else ``fields.#<position>`` (a key
    can hold anything a person typed, a card number included, and errors never echo values)."""
    if isinstance(key, str) and _SAFE_KEY.fullmatch(key) and not _DIGIT_RUN.search(key):
        return f"fields.{key}"
    return f"fields.#{position}"


def quantize_amount(amount: Any, currency: str) -> Decimal:
    """``amount`` as a Decimal with exactly the currency's decimals: THE check of money.

    Text follows the one grammar (:func:`payout_gateway.money.parse_amount`: ASCII digits, one
    optional ``.``, at most the currency's decimals and ``MAX_INTEGER_DIGITS`` digits before the
    point). Raises :class:`PayoutValidationError` (field ``amount``, the reason, never the value);
    never rounds.
    """
    try:
        return parse_amount(amount, currency if isinstance(currency, str) else "")
    except AmountError as exc:
        raise PayoutValidationError("amount", str(exc)) from None


def _attributes(request: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes of a request given as attributes or as a JSON:API document."""
    data = request.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("attributes"), Mapping):
        return dict(data["attributes"])
    return dict(request)


def _loc_label(loc: tuple[Any, ...], attributes: Mapping[str, Any]) -> str:
    """A pydantic error location as a field name; a ``fields`` key only through :func:`field_label`."""
    if len(loc) >= 2 and loc[0] == "fields":
        fields = attributes.get("fields")
        keys = list(fields) if isinstance(fields, Mapping) else []
        position = keys.index(loc[1]) + 1 if loc[1] in keys else 0
        return ".".join([field_label(loc[1], position), *(str(p) for p in loc[2:])])
    return ".".join(str(p) for p in loc) or "request"


def coerce_request(request: CreatePayoutInvoiceRequest | Mapping[str, Any]) -> CreatePayoutInvoiceRequest:
    """The request as a model with its amount quantized; a dict may be the attributes or a document.

    A dict's amount is checked as given (text by the grammar) before the model parses it.
    Raises :class:`PayoutValidationError` naming every bad field (pydantic's messages, no values).
    """
    if not isinstance(request, CreatePayoutInvoiceRequest):
        attributes = _attributes(request)
        attributes["amount"] = quantize_amount(attributes.get("amount"), attributes.get("currency") or "")
        try:
            request = CreatePayoutInvoiceRequest.model_validate(attributes)
        except ValidationError as exc:
            problems = [(_loc_label(err["loc"], attributes), err["msg"]) for err in exc.errors()]
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
    for position, key in enumerate(request.fields, start=1):
        if key not in known:
            problems.append((field_label(key, position), f"is not a field of service {service.code}"))
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


def choose_service(
    request: CreatePayoutInvoiceRequest, definition: PrerequestResult | PrerequestService | Mapping[str, Any]
) -> PrerequestService:
    """The service ``request`` names, from a prerequest result (or one service's definition, as a
    model or its JSON); PayoutValidationError naming ``service`` when it is not offered."""
    if isinstance(definition, PrerequestService):
        return definition
    if isinstance(definition, Mapping) and "services" not in definition:
        return PrerequestService.model_validate({"code": request.service, **definition})
    result = (
        definition
        if isinstance(definition, PrerequestResult)
        else PrerequestResult.model_validate(definition)
    )
    service = result.services.get(request.service)
    if service is None:
        offered = ", ".join(sorted(result.services)) or "none"
        raise PayoutValidationError(
            "service",
            f"{request.service!r} is not offered for {request.currency} {request.amount} "
            f"(offered: {offered})",
        )
    return service
