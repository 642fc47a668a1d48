"""Turning a batch row into the gateway's create request (the only place that reads its fields)."""

from __future__ import annotations

from typing import Any

from payout_gateway.exceptions import PayoutValidationError
from payout_gateway.models import CreatePayoutInvoiceRequest
from payout_gateway.validation import coerce_request

from payout_jobs.batch_file import BatchRow, parse_properties
from payout_jobs.identity import item_reference


def row_currency(row: BatchRow, batch_currency: str) -> str:
    """The row's invoice currency: its own ``currency`` column, else the batch's."""
    return (row.currency or batch_currency).upper()


def _customer(row: BatchRow) -> dict[str, Any] | None:
    if not row.customer and not row.customer_metadata:
        return None
    customer: dict[str, Any] = parse_properties(row.customer, "customer")
    if not customer.get("reference_id"):
        raise PayoutValidationError("customer", "needs a reference_id property (reference_id:...)")
    if row.customer_metadata:
        customer["metadata"] = parse_properties(row.customer_metadata, "customer_metadata")
    return customer


def build_request(row: BatchRow, batch_id: str, batch_currency: str) -> CreatePayoutInvoiceRequest:
    """The create request for ``row``; raises PayoutValidationError naming the column and reason.

    The amount is the row's ``service_amount``, a Decimal quantized to the currency (never a float).
    """
    fields = parse_properties(row.fields_data, "fields_data")
    customer = _customer(row)
    attributes: dict[str, Any] = {
        "service": row.service,
        "currency": row_currency(row, batch_currency),
        "amount": row.service_amount,
        "reference_id": item_reference(batch_id, row.reference_id),
        "fields": fields,
        "description": row.description or None,
        "customer": customer,
        "metadata": {"batch_id": batch_id, "row": row.row, "row_reference_id": row.reference_id},
    }
    try:
        return coerce_request(attributes)
    except PayoutValidationError as exc:
        problems = [("service_amount" if f == "amount" else f, r) for f, r in exc.problems]
        raise PayoutValidationError(problems[0][0], problems[0][1], problems) from None
