"""Payout invoice statuses, resolutions, and what they mean for a waiting client."""

from __future__ import annotations

import logging
from enum import StrEnum

log = logging.getLogger(__name__)


class PayoutStatus(StrEnum):
    """Every invoice status the gateway documents, plus ``UNKNOWN`` for anything new.

    An unknown string parses to ``UNKNOWN`` (never to a success); see :func:`outcome`.
    """

    CREATED = "created"
    PROCESSING = "processing"
    PROCESS_PENDING = "process_pending"
    PROCESS_ERROR = "process_error"
    PROCESSED = "processed"
    PARTIALLY_PROCESSED = "partially_processed"
    PROCESS_FAILED = "process_failed"
    EXPIRED = "expired"
    TERMINATED = "terminated"
    CANCELING = "canceling"
    CANCEL_PENDING = "cancel_pending"
    CANCEL_ERROR = "cancel_error"
    CANCELED = "canceled"
    PARTIALLY_CANCELED = "partially_canceled"
    CANCEL_FAILED = "cancel_failed"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> PayoutStatus:
        if isinstance(value, str):
            lowered = value.strip().lower()
            for member in cls:
                if member.value == lowered:
                    return member
        log.warning("Unknown payout invoice status %r: treated as pending, never as success.", value)
        return cls.UNKNOWN


class PayoutOutcome(StrEnum):
    """What a status (with its resolution) means for the payout."""

    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    PENDING = "pending"
    NEEDS_PERSON = "needs_person"


FINAL_STATUSES: frozenset[PayoutStatus] = frozenset(
    {
        PayoutStatus.PROCESSED,
        PayoutStatus.PARTIALLY_PROCESSED,
        PayoutStatus.PROCESS_FAILED,
        PayoutStatus.EXPIRED,
        PayoutStatus.TERMINATED,
        PayoutStatus.CANCELED,
        PayoutStatus.PARTIALLY_CANCELED,
        PayoutStatus.CANCEL_FAILED,
    }
)
FAILED_STATUSES: frozenset[PayoutStatus] = FINAL_STATUSES - {
    PayoutStatus.PROCESSED,
    PayoutStatus.PARTIALLY_PROCESSED,
}

#: Resolutions of the error group: the invoice is not final and waits for a person.
ERROR_GROUP_RESOLUTIONS: frozenset[str] = frozenset(
    {"connection_error", "provider_internal_error", "connection_timeout_error", "general_error", "unknown"}
)
#: Resolutions of the fatal group: the invoice is final.
FATAL_GROUP_RESOLUTIONS: frozenset[str] = frozenset(
    {
        "invalid_details",
        "invalid_request",
        "request_error",
        "invalid_amount",
        "invalid_method",
        "invalid_credentials",
        "forbidden_ip",
        "signature_error",
        "duplicated_id",
        "insufficient_funds",
        "antifraud_error",
        "declined_error",
        "recipient_not_found",
        "invalid_recipient",
        "limit_violation",
        "internal_error",
        "access_error",
        "access_denied",
        "general_fatal_error",
        "operation_expired",
        "processing_error",
    }
)


#: Each documented resolution in words a person reads (the gateway's groups: error, fatal).
RESOLUTION_WORDS: dict[str, str] = {
    "ok": "ok",
    "connection_error": "the provider could not be reached",
    "provider_internal_error": "internal error at the provider",
    "connection_timeout_error": "the provider did not answer in time",
    "general_error": "general error at the provider",
    "unknown": "unknown error at the provider",
    "invalid_details": "invalid payout details",
    "invalid_request": "invalid request",
    "request_error": "request error",
    "invalid_amount": "invalid amount",
    "invalid_method": "payout method not available",
    "invalid_credentials": "invalid provider credentials",
    "forbidden_ip": "request from a forbidden IP address",
    "signature_error": "signature error",
    "duplicated_id": "duplicated operation id",
    "insufficient_funds": "insufficient funds",
    "antifraud_error": "refused by anti-fraud checks",
    "declined_error": "declined by the provider",
    "recipient_not_found": "recipient not found",
    "invalid_recipient": "invalid recipient",
    "limit_violation": "a limit was exceeded",
    "internal_error": "internal error",
    "access_error": "access error",
    "access_denied": "access denied",
    "general_fatal_error": "general fatal error",
    "operation_expired": "the operation expired",
    "processing_error": "processing error",
}


def resolution_words(resolution: str | None) -> str:
    """``resolution`` in words: ``insufficient_funds`` -> "insufficient funds"; an undocumented
    one is spelled out from its code (``new_reason`` -> "new reason"); empty for none."""
    code = (resolution or "").strip().lower()
    return RESOLUTION_WORDS.get(code) or code.replace("_", " ")


def is_final(status: PayoutStatus | str) -> bool:
    """Whether the gateway documents ``status`` as final (``UNKNOWN`` is not)."""
    return PayoutStatus(status) in FINAL_STATUSES


def outcome(
    status: PayoutStatus | str, resolution: str | None = None, moderation_required: bool = False
) -> PayoutOutcome:
    """Map a status (and resolution) to exactly one outcome.

    Final statuses decide by themselves. A non-final invoice with an error-group resolution or
    ``moderation_required`` needs a person; every other non-final status, ``UNKNOWN`` included,
    is pending.
    """
    status = PayoutStatus(status)
    if status is PayoutStatus.PROCESSED:
        return PayoutOutcome.SUCCEEDED
    if status is PayoutStatus.PARTIALLY_PROCESSED:
        return PayoutOutcome.PARTIAL
    if status in FAILED_STATUSES:
        return PayoutOutcome.FAILED
    if moderation_required or (resolution or "").lower() in ERROR_GROUP_RESOLUTIONS:
        return PayoutOutcome.NEEDS_PERSON
    return PayoutOutcome.PENDING
