"""Validation of request bodies into clean values, or a 422 field map naming every bad field.

Messages never repeat the value of a field (card and account numbers stay out of responses and logs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from payout_sandbox.catalog import PayoutService, find_service
from payout_sandbox.errors import FieldErrors
from payout_sandbox.jsonio import loads
from payout_sandbox.money import exponent, fits_currency, quantize
from payout_sandbox.statuses import REQUESTABLE_STATUSES, RESOLUTIONS, normalize

INVOICE_TYPE = "payout-invoice"
OPTION_KEYS = ("split_mode", "parallel_mode", "allow_partially", "auto_process")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_MAX_REFERENCE = 255
_MAX_AMOUNT_DIGITS = 15  # integer digits; keeps every Decimal operation exact


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object (numbers with fractions as Decimal), else 422."""
    try:
        body = loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise FieldErrors({"body": "Malformed JSON."}) from None
    if not isinstance(body, dict):
        raise FieldErrors({"body": "This value should be a JSON object."})
    return body


def parse_amount(value: Any, errors: dict[str, str], name: str = "amount") -> Decimal | None:
    """A JSON number as Decimal (booleans and strings are refused)."""
    if value is None:
        errors[name] = "This value should not be blank."
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        errors[name] = "This value should be a number."
        return None
    amount = Decimal(value)
    if not amount.is_finite():
        errors[name] = "This value should be a number."
        return None
    if amount <= 0:
        errors[name] = "This value should be greater than 0."
        return None
    if amount.adjusted() >= _MAX_AMOUNT_DIGITS:
        errors[name] = f"This value should be less than 10^{_MAX_AMOUNT_DIGITS}."
        return None
    return amount


def parse_currency(value: Any, errors: dict[str, str], name: str = "currency") -> str | None:
    if value is None or value == "":
        errors[name] = "This value should not be blank."
        return None
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        errors[name] = "This value should be a 3-letter ISO 4217 currency code in upper case."
        return None
    return value


def check_scale(amount: Decimal | None, currency: str | None, errors: dict[str, str]) -> None:
    if amount is not None and currency is not None and not fits_currency(amount, currency):
        places = exponent(currency)
        errors["amount"] = f"This value should have at most {places} decimal places for {currency}."


@dataclass
class NewInvoice:
    """A validated create request (``fields`` already masked; ``test_details`` kept for the outcome)."""

    service: PayoutService
    currency: str
    amount: Decimal
    reference_id: str
    fields: dict[str, str]
    test_details: dict[str, str]
    options: dict[str, bool]
    test_mode: bool = True
    description: str | None = None
    customer: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    callback_url: str | None = None
    status: str | None = None  # admin inserts only
    extra: dict[str, Any] = field(default_factory=dict)


def _optional_object(attributes: dict[str, Any], key: str, errors: dict[str, str]) -> dict[str, Any] | None:
    value = attributes.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        errors[key] = "This value should be an object."
        return None
    return value


def _check_fields(service: PayoutService, raw: Any, errors: dict[str, str]) -> tuple[dict, dict]:
    masked: dict[str, str] = {}
    test_details: dict[str, str] = {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors["fields"] = "This value should be an object."
        return masked, test_details
    for key, value in raw.items():
        spec = service.field_by_key(key)
        name = f"fields.{key}"
        if spec is None:
            errors[name] = f"This field was not expected by service {service.code}."
        elif value is None or value == "":
            if spec.required:
                errors[name] = "This value should not be blank."
        elif not isinstance(value, str):
            errors[name] = "This value should be a string."
        elif not spec.matches(value):
            errors[name] = "This value is not valid."
        else:
            masked[key] = spec.masked(value)
            if key.startswith("test_details_"):
                test_details[key] = value
    for spec in service.fields:
        if spec.required and f"fields.{spec.key}" not in errors and spec.key not in masked:
            errors[f"fields.{spec.key}"] = "This value should not be blank."
    _check_test_details(test_details, errors)
    return masked, test_details


def _check_test_details(test_details: dict[str, str], errors: dict[str, str]) -> None:
    rate = test_details.get("test_details_success_rate")
    if rate is not None and int(rate) > 100:
        errors["fields.test_details_success_rate"] = "This value should be between 0 and 100."
    status = test_details.get("test_details_payout_status")
    if status is not None and normalize(status) not in REQUESTABLE_STATUSES:
        errors["fields.test_details_payout_status"] = "Unknown payout status."
    resolution = test_details.get("test_details_payout_resolution")
    if resolution is not None and normalize(resolution) not in RESOLUTIONS:
        errors["fields.test_details_payout_resolution"] = "Unknown payout resolution."


def validate_create(body: dict[str, Any], *, envelope: bool = True) -> NewInvoice:
    """Validate a create request (JSON:API envelope with ``type`` = ``payout-invoice``), else 422."""
    errors: dict[str, str] = {}
    if envelope:
        data = body.get("data")
        if not isinstance(data, dict):
            raise FieldErrors({"data": "This value should be an object."})
        if data.get("type") != INVOICE_TYPE:
            errors["data.type"] = f'This value should be "{INVOICE_TYPE}".'
        attributes = data.get("attributes")
        if not isinstance(attributes, dict):
            errors["data.attributes"] = "This value should be an object."
            raise FieldErrors(errors)
    else:
        attributes = body

    reference_id = attributes.get("reference_id")
    if reference_id is None or reference_id == "":
        errors["reference_id"] = "This value should not be blank."
    elif not isinstance(reference_id, str) or len(reference_id) > _MAX_REFERENCE:
        errors["reference_id"] = f"This value should be a string of at most {_MAX_REFERENCE} characters."

    amount = parse_amount(attributes.get("amount"), errors)
    currency = parse_currency(attributes.get("currency"), errors)
    check_scale(amount, currency, errors)

    service = None
    code = attributes.get("service")
    if code is None or code == "":
        errors["service"] = "This value should not be blank."
    elif not isinstance(code, str) or (service := find_service(code)) is None:
        errors["service"] = "Unknown service."
    masked: dict[str, str] = {}
    test_details: dict[str, str] = {}
    if service is not None:
        if currency is not None and currency != service.currency:
            errors["currency"] = f"Service {service.code} accepts {service.currency} invoices only."
        if (
            amount is not None
            and "amount" not in errors
            and not (service.amount_min <= amount <= service.amount_max)
        ):
            errors["amount"] = f"This value should be between {service.amount_min} and {service.amount_max}."
        masked, test_details = _check_fields(service, attributes.get("fields"), errors)

    options_raw = _optional_object(attributes, "options", errors) or {}
    options = {}
    for key, value in options_raw.items():
        if key not in OPTION_KEYS:
            errors[f"options.{key}"] = "This option is not supported."
        elif not isinstance(value, bool):
            errors[f"options.{key}"] = "This value should be a boolean."
        else:
            options[key] = value

    customer = _optional_object(attributes, "customer", errors)
    if customer is not None and not customer.get("reference_id"):
        errors["customer.reference_id"] = "This value should not be blank."
    metadata = _optional_object(attributes, "metadata", errors)

    description = attributes.get("description")
    if description is not None and not isinstance(description, str):
        errors["description"] = "This value should be a string."
    callback_url = attributes.get("callback_url")
    if callback_url is not None and (
        not isinstance(callback_url, str) or not re.fullmatch(r"https?://[^\s]{1,2000}", callback_url)
    ):
        errors["callback_url"] = "This value should be an http(s) URL."
    test_mode = attributes.get("test_mode", True)
    if not isinstance(test_mode, bool):
        errors["test_mode"] = "This value should be a boolean."
    elif test_mode is False:
        errors["test_mode"] = "This sandbox serves test mode only."

    status = None
    if not envelope and attributes.get("status") is not None:
        status = attributes.get("status")
        if not isinstance(status, str) or normalize(status) not in REQUESTABLE_STATUSES | {"created"}:
            errors["status"] = "Unknown payout status."
        else:
            status = normalize(status)

    if errors:
        raise FieldErrors(errors)
    assert service is not None and amount is not None and currency is not None
    return NewInvoice(
        service=service,
        currency=currency,
        amount=quantize(amount, currency),
        reference_id=str(reference_id),
        fields=masked,
        test_details=test_details,
        options=options,
        test_mode=True,
        description=description,
        customer=customer,
        metadata=metadata,
        callback_url=callback_url,
        status=status,
    )
