"""One payout by reference details, from the trigger form's params to the summary block.

The request is rebuilt from the run's params wherever it is needed (params are part of the run),
so XCom carries only service codes, the reference and the invoice id: never fields (account or
card numbers) nor customer data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from payout_gateway.exceptions import PayoutValidationError
from payout_gateway.models import CreatePayoutInvoiceRequest, PayoutInvoice, PrerequestResult
from payout_gateway.money import (
    SUPPORTED_CURRENCIES,
    amount_rules,
    currency_exponent,
    format_amount,
)
from payout_gateway.statuses import PayoutOutcome, resolution_words
from payout_gateway.validation import (
    choose_service,
    coerce_request,
    field_label,
    validate_request,
)

from payout_jobs import approval, settings
from payout_jobs.gateway_client import PayoutGateway
from payout_jobs.identity import single_payout_reference
from payout_jobs.offered_services import cached_service_codes, remember_offered
from payout_jobs.payout_records import write_record

log = logging.getLogger(__name__)

#: The trigger forms' currencies: those the money module knows the decimals of.
CURRENCIES = SUPPORTED_CURRENCIES
#: How the forms' currency dropdowns label each code (Airflow's ``values_display``).
CURRENCY_LABELS = {
    code: f"{code} ({'no decimals' if currency_exponent(code) == 0 else 'at most 2 decimals'})"
    for code in CURRENCIES
}
#: The amount field's help text in the trigger form.
AMOUNT_HELP = f"Required, as text in major units: {amount_rules()}."
#: The checks of the form's free-text params, made by the tasks with a message a person can act
#: on. Not JSON-schema ``pattern``s: Airflow refuses a param outside its pattern with the
#: schema's raw text and the rejected value (a card number pasted in the wrong field included).
REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
SERVICE_PATTERN = re.compile(r"[a-z0-9_]{1,64}")


def service_suggestions() -> dict[str, Any]:
    """The service param's ``examples`` (the form's suggestion list) from the services cache, or
    nothing when there is no cache yet; read at parse time, no network."""
    codes = cached_service_codes(settings.services_file())
    return {"examples": codes} if codes else {}


def payout_reference(params: Mapping[str, Any], dag_id: str, run_id: str) -> str:
    """The reference to use: the user's, or one derived from the run and the payout (see identity)."""
    given = params.get("reference_id") or ""
    if not isinstance(given, str) or (given and not REFERENCE_PATTERN.fullmatch(given)):
        raise PayoutValidationError(
            "reference_id",
            "use 1 to 64 letters, digits or _ . : - (e.g. order-1234), or leave it empty",
        )
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


def attributes_from_params(params: Mapping[str, Any], reference_id: str) -> dict[str, Any]:
    """The create request's attributes described by the trigger form (values as data, never
    rendered); raises PayoutValidationError naming the field. Service, amount and fields are
    required (no defaults); nothing is sent for a refused form."""
    service = required_text(params, "service")
    if not SERVICE_PATTERN.fullmatch(service):
        raise PayoutValidationError(
            "service", "use a service code of lower-case letters, digits and _ (e.g. test_usd)"
        )
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
    return {
        "service": service,
        "currency": required_text(params, "currency"),
        "amount": amount,
        "reference_id": reference_id,
        "fields": dict(fields),
        "description": params.get("description") or None,
        "customer": params.get("customer") or None,
        "test_mode": params.get("test_mode"),
    }


def request_from_params(params: Mapping[str, Any], reference_id: str) -> CreatePayoutInvoiceRequest:
    """The create request described by the trigger form (see :func:`attributes_from_params`)."""
    return coerce_request(attributes_from_params(params, reference_id))


def discover_services(prerequest: PrerequestResult) -> list[str]:
    """The codes of the services the gateway offers for the currency and amount."""
    return sorted(prerequest.services)


def summary_of(
    invoice: PayoutInvoice, run_started: datetime | None, dashboard_url: str | None
) -> dict[str, Any]:
    """A JSON-native summary of the payout (no fields, no customer data)."""
    finished = datetime.now(UTC)
    created, processed = invoice.created, invoice.processed
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


def validated_payout(
    prerequest: Mapping[str, Any], params: Mapping[str, Any], dag_id: str, run_id: str
) -> dict[str, Any]:
    """The validate task: the reference (computed once, here) and the chosen service's definition
    (from the one prerequest), after checking the form against that service; nothing is sent.

    The create task takes both from this task's XCom (no second prerequest, no second check).
    """
    reference = payout_reference(params, dag_id, run_id)
    request = request_from_params(params, reference)
    offered = PrerequestResult.model_validate(prerequest)
    remember_offered(settings.services_file(), offered.currency, offered.services)
    service = choose_service(request, offered)
    validate_request(request, service)
    log.info("Request valid for service %s; reference_id=%s (nothing sent yet)", request.service, reference)
    return {"reference_id": reference, "service_definition": service.model_dump(mode="json")}


def validate_params(
    prerequest: Mapping[str, Any], params: Mapping[str, Any], dag_id: str, run_id: str
) -> str:
    """:func:`validated_payout`'s reference (for callers that only need it)."""
    return validated_payout(prerequest, params, dag_id, run_id)["reference_id"]


def approval_request(params: Mapping[str, Any], reference: str) -> approval.ApprovalRequest:
    """What the approver of this payout is shown (amount, currency, service, masked recipient)."""
    currency = required_text(params, "currency")
    item = approval.payout(
        None,
        reference,
        amount_text(params),
        currency,
        required_text(params, "service"),
        dict(params.get("fields") or {}),
    )
    return approval.build_request(kind="payout", batch_id=reference, payouts=[item])


def report_payout(
    invoice_id: str | None,
    run_started: datetime | None,
    hook: PayoutGateway,
    approval_decision: Mapping[str, Any] | None = None,
    dag_run: Any = None,
) -> dict[str, Any]:
    """The summary task: read the invoice, log the block, record it for the Payouts view (with
    ``dag_run``: see :mod:`payout_jobs.payout_records`), fail unless it (partly) succeeded.

    A payout that was not approved fails with the reason (nothing was sent)."""
    if approval_decision and not approval_decision.get("approved") and not invoice_id:
        raise AirflowFailException(
            f"Payout not approved ({approval_decision.get('reason')}): nothing was sent."
        )
    if not invoice_id:
        raise AirflowFailException(
            "No invoice was created (see the failed task above); nothing to summarise."
        )
    invoice = hook.get_invoice(invoice_id)
    summary = summary_of(invoice, run_started, hook.dashboard_url(invoice.id))
    log.info("%s", summary_block(summary))
    if dag_run is not None:
        try:
            path = write_record(summary, dag_run.dag_id, dag_run.run_id)
            log.info("Recorded for the Payouts view: %s", path)
        except OSError as exc:  # the view's record must not hide the payout's real outcome
            log.warning("Could not record the payout for the Payouts view (%s)", type(exc).__name__)
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
            f"status {invoice.status.value}, resolution {invoice.resolution} "
            f"({resolution_words(invoice.resolution) or 'none'}; {invoice.outcome.value})"
        )
    return summary
