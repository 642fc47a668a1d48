"""The one event a payout wait ends with (trigger and poke mode build the same shape).

``{"status": "success"|"failed"|"needs_person"|"timeout"|"error", "message": str,
"invoices": [{"id", "reference_id", "status", "resolution", "amount", "processed_amount",
"currency", "moderation_required", ...}]}``; amounts as text, no card data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from payout_gateway.models import PayoutInvoice
from payout_gateway.statuses import PayoutOutcome

EVENT_STATUSES: frozenset[str] = frozenset({"success", "failed", "needs_person", "timeout", "error"})
_SHOWN = 10


def is_settled(invoice: PayoutInvoice) -> bool:
    """Whether waiting for ``invoice`` is over: final, or waiting for a person."""
    return invoice.outcome is not PayoutOutcome.PENDING


def _summaries(invoice_ids: Sequence[str], latest: Mapping[str, PayoutInvoice]) -> list[dict[str, Any]]:
    return [
        latest[i].summary()
        if i in latest
        else {
            "id": i,
            "reference_id": None,
            "status": None,
            "resolution": None,
            "amount": None,
            "processed_amount": None,
            "currency": None,
            "moderation_required": False,
        }
        for i in invoice_ids
    ]


def _describe(invoices: Iterable[PayoutInvoice]) -> str:
    items = list(invoices)
    text = ", ".join(f"{i.id} {i.status.value} ({i.resolution or 'no resolution'})" for i in items[:_SHOWN])
    return text + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def settled_event(invoice_ids: Sequence[str], latest: Mapping[str, PayoutInvoice]) -> dict[str, Any]:
    """The event once every invoice is settled: failed > needs_person > success."""
    invoices = [latest[i] for i in invoice_ids]
    failed = [i for i in invoices if i.outcome is PayoutOutcome.FAILED]
    person = [i for i in invoices if i.outcome is PayoutOutcome.NEEDS_PERSON]
    partial = [i for i in invoices if i.outcome is PayoutOutcome.PARTIAL]
    total = len(invoices)
    if failed:
        status = "failed"
        message = f"{len(failed)} of {total} payout(s) failed: {_describe(failed)}"
        if person:
            message += f"; {len(person)} wait for a person: {_describe(person)}"
    elif person:
        status = "needs_person"
        message = (
            f"{len(person)} of {total} payout(s) wait for a person "
            f"(moderation or an error-group resolution): {_describe(person)}"
        )
    else:
        status = "success"
        message = (
            f"{total} payout(s) final: {total - len(partial)} processed, {len(partial)} partially processed"
        )
    return {"status": status, "message": message, "invoices": _summaries(invoice_ids, latest)}


def timeout_event(invoice_ids: Sequence[str], latest: Mapping[str, PayoutInvoice]) -> dict[str, Any]:
    """The event when the wait ran out (the payouts stay as they are)."""
    pending = [i for i in invoice_ids if i not in latest or not is_settled(latest[i])]
    return {
        "status": "timeout",
        "message": f"{len(pending)} of {len(invoice_ids)} payout(s) not final when the wait ran out: "
        + ", ".join(f"{i} {latest[i].status.value if i in latest else 'unread'}" for i in pending[:_SHOWN]),
        "invoices": _summaries(invoice_ids, latest),
    }


def error_event(
    message: str, invoice_ids: Sequence[str], latest: Mapping[str, PayoutInvoice]
) -> dict[str, Any]:
    """The event when the gateway could not be read."""
    return {"status": "error", "message": message, "invoices": _summaries(invoice_ids, latest)}
