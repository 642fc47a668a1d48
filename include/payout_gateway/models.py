"""Pydantic models of the gateway's requests and responses.

They parse every documented sample as is, quirks included (see ``FACTS.md``): ``methods`` and
``account`` inside the prerequest's ``services``, double-escaped field regexps, list items
without ``links`` or relationships, the flat public invoice, and both error body shapes.
Unknown keys are ignored, so new API fields do not break parsing. Amounts are ``Decimal``.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from payout_gateway.money import format_amount, to_decimal
from payout_gateway.statuses import PayoutOutcome, PayoutStatus, is_final, outcome

log = logging.getLogger(__name__)


def _amount(value: Any) -> Any:
    return None if value is None else to_decimal(value)


#: A money amount: parsed into Decimal (floats via their exact text), serialised as text in JSON mode.
Money = Annotated[Decimal, BeforeValidator(_amount)]


def parse_timestamp(value: Any) -> datetime | None:
    """A gateway timestamp (epoch seconds, as in the samples, or ISO-8601 text) as a UTC datetime."""
    if value is None or value == "" or isinstance(value, datetime):
        return value or None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        return datetime.fromtimestamp(int(value), tz=UTC)
    parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


#: A gateway timestamp as an aware UTC datetime (see :func:`parse_timestamp`).
Timestamp = Annotated[datetime | None, BeforeValidator(parse_timestamp)]


class _Model(BaseModel):
    """Base: ignore unknown keys, never echo input values in validation errors."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True, populate_by_name=True)


def _relationship_id(resource: dict[str, Any], name: str) -> str | None:
    data = ((resource.get("relationships") or {}).get(name) or {}).get("data") or {}
    return data.get("id") if isinstance(data, dict) else None


def _unwrap(document: Any) -> Any:
    """``document["data"]`` when ``document`` is an envelope, else ``document``."""
    if isinstance(document, dict) and "data" in document:
        return document["data"]
    return document


# ----------------------------------------------------------------------------------------- errors
class ApiErrorItem(_Model):
    """One error from either body shape: a JSON:API error object, or one entry of a field map."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    status: str | None = None
    code: str | None = None
    title: str | None = None
    detail: str | None = None
    field: str | None = None
    meta: dict[str, Any] | None = None

    @field_validator("status", "code", "title", "detail", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return None if value is None else str(value)

    def describe(self) -> str:
        """A one-line description (field, title or status, detail)."""
        parts = [p for p in (self.field, self.title or self.status, self.detail) if p]
        return ": ".join(parts) if parts else (self.code or "error")


def parse_error_body(body: Any) -> list[ApiErrorItem]:
    """The errors of an error response body, whatever its shape (empty when there are none)."""
    if not isinstance(body, dict):
        return []
    errors = body.get("errors")
    if isinstance(errors, list):
        items = []
        for entry in errors:
            if isinstance(entry, dict):
                items.append(ApiErrorItem.model_validate(entry))
            else:
                items.append(ApiErrorItem(detail=str(entry)))
        return items
    if isinstance(errors, dict):
        items = []
        for key, message in errors.items():
            messages = message if isinstance(message, list) else [message]
            items.extend(ApiErrorItem(field=str(key), detail=str(m)) for m in messages)
        return items
    if "error_type" in body or "error_codes" in body:
        codes = body.get("error_codes")
        return [
            ApiErrorItem(
                title=body.get("error_type"),
                detail=body.get("message")
                or (", ".join(map(str, codes)) if isinstance(codes, list) else None),
                meta={k: body[k] for k in ("request_id", "error_codes") if k in body},
            )
        ]
    return []


# --------------------------------------------------------------------------------------- services
def normalize_regexp(raw: str | None) -> str | None:
    """The regexp the gateway meant: its samples double-escape (``^\\\\d{1,15}$`` -> ``^\\d{1,15}$``).

    Doubled backslashes are collapsed once when the result compiles; a regexp that needs a literal
    backslash cannot be told apart from a double-escaped one and is collapsed too.
    """
    if not raw or "\\\\" not in raw:
        return raw
    candidate = raw.replace("\\\\", "\\")
    try:
        re.compile(candidate)
    except re.error:
        return raw
    return candidate


class ServiceField(_Model):
    """One input field a payout service needs (``fields[]`` of the prerequest)."""

    key: str
    type: str | None = "string"
    label: dict[str, str] | str | None = None
    hint: dict[str, str] | str | None = None
    example: Any = None
    regexp: str | None = None
    required: bool = False
    position: int | None = None

    @field_validator("regexp", mode="before")
    @classmethod
    def _normalize(cls, value: Any) -> Any:
        return normalize_regexp(value) if isinstance(value, str) else value

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        """The compiled regexp (None when the service gives none or it does not compile).

        Compiled as gateways read it (PCRE, JavaScript): ``\\d``, ``\\w`` and ``\\s`` match ASCII only,
        so full-width or Arabic-Indic digits do not pass for digits.
        """
        if not self.regexp:
            return None
        try:
            return re.compile(self.regexp, re.ASCII)
        except (re.error, ValueError):
            log.warning("Service field %s has a regexp that does not compile; not checked.", self.key)
            return None


class PrerequestService(_Model):
    """A service offered by the prerequest for one currency and amount."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    code: str
    method: str | None = None
    currency: str | None = None
    fields: list[ServiceField] = Field(default_factory=list)
    amount_min: Money | None = None
    amount_max: Money | None = None
    exchange_rate: Money | None = None
    amount: Money | None = None
    #: The invoice currency the prerequest was made for (set by :class:`PrerequestResult`).
    invoice_currency: str | None = None

    def field(self, key: str) -> ServiceField | None:
        """The field named ``key``, if the service has it."""
        return next((f for f in self.fields if f.key == key), None)


class PayoutMethodInfo(_Model):
    """A payout method described by the prerequest (``services.methods``)."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    code: str | None = None
    category: str | None = None
    description: str | None = None
    name: dict[str, str] | str | None = None


class PrerequestAccount(_Model):
    """The account block of the prerequest (``services.account``)."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    name: str | None = None
    description: str | None = None
    website: str | None = None


def _looks_like_service(value: Any) -> bool:
    return isinstance(value, dict) and ("fields" in value or "method" in value)


class PrerequestResult(_Model):
    """The answer of ``POST /payout-prerequest``: services by code, plus methods and account."""

    currency: str
    amount: Money | None = None
    test_mode: bool | None = None
    services: dict[str, PrerequestService] = Field(default_factory=dict)
    methods: dict[str, PayoutMethodInfo] = Field(default_factory=dict)
    account: PrerequestAccount | None = None

    @model_validator(mode="before")
    @classmethod
    def _split_services(cls, value: Any) -> Any:
        value = _unwrap(value)
        if not isinstance(value, dict):
            return value
        value = dict(value)
        raw_services = value.get("services") or {}
        services: dict[str, Any] = {}
        methods = dict(value.get("methods") or {})
        account = value.get("account")
        for key, entry in raw_services.items():
            if _looks_like_service(entry):
                services[key] = {"code": key, **entry, "invoice_currency": value.get("currency")}
            elif key == "methods" and isinstance(entry, dict):
                methods.update(entry)
            elif key == "account" and isinstance(entry, dict):
                account = entry
            else:
                log.debug("Ignoring prerequest services entry %r: not a service.", key)
        value.update(services=services, methods=methods, account=account)
        return value


# ------------------------------------------------------------------------- services (private API)
class PayoutService(_Model):
    """A payout service resource (``GET /payout-services``), flattened from JSON:API."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    id: str
    service: str
    service_method: str | None = None
    service_currency: str | None = None
    currency: str | None = None
    available: bool | None = None
    active: bool | None = None
    enabled: bool | None = None
    amount_min: Money | None = None
    amount_max: Money | None = None
    fee_min: Money | None = None
    fee_max: Money | None = None
    fee_rate: Money | None = None
    fee_fix: Money | None = None
    test_mode: bool | None = None
    method: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, value: Any) -> Any:
        value = _unwrap(value)
        if isinstance(value, dict) and isinstance(value.get("attributes"), dict):
            return {
                **value["attributes"],
                "id": value.get("id"),
                "method": _relationship_id(value, "payout-method")
                or value["attributes"].get("service_method"),
            }
        return value


class ServicePage(_Model):
    """One page of ``GET /payout-services`` (page-number pagination)."""

    items: list[PayoutService] = Field(default_factory=list)
    total: int | None = None
    pages: int | None = None
    page: int | None = None
    next_link: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_document(cls, value: Any) -> Any:
        if isinstance(value, dict) and "data" in value:
            meta, links = value.get("meta") or {}, value.get("links") or {}
            return {**meta, "items": value["data"] or [], "next_link": links.get("next") or None}
        return value


# --------------------------------------------------------------------------------------- invoices
def iso_time(value: int | str | datetime | None) -> str | None:
    """A gateway time (Unix seconds, as a number or digits, or ISO-8601 text) as ISO-8601 UTC
    text (``2026-12-08T00:50:01Z``); None when absent or unreadable."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit()):
            moment = datetime.fromtimestamp(int(value), tz=UTC)
        else:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class PayoutInvoice(_Model):
    """A payout invoice, from the private JSON:API resource or the flat public shape.

    ``fields`` holds what the gateway returns: masked card and account numbers.
    """

    id: str
    status: PayoutStatus = PayoutStatus.UNKNOWN
    resolution: str | None = None
    reference_id: str | None = None
    amount: Money
    currency: str
    payout_amount: Money | None = None
    processed_amount: Money | None = None
    processed_fee: Money | None = None
    processed_writeoff: Money | None = None
    fee: Money | None = None
    writeoff: Money | None = None
    exchange_rate: Money | None = None
    service: str | None = None
    service_method: str | None = None
    service_currency: str | None = None
    service_amount: Money | None = None
    service_payout_amount: Money | None = None
    serial_number: str | None = None
    description: str | None = None
    test_mode: bool | None = None
    created: Timestamp = None
    updated: Timestamp = None
    processed: Timestamp = None
    moderation_required: bool = False
    metadata: dict[str, Any] | None = Field(default=None, repr=False)
    fields: dict[str, Any] = Field(default_factory=dict, repr=False)
    callback_url: str | None = Field(default=None, repr=False)
    customer_id: str | None = Field(default=None, repr=False)
    source: str | None = None

    @field_validator("resolution", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("moderation_required", mode="before")
    @classmethod
    def _bool(cls, value: Any) -> Any:
        return False if value is None else value

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, value: Any) -> Any:
        value = _unwrap(value)
        if isinstance(value, dict) and isinstance(value.get("attributes"), dict):
            attributes = value["attributes"]
            return {
                **attributes,
                "id": value.get("id"),
                "service": attributes.get("service") or _relationship_id(value, "payout-service"),
                "service_method": attributes.get("service_method")
                or _relationship_id(value, "payout-method"),
                "customer_id": _relationship_id(value, "customer"),
            }
        return value

    @property
    def outcome(self) -> PayoutOutcome:
        """What this invoice's status and resolution mean (see :func:`payout_gateway.statuses.outcome`)."""
        return outcome(self.status, self.resolution, self.moderation_required)

    @property
    def is_final(self) -> bool:
        """Whether the status is documented as final."""
        return is_final(self.status)

    def summary(self) -> dict[str, Any]:
        """A JSON-native summary for XCom and trigger events: ids, status, amounts as text, fee and
        write-off (planned and processed), created and processed times (ISO-8601 UTC); no fields,
        no description, no customer."""
        return {
            "id": self.id,
            "reference_id": self.reference_id,
            "status": self.status.value,
            "resolution": self.resolution,
            "amount": format_amount(self.amount, self.currency),
            "processed_amount": format_amount(self.processed_amount, self.currency),
            "currency": self.currency,
            "moderation_required": self.moderation_required,
            "service": self.service,
            "outcome": self.outcome.value,
            "fee": format_amount(self.fee, self.currency),
            "writeoff": format_amount(self.writeoff, self.currency),
            "processed_fee": format_amount(self.processed_fee, self.currency),
            "processed_writeoff": format_amount(self.processed_writeoff, self.currency),
            "created": iso_time(self.created),
            "processed": iso_time(self.processed),
        }


class InvoicePage(_Model):
    """One page of ``GET /payout-invoices`` (cursor pagination)."""

    items: list[PayoutInvoice] = Field(default_factory=list)
    count: int | None = None
    size: int | None = None
    before: str | None = None
    after: str | None = None
    next_link: str | None = None
    prev_link: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_document(cls, value: Any) -> Any:
        if isinstance(value, dict) and "data" in value:
            meta, links = value.get("meta") or {}, value.get("links") or {}
            return {
                **meta,
                "items": value["data"] or [],
                "next_link": links.get("next") or None,
                "prev_link": links.get("prev") or None,
            }
        return value


# ---------------------------------------------------------------------------------------- requests
class Address(_Model):
    """A customer's address."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    country: str | None = None
    region: str | None = None
    city: str | None = None
    full_address: str | None = None
    post_code: str | None = None


class Customer(_Model):
    """The optional customer object of a create request (``reference_id`` required)."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    reference_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    individual_tax_id: str | None = None
    date_of_birth: str | None = None
    metadata: dict[str, Any] | None = None
    address: Address | None = None

    @field_validator("reference_id", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class InvoiceOptions(_Model):
    """Processing options of one invoice (they override the account's defaults)."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    split_mode: bool | None = None
    parallel_mode: bool | None = None
    allow_partially: bool | None = None
    auto_process: bool | None = None


class CreatePayoutInvoiceRequest(_Model):
    """The attributes of ``POST /payout-invoices``.

    ``fields``, ``customer`` and ``metadata`` are kept out of ``repr`` (they hold card or account
    numbers and personal data).
    """

    service: str = Field(min_length=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    amount: Money
    reference_id: str = Field(min_length=1, max_length=255)
    fields: dict[str, str] = Field(default_factory=dict, repr=False)
    description: str | None = None
    customer: Customer | None = Field(default=None, repr=False)
    metadata: dict[str, Any] | None = Field(default=None, repr=False)
    options: InvoiceOptions | None = None
    callback_url: str | None = Field(default=None, repr=False)
    test_mode: bool | None = None
    context: dict[str, Any] | None = Field(default=None, repr=False)

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("must be greater than 0")
        return value

    @model_validator(mode="before")
    @classmethod
    def _from_document(cls, value: Any) -> Any:
        data = _unwrap(value)
        if isinstance(data, dict) and isinstance(data.get("attributes"), dict):
            return data["attributes"]
        return data

    def attributes(self) -> dict[str, Any]:
        """The request attributes (Decimal amount; None values left out)."""
        return self.model_dump(mode="python", exclude_none=True)

    def to_document(self) -> dict[str, Any]:
        """The JSON:API request document (``type`` is ``payout-invoice``, as documented)."""
        return {"data": {"type": "payout-invoice", "attributes": self.attributes()}}
