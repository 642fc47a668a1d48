"""The documented API under /api: prerequest, services, invoices, and the public reconciliation read."""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from payout_sandbox import schemas
from payout_sandbox.catalog import SERVICES, find_service
from payout_sandbox.errors import ApiError, FieldErrors, not_found, server_error, unauthorized
from payout_sandbox.faults import FaultInjector
from payout_sandbox.gateway import Gateway, InvoiceFilter
from payout_sandbox.jsonio import DecimalJSONResponse
from payout_sandbox.render import prerequest_data, public_invoice, service_resource
from payout_sandbox.settings import Settings
from payout_sandbox.statuses import STATUSES
from payout_sandbox.validation import (
    check_scale,
    parse_amount,
    parse_currency,
    parse_json_object,
    validate_create,
)

TRANSPORT_KEY = "payout_sandbox.transport"
_basic = HTTPBasic(auto_error=False, realm="payout-sandbox")

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorList, "description": "No or bad credentials"},
    422: {"model": schemas.FieldErrorMap, "description": "Invalid request: each bad field and why"},
    429: {"model": schemas.ErrorList, "description": "Rate limited (fault injection); see Retry-After"},
    500: {"model": schemas.ErrorList, "description": "Internal error (the outcome of a write is unknown)"},
    502: {"model": schemas.ErrorList, "description": "Bad gateway (fault injection)"},
    503: {"model": schemas.ErrorList, "description": "Unavailable (fault injection)"},
    504: {"model": schemas.ErrorList, "description": "Gateway timeout (fault injection)"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": schemas.ErrorList, "description": "Unknown id"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": schemas.ErrorList, "description": "Conflict (duplicate reference, or not processable)"}
}


def json_body(model: type) -> dict[str, Any]:
    """OpenAPI extra for a route that parses its JSON body itself (to keep money as Decimal)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


def gateway_of(request: Request) -> Gateway:
    return request.app.state.gateway


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode(), expected.encode())


def require_basic(
    request: Request, credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]
) -> None:
    """Private API and admin: HTTP Basic with the account login and API key."""
    settings = settings_of(request)
    if credentials is None or not (
        _same(credentials.username, settings.login) & _same(credentials.password, settings.password)
    ):
        raise unauthorized()


def require_public_key(
    request: Request,
    x_public_key: Annotated[str | None, Header(alias="X-Public-Key", description="The public key")] = None,
) -> None:
    """Public reconciliation read: the public key in the X-Public-Key header."""
    if x_public_key is None or not _same(x_public_key, settings_of(request).public_key):
        raise unauthorized()


async def guarded(request: Request, endpoint: str, work: Callable[[], Response]) -> Response:
    """Run ``work`` (in a worker thread) under the fault rules drawn for ``endpoint``."""
    faults: FaultInjector = request.app.state.faults
    fired = faults.draw(endpoint)
    for rule in fired:
        if rule.kind == "rate_limit":
            error = ApiError(
                429,
                title="rate_limited",
                detail="Too many requests; retry after the Retry-After delay.",
                headers={"Retry-After": str(max(1, math.ceil(rule.seconds)))},
            )
            return error.response()
        if rule.kind == "error_before":
            return server_error(rule.status or 500).response()
    response = await run_in_threadpool(work)
    for rule in fired:
        if rule.kind == "delay":
            await asyncio.sleep(rule.seconds)
    for rule in fired:
        if rule.kind == "reset":
            await drop_connection(request)
            return response
        if rule.kind == "error_after_commit":
            return server_error(rule.status or 500).response()
    return response


async def drop_connection(request: Request) -> None:
    """Abort the TCP connection (RST) without an answer; the work is already committed."""
    transport = request.scope.get("extensions", {}).get(TRANSPORT_KEY)
    if transport is None:  # not served by our uvicorn protocol: fail loudly rather than answer
        raise RuntimeError("connection reset fault needs the payout-sandbox server")
    transport.abort()
    await asyncio.sleep(0.05)  # let the server notice the disconnect before the app returns


def ok(content: Any, status_code: int = 200) -> Response:
    return DecimalJSONResponse(content, status_code=status_code)


router = APIRouter(prefix="/api")
private = [Depends(require_basic)]


@router.post(
    "/payout-prerequest",
    tags=["public"],
    summary="Services available for a currency and amount (public key in the body)",
    responses={200: {"model": schemas.PrerequestResponse}, **ERRORS},
    openapi_extra=json_body(schemas.PrerequestRequest),
)
async def prerequest(request: Request) -> Response:
    body = parse_json_object(await request.body())
    key = body.get("public_key")
    if not isinstance(key, str) or not _same(key, settings_of(request).public_key):
        raise unauthorized()

    def work() -> Response:
        errors: dict[str, str] = {}
        currency = parse_currency(body.get("currency"), errors)
        amount = parse_amount(body.get("amount"), errors)
        check_scale(amount, currency, errors)
        if errors:
            raise FieldErrors(errors)
        assert amount is not None and currency is not None
        services = [
            s for s in SERVICES.values() if s.currency == currency and s.amount_min <= amount <= s.amount_max
        ]
        return ok(prerequest_data(currency, amount, services))

    return await guarded(request, "prerequest", work)


@router.get(
    "/payout-services",
    tags=["private"],
    dependencies=private,
    summary="All payout services, paged by page[number] / page[size]",
    responses={200: {"model": schemas.ServiceList}, **ERRORS},
)
async def list_services(
    request: Request,
    page_number: Annotated[int, Query(alias="page[number]", ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(alias="page[size]", ge=1, le=100)] = 20,
) -> Response:
    def work() -> Response:
        services = list(SERVICES.values())
        pages = max(1, math.ceil(len(services) / page_size))

        def link(number: int) -> str:
            return f"/api/payout-services?page[number]={number}&page[size]={page_size}"

        chunk = services[(page_number - 1) * page_size : page_number * page_size]
        return ok(
            {
                "meta": {"total": len(services), "pages": pages, "page": page_number},
                "links": {
                    "first": link(1),
                    "next": link(page_number + 1) if page_number < pages else "",
                    "last": link(pages),
                },
                "data": [service_resource(s) for s in chunk],
            }
        )

    return await guarded(request, "list_services", work)


@router.get(
    "/payout-services/{service_id}",
    tags=["private"],
    dependencies=private,
    summary="One payout service by its id (comcpos_...) or code",
    responses={200: {"model": schemas.ServiceOne}, **NOT_FOUND, **ERRORS},
)
async def get_service(request: Request, service_id: str) -> Response:
    def work() -> Response:
        service = find_service(service_id)
        if service is None:
            raise not_found()
        return ok({"data": service_resource(service)})

    return await guarded(request, "get_service", work)


@router.post(
    "/payout-invoices",
    tags=["private"],
    dependencies=private,
    status_code=201,
    summary="Create a payout invoice (reference_id is unique: a second create answers 409)",
    responses={201: {"model": schemas.InvoiceOne}, **CONFLICT, **ERRORS},
    openapi_extra=json_body(schemas.CreateInvoiceRequest),
)
async def create_invoice(request: Request) -> Response:
    new = validate_create(parse_json_object(await request.body()))
    gateway = gateway_of(request)

    def work() -> Response:
        return ok({"data": gateway.resource(gateway.create(new))}, status_code=201)

    return await guarded(request, "create_invoice", work)


@router.post(
    "/payout-invoices/{invoice_id}/process",
    tags=["private"],
    dependencies=private,
    summary="Process a created invoice (any other status: 409, nothing happens)",
    responses={200: {"model": schemas.InvoiceOne}, **NOT_FOUND, **CONFLICT, **ERRORS},
)
async def process_invoice(request: Request, invoice_id: str) -> Response:
    gateway = gateway_of(request)

    def work() -> Response:
        return ok({"data": gateway.resource(gateway.process(invoice_id))})

    return await guarded(request, "process_invoice", work)


@router.get(
    "/payout-invoices/{invoice_id}",
    tags=["private"],
    dependencies=private,
    summary="One invoice by id",
    responses={200: {"model": schemas.InvoiceOne}, **NOT_FOUND, **ERRORS},
)
async def get_invoice(request: Request, invoice_id: str) -> Response:
    gateway = gateway_of(request)

    def work() -> Response:
        return ok({"data": gateway.resource(gateway.get(invoice_id))})

    return await guarded(request, "get_invoice", work)


def _statuses(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    statuses = tuple(s.strip() for s in value.split(",") if s.strip())
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise FieldErrors({"filter[status]": "Unknown status; use a comma-separated list of statuses."})
    return statuses


@router.get(
    "/payout-invoices",
    tags=["private"],
    dependencies=private,
    summary="Invoices, newest first, paged by cursor (page[after] / page[before] = an invoice id)",
    description=(
        "Walk `links.next` (page[after] = the last id of the page) to the end to reach every invoice "
        "once; new invoices appear at the front, never in the pages ahead. `links.prev` / page[before] "
        "go back. Filters: filter[reference_id], filter[status] (comma-separated), "
        "filter[created][gte] / filter[created][lte] (unix seconds, inclusive)."
    ),
    responses={200: {"model": schemas.InvoiceList}, **ERRORS},
)
async def list_invoices(
    request: Request,
    page_size: Annotated[int, Query(alias="page[size]", ge=1, le=100)] = 20,
    page_after: Annotated[str | None, Query(alias="page[after]", max_length=64)] = None,
    page_before: Annotated[str | None, Query(alias="page[before]", max_length=64)] = None,
    reference_id: Annotated[str | None, Query(alias="filter[reference_id]", max_length=255)] = None,
    status: Annotated[str | None, Query(alias="filter[status]", max_length=1000)] = None,
    created_gte: Annotated[int | None, Query(alias="filter[created][gte]", ge=0, le=10**11)] = None,
    created_lte: Annotated[int | None, Query(alias="filter[created][lte]", ge=0, le=10**11)] = None,
) -> Response:
    gateway = gateway_of(request)
    flt = InvoiceFilter(reference_id, _statuses(status), created_gte, created_lte)

    def work() -> Response:
        page = gateway.list_invoices(flt, page_size, after=page_after, before=page_before)
        base = {
            k: v
            for k, v in {
                "filter[reference_id]": reference_id,
                "filter[status]": status,
                "filter[created][gte]": created_gte,
                "filter[created][lte]": created_lte,
                "page[size]": page_size,
            }.items()
            if v is not None
        }

        def link(**cursor: str) -> str:
            return "/api/payout-invoices?" + urlencode({**base, **cursor}, safe="[]")

        first = page.rows[0]["id"] if page.rows else None
        last = page.rows[-1]["id"] if page.rows else None
        return ok(
            {
                "meta": {"count": len(page.rows), "size": page_size, "before": first, "after": last},
                "links": {
                    "prev": link(**{"page[before]": first}) if page.has_prev and first else "",
                    "next": link(**{"page[after]": last}) if page.has_next and last else "",
                },
                "data": gateway.resources(page.rows),
            }
        )

    return await guarded(request, "list_invoices", work)


@router.get(
    "/public/payout-invoices/{invoice_id}",
    tags=["public"],
    dependencies=[Depends(require_public_key)],
    summary="Public reconciliation read by id (flat shape; public key in X-Public-Key)",
    responses={200: {"model": schemas.PublicInvoiceOne}, **NOT_FOUND, **ERRORS},
)
async def get_public_invoice(request: Request, invoice_id: str) -> Response:
    gateway = gateway_of(request)

    def work() -> Response:
        return ok({"data": public_invoice(gateway.get(invoice_id))})

    return await guarded(request, "get_invoice", work)


@router.get(
    "/public/payout-invoices",
    tags=["public"],
    dependencies=[Depends(require_public_key)],
    summary="Public reconciliation read by reference_id (flat shapes; public key in X-Public-Key)",
    responses={200: {"model": schemas.PublicInvoiceList}, **ERRORS},
)
async def find_public_invoices(
    request: Request,
    reference_id: Annotated[str, Query(alias="filter[reference_id]", min_length=1, max_length=255)],
) -> Response:
    gateway = gateway_of(request)

    def work() -> Response:
        return ok({"data": [public_invoice(r) for r in gateway.find_by_reference(reference_id)]})

    return await guarded(request, "list_invoices", work)
