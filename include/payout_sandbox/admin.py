"""The admin API under /_sandbox/ (Basic auth): faults, ledger, reset, clock, forced states, raw inserts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from payout_sandbox import schemas
from payout_sandbox.api import ERRORS, NOT_FOUND, gateway_of, json_body, ok, require_basic
from payout_sandbox.errors import FieldErrors
from payout_sandbox.faults import FaultCounts, FaultInjector, FaultPlan
from payout_sandbox.statuses import RESOLUTIONS, STATUSES, normalize
from payout_sandbox.validation import parse_json_object, validate_create

router = APIRouter(prefix="/_sandbox", tags=["sandbox admin"], dependencies=[Depends(require_basic)])


def _faults(request: Request) -> FaultInjector:
    return request.app.state.faults


@router.get("/faults", summary="The current fault plan", response_model=FaultPlan, responses=ERRORS)
async def get_faults(request: Request) -> FaultPlan:
    return _faults(request).plan


@router.put("/faults", summary="Replace the fault plan", response_model=FaultPlan, responses=ERRORS)
async def put_faults(request: Request, plan: FaultPlan) -> FaultPlan:
    _faults(request).set(plan)
    return plan


@router.delete("/faults", summary="Clear every fault rule", response_model=FaultPlan, responses=ERRORS)
async def delete_faults(request: Request) -> FaultPlan:
    _faults(request).clear()
    return _faults(request).plan


@router.get(
    "/faults/counts",
    summary="Calls and injected faults per endpoint and kind (since the start or the last reset)",
    response_model=FaultCounts,
    responses=ERRORS,
)
async def get_fault_counts(request: Request) -> FaultCounts:
    return _faults(request).counts()


@router.delete(
    "/faults/counts",
    summary="Set the fault counters back to zero",
    response_model=FaultCounts,
    responses=ERRORS,
)
async def delete_fault_counts(request: Request) -> FaultCounts:
    _faults(request).reset_counts()
    return _faults(request).counts()


@router.get(
    "/ledger",
    summary="Per reference_id: how many invoices exist and how many process calls took effect",
    responses={200: {"model": schemas.Ledger}, **ERRORS},
)
async def ledger(request: Request) -> Response:
    return ok(await run_in_threadpool(gateway_of(request).ledger))


@router.post(
    "/reset", summary="Empty the store, clear faults and their counters, put the clock back", responses=ERRORS
)
async def reset(request: Request) -> dict[str, Any]:
    _faults(request).clear()
    _faults(request).reset_counts()
    await run_in_threadpool(gateway_of(request).reset)
    return {"reset": True}


@router.get("/clock", summary="The sandbox clock", responses=ERRORS)
async def get_clock(request: Request) -> dict[str, float]:
    return gateway_of(request).clock()


@router.post("/clock", summary="Move the sandbox clock forward", responses=ERRORS)
async def advance_clock(request: Request, body: schemas.ClockAdvance) -> dict[str, float]:
    return await run_in_threadpool(gateway_of(request).advance_clock, body.advance_seconds)


@router.patch(
    "/invoices/{invoice_id}",
    summary="Force an invoice's status / resolution / processed_amount (sends a callback)",
    responses={200: {"model": schemas.InvoiceOne}, **NOT_FOUND, **ERRORS},
    openapi_extra=json_body(schemas.InvoicePatch),
)
async def patch_invoice(request: Request, invoice_id: str) -> Response:
    try:  # parsed by hand so that processed_amount is a Decimal straight from the JSON text
        body = schemas.InvoicePatch.model_validate(parse_json_object(await request.body()))
    except ValidationError as exc:
        raise FieldErrors(
            {".".join(str(p) for p in e["loc"]) or "body": e["msg"] for e in exc.errors()}
        ) from None
    errors: dict[str, str] = {}
    status = normalize(body.status) if body.status else None
    resolution = normalize(body.resolution) if body.resolution else None
    if status is not None and status not in STATUSES and not status.isidentifier():
        errors["status"] = "This value should be a status name."
    if resolution is not None and resolution not in RESOLUTIONS and not resolution.isidentifier():
        errors["resolution"] = "This value should be a resolution name."
    if errors:
        raise FieldErrors(errors)
    gateway = gateway_of(request)

    def work() -> Response:
        row = gateway.patch(invoice_id, status, resolution, body.processed_amount, body.moderation_required)
        return ok({"data": gateway.resource(row)})

    return await run_in_threadpool(work)


@router.post(
    "/invoices",
    summary="Insert a raw invoice, bypassing reference_id uniqueness (to plant a duplicate)",
    status_code=201,
    responses={201: {"model": schemas.InvoiceOne}, **ERRORS},
    openapi_extra=json_body(schemas.RawInvoiceRequest),
)
async def insert_invoice(request: Request) -> Response:
    body = parse_json_object(await request.body())
    if isinstance(body.get("data"), dict):
        body = body["data"].get("attributes") if isinstance(body["data"].get("attributes"), dict) else {}
    new = validate_create(body, envelope=False)
    gateway = gateway_of(request)

    def work() -> Response:
        return ok({"data": gateway.resource(gateway.create(new, planted=True))}, status_code=201)

    return await run_in_threadpool(work)
