"""Invoice statuses and resolutions (FACTS.md), and the outcome a processed invoice will reach."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from payout_sandbox.money import quantize

CREATED = "created"
PROCESSING = "processing"
PROCESSED = "processed"
PARTIALLY_PROCESSED = "partially_processed"
PROCESS_FAILED = "process_failed"
EXPIRED = "expired"

STATUSES = frozenset(
    {
        "created", "processing", "process_pending", "process_error", "processed", "partially_processed",
        "process_failed", "expired", "terminated", "canceling", "cancel_pending", "cancel_error",
        "canceled", "partially_canceled", "cancel_failed",
    }
)  # fmt: skip
FINAL_STATUSES = frozenset(
    {"processed", "partially_processed", "process_failed", "expired", "terminated", "canceled",
     "partially_canceled", "cancel_failed"}
)  # fmt: skip
ERROR_RESOLUTIONS = frozenset(
    {"connection_error", "provider_internal_error", "connection_timeout_error", "general_error", "unknown"}
)
FATAL_RESOLUTIONS = frozenset(
    {
        "invalid_details", "invalid_request", "request_error", "invalid_amount", "invalid_method",
        "invalid_credentials", "forbidden_ip", "signature_error", "duplicated_id", "insufficient_funds",
        "antifraud_error", "declined_error", "recipient_not_found", "invalid_recipient", "limit_violation",
        "internal_error", "access_error", "access_denied", "general_fatal_error", "operation_expired",
        "processing_error",
    }
)  # fmt: skip
RESOLUTIONS = frozenset({"ok"}) | ERROR_RESOLUTIONS | FATAL_RESOLUTIONS

# What a requested status resolves to when no resolution is requested.
_DEFAULT_RESOLUTION = {
    "process_failed": "declined_error",
    "process_error": "general_error",
    "expired": "operation_expired",
    "cancel_failed": "general_fatal_error",
    "cancel_error": "general_error",
}
# Statuses a test_details_payout_status may ask for (a processed invoice can reach these).
REQUESTABLE_STATUSES = STATUSES - {CREATED}


def normalize(value: str) -> str:
    """``"Process failed"`` / ``"process-failed"`` / ``"process_failed"`` -> ``"process_failed"``."""
    return re.sub(r"[\s\-_]+", "_", value.strip().lower())


@dataclass(frozen=True)
class Outcome:
    """Where a processed invoice ends up after the processing delay."""

    status: str
    resolution: str
    processed_amount: Decimal | None
    moderation_required: bool


def decide_outcome(
    *,
    seed: int,
    reference_id: str,
    amount: Decimal,
    currency: str,
    test_details: dict[str, str],
    allow_partially: bool,
) -> Outcome:
    """The outcome of processing, from the test_details_* fields (reproducible per seed + reference).

    - ``test_details_payout_status`` wins (with ``test_details_payout_resolution`` or a default);
      ``partially_processed`` needs ``options.allow_partially``, else the payout fails (invalid_amount).
    - else ``test_details_payout_resolution``: ``ok`` -> processed; an error-group resolution ->
      ``process_error`` waiting for a person; a fatal one -> ``process_failed``.
    - else ``test_details_success_rate`` (0..100): a seeded draw picks processed or process_failed.
    - else processed / ok.
    """
    rng = random.Random(f"{seed}:{reference_id}")
    status_wanted = normalize(test_details.get("test_details_payout_status", "") or "")
    resolution_wanted = normalize(test_details.get("test_details_payout_resolution", "") or "")
    rate = test_details.get("test_details_success_rate")
    if status_wanted:
        status = status_wanted
        resolution = resolution_wanted or _DEFAULT_RESOLUTION.get(status, "ok")
    elif resolution_wanted:
        resolution = resolution_wanted
        if resolution == "ok":
            status = PROCESSED
        elif resolution in ERROR_RESOLUTIONS:
            status = "process_error"
        else:
            status = PROCESS_FAILED
    elif rate is not None:
        success = rng.random() * 100 < int(rate)
        status, resolution = (PROCESSED, "ok") if success else (PROCESS_FAILED, "declined_error")
    else:
        status, resolution = PROCESSED, "ok"

    processed_amount: Decimal | None = None
    if status == PARTIALLY_PROCESSED:
        part = quantize(amount * Decimal(rng.randint(10, 90)) / 100, currency, rounding=ROUND_DOWN)
        if allow_partially and Decimal(0) < part < amount:
            processed_amount = part
        else:
            status, resolution = PROCESS_FAILED, "invalid_amount"
    if status == PROCESSED:
        processed_amount = amount
    elif status in FINAL_STATUSES and processed_amount is None:
        processed_amount = Decimal(0)
    return Outcome(status, resolution, processed_amount, resolution in ERROR_RESOLUTIONS)
