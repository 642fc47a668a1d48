"""Is an existing invoice this payout? And the one masking rule for a payout's field values.

Adopting an existing invoice (found before a create, after a 409, after an unknown outcome)
requires proof that it is the same payout: the keyed fingerprint in its metadata
(:mod:`payout_gateway.fingerprint`) and nothing visibly different (:func:`payout_differences`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from airflow.sdk.log import mask_secret, redact

from payout_gateway.models import CreatePayoutInvoiceRequest, PayoutInvoice

#: Field values at least this long are masked in logs (shorter ones cannot identify an account).
MASK_MIN_LENGTH = 4
#: What Airflow's secrets masker writes in place of a value it masks.
MASKED = "***"


def mask_field_values(*fields: Mapping[str, Any] | None) -> None:
    """Register payouts' field values (card or account numbers, names) with Airflow's secrets
    masker: every text value of :data:`MASK_MIN_LENGTH` or more characters. The only masking rule
    for field values: the hook, the operators and the jobs all call this.

    Only values the masker does not mask yet are registered, all in one call: Airflow 3.3's
    ``mask_secret`` recompiles its pattern and sends the task's supervisor one message per call,
    so a batch chunk registers its rows once (linear) and each row's create then sends nothing.
    """
    new = {
        value
        for mapping in fields
        for value in (mapping or {}).values()
        if isinstance(value, str) and len(value) >= MASK_MIN_LENGTH and redact(value) != MASKED
    }
    if new:
        mask_secret(sorted(new))


def _field_matches(sent: str, returned: Any) -> bool:
    """Whether a field value we sent matches what the gateway returned (possibly masked)."""
    returned = str(returned)
    if "*" not in returned:
        return returned == sent
    prefix = returned[: returned.index("*")]
    suffix = returned[returned.rindex("*") + 1 :]
    return sent.startswith(prefix) and sent.endswith(suffix) and len(sent) >= len(prefix) + len(suffix)


def payout_differences(request: CreatePayoutInvoiceRequest, invoice: PayoutInvoice) -> list[str]:
    """Names of what visibly differs between ``request`` and an existing ``invoice`` (never values).

    Compares amount, currency, service, test_mode (when both are known) and fields; masked fields
    (``512381******0000``) compare through their visible characters, which cannot tell two
    numbers with the same visible digits apart: the fingerprint is what proves a payout's identity.
    """
    differences = []
    if Decimal(invoice.amount) != Decimal(request.amount):
        differences.append("amount")
    if invoice.currency.upper() != request.currency.upper():
        differences.append("currency")
    if invoice.service and invoice.service != request.service:
        differences.append("service")
    if (
        request.test_mode is not None
        and invoice.test_mode is not None
        and invoice.test_mode != request.test_mode
    ):
        differences.append("test_mode")
    for key in sorted(set(request.fields) | set(invoice.fields)):
        returned = invoice.fields.get(key)
        if key not in request.fields:
            if returned not in (None, ""):
                differences.append(f"fields.{key}")
        elif (
            key in invoice.fields
            and returned is not None
            and not _field_matches(request.fields[key], returned)
        ):
            differences.append(f"fields.{key}")
    return differences
