"""One payout by reference details, from the trigger form's params to the summary block.

The request is rebuilt from the run's params wherever it is needed (params are part of the run),
so XCom carries only service codes, the reference and the invoice id: never fields (account or
card numbers) nor customer data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from payout_gateway.exceptions import PayoutValidationError
from payout_gateway.models import CreatePayoutInvoiceRequest, PayoutInvoice, PrerequestResult
from payout_gateway.money import MAX_INTEGER_DIGITS, format_amount
from payout_gateway.statuses import PayoutOutcome
from payout_gateway.validation import coerce_request, field_label, quantize_amount, validate_request

from payout_jobs.gateway_client import PayoutGateway
from payout_jobs.identity import single_payout_reference

log = logging.getLogger(__name__)

CURRENCIES = ("USD", "EUR", "GBP", "ZAR", "JPY")
#: The form's check of an amount (ASCII digits: ``\d`` would take any script's digits). The server
#: side is the grammar itself (:func:`payout_gateway.validation.quantize_amount`), whatever the form let by.
AMOUNT_PATTERN = rf"^[0-9]{{1,{MAX_INTEGER_DIGITS}}}(\.[0-9]{{1,2}})?$"
REFERENCE_PATTERN = r"^([A-Za-z0-9_.:-]{1,64})?$"
SERVICE_PATTERN = r"^[a-z0-9_]{1,64}$"
SANDBOX_SERVICES = (
    "test_usd",
    "test_eur",
    "test_gbp",
    "test_zar",
    "test_jpy",
    "card",
    "card_eur",
    "card_gbp",
    "bank_transfer_zar",
    "bank_transfer_eur",
    "bank_transfer_gbp",
    "bank_transfer_jpy",
    "swift_jpy",
)


def payout_reference(params: Mapping[str, Any], dag_id: str, run_id: str) -> str:
    """The reference to use: the user's, or one derived from the run and the payout (see identity)."""
    given = (params.get("reference_id") or "").strip()
    return given or single_payout_reference(dag_id, run_id, params)


def required_text(params: Mapping[str, Any], name: str) -> str:
    """The param ``name`` as non-empty text, or PayoutValidationError naming it."""
    value = params.get(name)
    if value is None or value == "":
        raise PayoutValidationError(name, "is required (the form has no default)")
    if not isinstance(value, str):
        raise PayoutValidationError(name, f"must be text in quotes, not a JSON {type(value).__name__}")
    return value


def amount_text(params: Mapping[str, Any]) -> str:
    """The form's amount, which must be text: a JSON number is refused, int or float alike (a float
    has no exact decimal value, and "125.5" vs 125.5 must not pay differently). The text is then
    judged by the amount grammar."""
    return required_text(params, "amount")


def request_from_params(params: Mapping[str, Any], reference_id: str) -> CreatePayoutInvoiceRequest:
    """The create request described by the trigger form; raises PayoutValidationError naming the field.

    Service, amount and fields are required (no defaults); nothing is sent for a refused form.
    """
    service = required_text(params, "service")
    amount = amount_text(params)
    fields = params.get("fields")
    if fields is None:
        raise PayoutValidationError("fields", "is required: a JSON object of the service's fields")
    if not isinstance(fields, Mapping):
        raise PayoutValidationError("fields", "must be a JSON object of field key -> text")
    not_text = [i for i, v in enumerate(fields.values(), start=1) if not isinstance(v, str)]
    if not_text:
        key = list(fields)[not_text[0] - 1]
        raise PayoutValidationError(field_label(key, not_text[0]), "must be text (put the value in quotes)")
    customer = params.get("customer") or None
    attributes: dict[str, Any] = {
        "service": service,
        "currency": required_text(params, "currency"),
        "amount": amount,
        "reference_id": reference_id,
        "fields": dict(fields),
        "description": params.get("description") or None,
        "customer": customer,
        "test_mode": params.get("test_mode"),
    }
    return coerce_request(attributes)


def discover_services(prerequest: PrerequestResult) -> list[str]:
    """The codes of the services the gateway offers for the currency and amount."""
    return sorted(prerequest.services)


def check_payout(request: CreatePayoutInvoiceRequest, prerequest: PrerequestResult) -> None:
    """Validate ``request`` against the chosen service of the prerequest (nothing is sent)."""
    service = prerequest.services.get(request.service)
    if service is None:
        offered = ", ".join(sorted(prerequest.services)) or "none"
        raise PayoutValidationError(
            "service",
            f"{request.service} is not offered for {request.currency} {request.amount} (offered: {offered})",
        )
    validate_request(request, service)


def prerequest_amount(params: Mapping[str, Any]) -> Decimal:
    """The amount to ask the prerequest about, checked against the currency's decimals."""
    return quantize_amount(amount_text(params), str(params.get("currency") or ""))


def _timestamp(value: int | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) or str(value).isdigit():
        return datetime.fromtimestamp(int(value), tz=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def summary_of(
    invoice: PayoutInvoice, run_started: datetime | None, dashboard_url: str | None
) -> dict[str, Any]:
    """A JSON-native summary of the payout (no fields, no customer data)."""
    finished = datetime.now(UTC)
    created, processed = _timestamp(invoice.created), _timestamp(invoice.processed)
    return {
        "reference_id": invoice.reference_id,
        "invoice_id": invoice.id,
        "status": invoice.status.value,
        "resolution": invoice.resolution,
        "outcome": invoice.outcome.value,
        "service": invoice.service,
        "currency": invoice.currency,
        "amount": format_amount(invoice.amount, invoice.currency),
        "processed_amount": format_amount(invoice.processed_amount, invoice.currency),
        "fee": format_amount(invoice.fee, invoice.currency),
        "writeoff": format_amount(invoice.writeoff, invoice.currency),
        "service_amount": format_amount(invoice.service_amount, invoice.service_currency),
        "service_currency": invoice.service_currency,
        "moderation_required": invoice.moderation_required,
        "gateway_seconds": (processed - created).total_seconds() if created and processed else None,
        "since_created_seconds": round((finished - created).total_seconds(), 1) if created else None,
        "run_seconds": round((finished - run_started).total_seconds(), 1) if run_started else None,
        "dashboard_url": dashboard_url,
    }


def _times(summary: Mapping[str, Any]) -> str:
    parts = []
    if summary.get("gateway_seconds") is not None:
        parts.append(f"{summary['gateway_seconds']:.0f} s created -> processed at the gateway")
    if summary.get("run_seconds") is not None:
        parts.append(f"{summary['run_seconds']} s for this run")
    elif summary.get("since_created_seconds") is not None:
        parts.append(f"{summary['since_created_seconds']} s since the invoice was created")
    return "; ".join(parts) or "-"


def summary_block(summary: Mapping[str, Any]) -> str:
    """The summary as one readable block for the task log."""
    rows = [
        ("Reference", summary["reference_id"]),
        ("Invoice", summary["invoice_id"]),
        ("Status", f"{summary['status']} ({summary['outcome']})"),
        ("Resolution", summary["resolution"]),
        ("Service", summary["service"]),
        ("Amount", f"{summary['amount']} {summary['currency']}"),
        ("Processed", f"{summary['processed_amount'] or '-'} {summary['currency']}"),
        ("Fee", f"{summary['fee'] or '0'} {summary['currency']}"),
        ("Write-off", f"{summary['writeoff'] or '-'} {summary['currency']}"),
        ("Recipient gets", f"{summary['service_amount'] or '-'} {summary['service_currency'] or ''}"),
        ("Moderation", "required" if summary["moderation_required"] else "no"),
        (
            "Gateway time",
            f"{summary['gateway_seconds']} s" if summary["gateway_seconds"] is not None else "-",
        ),
        ("Run time", f"{summary['run_seconds']} s" if summary["run_seconds"] is not None else "-"),
        ("Dashboard", summary["dashboard_url"] or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    rule = "=" * 60
    body = "\n".join(f"  {k:<{width}} : {v}" for k, v in rows)
    return f"\n{rule}\n  PAYOUT SUMMARY\n{rule}\n{body}\n{rule}"


def validate_params(
    prerequest: Mapping[str, Any], params: Mapping[str, Any], dag_id: str, run_id: str
) -> str:
    """The validate task: check the form against the chosen service; return the reference."""
    reference = payout_reference(params, dag_id, run_id)
    check_payout(request_from_params(params, reference), PrerequestResult.model_validate(prerequest))
    log.info("Request valid for service %s; reference_id=%s (nothing sent yet)", params["service"], reference)
    return reference


def report_payout(
    invoice_id: str | None, run_started: datetime | None, hook: PayoutGateway
) -> dict[str, Any]:
    """The summary task: read the invoice, log the block, fail unless it (partly) succeeded."""
    if not invoice_id:
        raise AirflowFailException(
            "No invoice was created (see the failed task above); nothing to summarise."
        )
    invoice = hook.get_invoice(invoice_id)
    summary = summary_of(invoice, run_started, hook.dashboard_url(invoice.id))
    log.info("%s", summary_block(summary))
    if invoice.outcome is PayoutOutcome.PARTIAL:
        log.warning(
            "Partially processed: %s of %s %s",
            summary["processed_amount"],
            summary["amount"],
            invoice.currency,
        )
    elif invoice.outcome is not PayoutOutcome.SUCCEEDED:
        raise AirflowFailException(
            f"Payout {invoice.reference_id} (invoice {invoice.id}) did not succeed: "
            f"status {invoice.status.value}, resolution {invoice.resolution} ({invoice.outcome.value})"
        )
    return summary
