"""Pydantic models that describe the API in the OpenAPI schema (requests and responses)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from payout_sandbox.catalog import SERVICES

# Money is an exact JSON number (the sandbox writes Decimals as numbers, never strings).
Money = Annotated[Decimal, WithJsonSchema({"type": "number"})]
ServiceCode = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(SERVICES)})]


class ErrorItem(BaseModel):
    status: str
    code: str
    title: str | None = None
    detail: str | None = None
    meta: dict[str, Any] | None = None


class ErrorList(BaseModel):
    """Errors in the list shape (401, 404, 405, 409, 429, 5xx)."""

    errors: list[ErrorItem]


class FieldErrorMap(BaseModel):
    """A 422: each bad field (``amount``, ``fields.card_number``, ``page[size]``...) and the reason."""

    errors: dict[str, str]


class PrerequestRequest(BaseModel):
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="Invoice currency, ISO 4217", examples=["USD"])
    amount: Money = Field(gt=0, description="Invoice amount in major units", examples=[10])
    public_key: str = Field(description="The account's public key")


class PrerequestData(BaseModel):
    currency: str
    amount: Money
    test_mode: bool
    services: dict[str, Any] = Field(
        description="Services by code, and beside them the keys `methods` and `account` (as the vendor does)."
    )


class PrerequestResponse(BaseModel):
    data: PrerequestData


class RelationshipData(BaseModel):
    type: str
    id: str


class Relationship(BaseModel):
    data: RelationshipData | None


class SelfLink(BaseModel):
    self: str


class ServiceAttributes(BaseModel):
    service: str
    service_method: str
    service_currency: str
    available: bool
    active: bool
    enabled: bool
    amount_min: Money
    amount_max: Money
    fee_min: Money
    fee_max: Money
    fee_rate: Money
    fee_fix: Money
    currency: str
    test_mode: bool


class ServiceResource(BaseModel):
    type: Literal["payout-services"]
    id: str
    attributes: ServiceAttributes
    relationships: dict[str, Relationship]
    links: SelfLink | None = None


class PageMeta(BaseModel):
    total: int
    pages: int
    page: int


class PageLinks(BaseModel):
    first: str
    next: str
    last: str


class ServiceList(BaseModel):
    meta: PageMeta
    links: PageLinks
    data: list[ServiceResource]


class ServiceOne(BaseModel):
    data: ServiceResource


class InvoiceAttributes(BaseModel):
    serial_number: str
    status: str
    resolution: str
    amount: Money
    payout_amount: Money
    currency: str
    service_currency: str
    service_amount: Money
    service_payout_amount: Money
    reference_id: str
    test_mode: bool
    description: str | None
    fee: Money
    writeoff: Money
    exchange_rate: Money
    processed: int | None
    processed_amount: Money | None
    processed_fee: Money
    processed_writeoff: Money | None
    metadata: dict[str, Any] | None
    created: int
    updated: int
    fields: dict[str, str]
    callback_url: str | None
    source: str
    callback_logs: list[dict[str, Any]]
    moderation_required: bool


class InvoiceResource(BaseModel):
    type: Literal["payout-invoices"]
    id: str
    attributes: InvoiceAttributes
    relationships: dict[str, Relationship]
    links: SelfLink


class InvoiceOne(BaseModel):
    data: InvoiceResource


class CursorMeta(BaseModel):
    count: int
    size: int
    before: str | None
    after: str | None


class CursorLinks(BaseModel):
    prev: str
    next: str


class InvoiceList(BaseModel):
    meta: CursorMeta
    links: CursorLinks
    data: list[InvoiceResource]


class PublicInvoice(BaseModel):
    id: str
    serial_number: str
    created: int
    status: str
    resolution: str
    test_mode: bool
    currency: str
    amount: Money
    payout_amount: Money
    service: str
    service_amount: Money
    service_payout_amount: Money
    service_method: str
    service_currency: str
    processed: int | None
    processed_amount: Money | None
    moderation_required: bool


class PublicInvoiceOne(BaseModel):
    data: PublicInvoice


class PublicInvoiceList(BaseModel):
    data: list[PublicInvoice]


class InvoiceOptions(BaseModel):
    split_mode: bool = False
    parallel_mode: bool = False
    allow_partially: bool = False
    auto_process: bool = False


class Customer(BaseModel):
    model_config = ConfigDict(extra="allow")

    reference_id: str
    name: str | None = None
    email: str | None = None
    metadata: dict[str, Any] | None = None


class CreateInvoiceAttributes(BaseModel):
    service: ServiceCode = Field(examples=["test_usd"])
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["USD"])
    amount: Money = Field(gt=0, examples=[10])
    reference_id: str = Field(
        min_length=1, max_length=255, description="The merchant's unique id of this payout (idempotency key)."
    )
    fields: dict[str, str] = Field(description="The service's fields (see the prerequest).")
    test_mode: bool = True
    callback_url: str | None = None
    description: str | None = None
    options: InvoiceOptions | None = None
    customer: Customer | None = None
    metadata: dict[str, Any] | None = None


class CreateInvoiceData(BaseModel):
    type: Literal["payout-invoice"]
    attributes: CreateInvoiceAttributes


class CreateInvoiceRequest(BaseModel):
    data: CreateInvoiceData


class RawInvoiceRequest(CreateInvoiceAttributes):
    """Admin insert: the create attributes plus an optional status; bypasses reference uniqueness."""

    status: str | None = None


class InvoicePatch(BaseModel):
    """Admin: force an invoice's state."""

    model_config = ConfigDict(extra="forbid")

    status: str | None = None
    resolution: str | None = None
    processed_amount: Money | None = Field(None, ge=0)
    moderation_required: bool | None = None


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance_seconds: float = Field(ge=0, le=10 * 365 * 86400)


class Ledger(BaseModel):
    references: dict[str, dict[str, Any]]


REQUEST_MODELS = (CreateInvoiceRequest, PrerequestRequest, RawInvoiceRequest, InvoicePatch)
