"""Status and outcome mapping: every status has exactly one outcome; unknown is never success."""

from __future__ import annotations

import pytest
from payout_gateway.statuses import (
    ERROR_GROUP_RESOLUTIONS,
    FINAL_STATUSES,
    PayoutOutcome,
    PayoutStatus,
    is_final,
    outcome,
)

FACTS_STATUSES = {
    "created": False, "processing": False, "process_pending": False, "process_error": False,
    "processed": True, "partially_processed": True, "process_failed": True, "expired": True,
    "terminated": True, "canceling": False, "cancel_pending": False, "cancel_error": False,
    "canceled": True, "partially_canceled": True, "cancel_failed": True,
}  # fmt: skip


def test_enum_holds_the_full_facts_list_plus_unknown() -> None:
    assert {s.value for s in PayoutStatus} == set(FACTS_STATUSES) | {"unknown"}


@pytest.mark.parametrize(("status", "final"), FACTS_STATUSES.items())
def test_finality_matches_facts(status: str, final: bool) -> None:
    assert is_final(status) is final


def test_unknown_strings_map_to_unknown_and_pending() -> None:
    assert PayoutStatus("something_new") is PayoutStatus.UNKNOWN
    assert PayoutStatus("PROCESSED") is PayoutStatus.PROCESSED
    assert not is_final("something_new")
    assert outcome("something_new", "ok") is PayoutOutcome.PENDING


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("processed", PayoutOutcome.SUCCEEDED),
        ("partially_processed", PayoutOutcome.PARTIAL),
        *[
            (s.value, PayoutOutcome.FAILED)
            for s in FINAL_STATUSES
            if s.value not in {"processed", "partially_processed"}
        ],
        *[(s, PayoutOutcome.PENDING) for s, final in FACTS_STATUSES.items() if not final],
    ],
)
def test_outcome_with_ok_resolution(status: str, expected: PayoutOutcome) -> None:
    assert outcome(status, "ok") is expected


@pytest.mark.parametrize("resolution", sorted(ERROR_GROUP_RESOLUTIONS))
def test_error_group_resolution_needs_a_person(resolution: str) -> None:
    assert outcome("processing", resolution) is PayoutOutcome.NEEDS_PERSON
    assert outcome("process_failed", resolution) is PayoutOutcome.FAILED


def test_moderation_required_needs_a_person_until_final() -> None:
    assert outcome("created", "ok", moderation_required=True) is PayoutOutcome.NEEDS_PERSON
    assert outcome("processed", "ok", moderation_required=True) is PayoutOutcome.SUCCEEDED


def test_insufficient_funds_is_a_failure() -> None:
    assert outcome("process_failed", "insufficient_funds") is PayoutOutcome.FAILED
