"""Rendering of services and invoices into the vendor's envelopes (JSON:API private, flat public)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from payout_sandbox.catalog import ACCOUNT_INFO, METHODS, PayoutService, find_service, stable_token
from payout_sandbox.money import compute_fee, convert

SUCCESS_STATUSES = ("processed", "partially_processed")


def service_resource(service: PayoutService) -> dict[str, Any]:
    return {
        "type": "payout-services",
        "id": service.resource_id,
        "attributes": service.attributes(),
        "relationships": {
            "payout-method": {"data": {"type": "payout-methods", "id": service.method}},
            "payout-service": {"data": {"type": "payout-services", "id": service.code}},
        },
        "links": {"self": f"/api/payout-services/{service.resource_id}"},
    }


def prerequest_data(currency: str, amount: Decimal, services: list[PayoutService]) -> dict[str, Any]:
    """The prerequest answer: services by code, with ``methods`` and ``account`` beside them."""
    listed: dict[str, Any] = {}
    for service in services:
        listed[service.code] = {
            "code": service.code,
            "method": service.method,
            "currency": service.service_currency,
            "fields": [f.describe(i) for i, f in enumerate(service.fields)],
            "amount_min": service.amount_min,
            "amount_max": service.amount_max,
            "exchange_rate": service.exchange_rate,
            "amount": format(convert(amount, service.exchange_rate, service.service_currency), "f"),
        }
    listed["methods"] = {m: METHODS[m].describe() for m in sorted({s.method for s in services})}
    listed["account"] = dict(ACCOUNT_INFO)
    return {"data": {"currency": currency, "amount": amount, "test_mode": True, "services": listed}}


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _ts(value: float | None) -> int | None:
    return None if value is None else int(value)


def invoice_attributes(row: Mapping[str, Any], callback_logs: list[dict[str, Any]]) -> dict[str, Any]:
    """The private attributes of an invoice (every key of the vendor's sample, plus moderation_required)."""
    service = find_service(row["service"])
    assert service is not None
    amount = Decimal(row["amount"])
    fee = Decimal(row["fee"])
    service_amount = Decimal(row["service_amount"])
    processed_amount = _dec(row["processed_amount"])
    processed_fee = _dec(row["processed_fee"]) or Decimal(0)
    processed_writeoff = None if processed_amount is None else processed_amount + processed_fee
    processed_at = row["processed_at"] if row["status"] in SUCCESS_STATUSES else None
    return {
        "serial_number": row["id"].removeprefix("cpoi_"),
        "status": row["status"],
        "resolution": row["resolution"],
        "amount": amount,
        "payout_amount": amount,
        "currency": row["currency"],
        "service_currency": service.service_currency,
        "service_amount": service_amount,
        "service_payout_amount": service_amount,
        "reference_id": row["reference_id"],
        "test_mode": bool(row["test_mode"]),
        "description": row["description"],
        "fee": fee,
        "writeoff": amount + fee,
        "exchange_rate": service.exchange_rate,
        "processed": _ts(processed_at),
        "processed_amount": processed_amount,
        "processed_fee": processed_fee,
        "processed_writeoff": processed_writeoff,
        "metadata": json.loads(row["metadata"]) if row["metadata"] else None,
        "created": _ts(row["created"]),
        "updated": _ts(row["updated"]),
        "fields": json.loads(row["fields"]),
        "callback_url": row["callback_url"],
        "source": "merchant_api",
        "callback_logs": callback_logs,
        "moderation_required": bool(row["moderation_required"]),
    }


def _customer_relationship(row: Mapping[str, Any]) -> dict[str, Any]:
    if not row["customer"]:
        return {"data": None}
    customer = json.loads(row["customer"])
    return {
        "data": {"type": "customers", "id": "cus_" + stable_token("customer", str(customer["reference_id"]))}
    }


def invoice_resource(row: Mapping[str, Any], callback_logs: list[dict[str, Any]]) -> dict[str, Any]:
    """An invoice as a JSON:API resource (private API, callbacks)."""
    service = find_service(row["service"])
    assert service is not None
    return {
        "type": "payout-invoices",
        "id": row["id"],
        "attributes": invoice_attributes(row, callback_logs),
        "relationships": {
            "payout-service": {"data": {"type": "payout-services", "id": service.code}},
            "payout-method": {"data": {"type": "payout-methods", "id": service.method}},
            "customer": _customer_relationship(row),
        },
        "links": {"self": f"/api/payout-invoices/{row['id']}"},
    }


def public_invoice(row: Mapping[str, Any]) -> dict[str, Any]:
    """An invoice in the public API's flat shape (no fields, no customer data)."""
    service = find_service(row["service"])
    assert service is not None
    amount = Decimal(row["amount"])
    service_amount = Decimal(row["service_amount"])
    processed_at = row["processed_at"] if row["status"] in SUCCESS_STATUSES else None
    return {
        "id": row["id"],
        "serial_number": row["id"].removeprefix("cpoi_"),
        "created": _ts(row["created"]),
        "status": row["status"],
        "resolution": row["resolution"],
        "test_mode": bool(row["test_mode"]),
        "currency": row["currency"],
        "amount": amount,
        "payout_amount": amount,
        "service": service.code,
        "service_amount": service_amount,
        "service_payout_amount": service_amount,
        "service_method": service.method,
        "service_currency": service.service_currency,
        "processed": _ts(processed_at),
        "processed_amount": _dec(row["processed_amount"]),
        "moderation_required": bool(row["moderation_required"]),
    }


def invoice_money(service: PayoutService, amount: Decimal, currency: str) -> tuple[Decimal, Decimal]:
    """(fee, service_amount) of a new invoice."""
    fee = compute_fee(amount, currency, service.fee_rate, service.fee_fix, service.fee_min, service.fee_max)
    return fee, convert(amount, service.exchange_rate, service.service_currency)
