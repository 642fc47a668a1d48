"""Four-eyes approval of payouts: the settings, who may approve, what the approver is shown.

Settings (environment, read when the approval task runs, so a bad value fails that task with a
clear error and nothing is sent):

- ``PAYOUT_APPROVERS``: comma-separated user names allowed to approve (with Airflow's simple auth
  manager the user name is the user id that ``assigned_users`` holds).
- ``PAYOUT_APPROVAL_THRESHOLD``: a total in major units, compared per currency (``Decimal``).
  A payout or batch whose total in some currency is at or above it needs approval; ``0`` (the
  default) means everything does; ``off`` turns approval off (the run's log says so).
- ``PAYOUT_APPROVAL_TIMEOUT``: how long the approval waits for an answer: whole seconds (``3600``)
  or an ISO-8601 duration (``PT4H``, ``P1DT12H``). Default ``PT24H``. No answer = not approved.

Rules: the user who triggered the run never approves it (left out of ``assigned_users``, and an
answer from them is refused after the fact too); a run nobody triggered (scheduled, asset) always
needs an approver, whatever its total; an empty batch needs nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypedDict

from payout_gateway.money import format_amount, parse_amount
from payout_gateway.redaction import mask_number, redact_text

APPROVERS_ENV = "PAYOUT_APPROVERS"
THRESHOLD_ENV = "PAYOUT_APPROVAL_THRESHOLD"
TIMEOUT_ENV = "PAYOUT_APPROVAL_TIMEOUT"
DEFAULT_TIMEOUT = timedelta(hours=24)
#: The most an approval may wait (a longer wait is a configuration mistake).
MAX_TIMEOUT = timedelta(days=30)
#: How many of the largest payouts the approver sees.
LARGEST_SHOWN = 5

APPROVED, NOT_APPROVED, NOT_REQUIRED = "approved", "not approved", "not required"

_USER_NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")
_THRESHOLD = re.compile(r"[0-9]{1,15}(\.[0-9]{1,4})?")
_SECONDS = re.compile(r"[0-9]{1,9}")
_ISO_DURATION = re.compile(r"P(?:(\d{1,4})D)?(?:T(?:(\d{1,6})H)?(?:(\d{1,8})M)?(?:(\d{1,9})S)?)?")
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.]{1,64}")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")


class ApprovalSettingError(ValueError):
    """A ``PAYOUT_APPROVAL_*`` / ``PAYOUT_APPROVERS`` value that cannot be used (the message names
    the setting and what it must look like, never the value)."""


# ----------------------------------------------------------------------------------- settings


def approvers() -> tuple[str, ...]:
    """``PAYOUT_APPROVERS`` as user names (empty entries ignored, duplicates dropped)."""
    names: list[str] = []
    for position, entry in enumerate(os.environ.get(APPROVERS_ENV, "").split(","), start=1):
        name = entry.strip()
        if not name:
            continue
        if not _USER_NAME.fullmatch(name):
            raise ApprovalSettingError(
                f"{APPROVERS_ENV}: entry {position} is not a user name (1-64 letters, digits or "
                "'_', '.', '@', '+', '-'); nothing was sent"
            )
        if name not in names:
            names.append(name)
    return tuple(names)


def threshold() -> Decimal | None:
    """``PAYOUT_APPROVAL_THRESHOLD`` as a Decimal in major units, or None when approval is off."""
    raw = os.environ.get(THRESHOLD_ENV, "").strip()
    if not raw:
        return Decimal(0)
    if raw.lower() == "off":
        return None
    if not _THRESHOLD.fullmatch(raw):
        raise ApprovalSettingError(
            f"{THRESHOLD_ENV}: must be 'off' or a total in major units (ASCII digits, at most one '.', "
            "e.g. 0, 1000 or 2500.50); nothing was sent"
        )
    return Decimal(raw)


def response_timeout() -> timedelta:
    """``PAYOUT_APPROVAL_TIMEOUT``: seconds or an ISO-8601 duration; default 24 hours."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    if _SECONDS.fullmatch(raw):
        timeout = timedelta(seconds=int(raw))
    elif (match := _ISO_DURATION.fullmatch(raw.upper())) and raw.upper() not in ("P", "PT"):
        days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
        timeout = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    else:
        raise ApprovalSettingError(
            f"{TIMEOUT_ENV}: must be whole seconds (e.g. 3600) or an ISO-8601 duration "
            "(e.g. PT4H, P1DT12H); nothing was sent"
        )
    if not timedelta(seconds=1) <= timeout <= MAX_TIMEOUT:
        raise ApprovalSettingError(f"{TIMEOUT_ENV}: must be between 1 second and 30 days; nothing was sent")
    return timeout


# ------------------------------------------------------------------------ what is to be approved


class Payout(TypedDict):
    """One payout as the approver sees it: no field value but a masked recipient."""

    row: int | None
    reference_id: str
    amount: str
    currency: str
    service: str
    recipient: str


class ApprovalRequest(TypedDict):
    """What is about to leave (XCom-safe: counts, totals, masked recipients, the file's digest)."""

    kind: str  # "batch" or "payout"
    batch_id: str
    file: str
    file_sha256: str
    to_pay: int
    rejected: int
    totals: dict[str, str]  # currency -> total in major units
    largest: list[Payout]


def masked_recipient(fields: Mapping[str, Any]) -> str:
    """The payout's fields as ``name ******1234`` (last four characters only), e.g. for an account
    or card number; names that are not plain identifiers are left out."""
    parts = [
        f"{name} {mask_number(str(value))}"
        for name, value in sorted(fields.items())
        if _FIELD_NAME.fullmatch(str(name)) and value not in (None, "")
    ]
    return ", ".join(parts) or "-"


def build_request(
    *,
    kind: str,
    batch_id: str,
    payouts: Iterable[Payout],
    rejected: int = 0,
    file: str = "",
    file_sha256: str = "",
) -> ApprovalRequest:
    """Totals per currency (Decimal, quantized by the currency) and the largest payouts."""
    items = list(payouts)
    sums: dict[str, Decimal] = {}
    for item in items:
        sums[item["currency"]] = sums.get(item["currency"], Decimal(0)) + Decimal(item["amount"])
    largest = sorted(items, key=lambda p: (-Decimal(p["amount"]), p["row"] or 0))[:LARGEST_SHOWN]
    return ApprovalRequest(
        kind=kind,
        batch_id=batch_id,
        file=file,
        file_sha256=file_sha256,
        to_pay=len(items),
        rejected=rejected,
        totals={cur: format_amount(total, cur) or "0" for cur, total in sorted(sums.items())},
        largest=largest,
    )


def payout(
    row: int | None, reference_id: str, amount: Any, currency: str, service: str, fields: Mapping[str, Any]
) -> Payout:
    """One payout of a request (``amount`` through the one amount grammar)."""
    value = parse_amount(amount, currency)
    return Payout(
        row=row,
        reference_id=reference_id,
        amount=format_amount(value, currency) or "0",
        currency=currency,
        service=service,
        recipient=masked_recipient(fields),
    )


# ----------------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Policy:
    """The settings in force for one approval."""

    threshold: Decimal | None
    approvers: tuple[str, ...]
    timeout: timedelta

    @classmethod
    def from_environment(cls) -> Policy:
        return cls(threshold=threshold(), approvers=approvers(), timeout=response_timeout())


def same_user(a: str | None, b: str | None) -> bool:
    """Whether two user names are the same person (case-insensitive: stricter, never looser)."""
    return bool(a) and bool(b) and str(a).casefold() == str(b).casefold()


def why_no_approval(request: ApprovalRequest | None, policy: Policy, maker: str | None) -> str | None:
    """Why this request goes without a second person (the log line), or None: ask for approval."""
    if policy.threshold is None:
        return f"approval is off ({THRESHOLD_ENV}=off): sent without a second person's approval"
    if not request or not request["to_pay"]:
        return "nothing to pay: no approval needed"
    if not maker:
        return None  # nobody vouches for a scheduled (or asset-triggered) run: always ask
    if all(Decimal(total) < policy.threshold for total in request["totals"].values()):
        return f"every currency's total is below {THRESHOLD_ENV}={policy.threshold}: no approval needed"
    return None


def allowed_approvers(policy: Policy, maker: str | None) -> list[str]:
    """``PAYOUT_APPROVERS`` without the maker; an error when nobody is left."""
    if not policy.approvers:
        raise ApprovalSettingError(
            f"{APPROVERS_ENV} is empty: set the user names that may approve payouts "
            f"(or {THRESHOLD_ENV}=off for development); nothing was sent"
        )
    allowed = [name for name in policy.approvers if not same_user(name, maker)]
    if not allowed:
        raise ApprovalSettingError(
            f"{APPROVERS_ENV} names only {maker}, who triggered this run and cannot approve it: "
            "add a second approver; nothing was sent"
        )
    return allowed


def refusal(responder: Mapping[str, Any] | None, policy: Policy, maker: str | None) -> str | None:
    """Why an "Approve" answer does not count (defence in depth, after Airflow's own check)."""
    if not responder:
        return "the answer names no user"
    names = {str(responder.get("name") or ""), str(responder.get("id") or "")} - {""}
    if any(same_user(name, maker) for name in names):
        return f"{responder.get('name')} triggered this run and cannot approve it (four eyes)"
    if not any(same_user(name, allowed) for name in names for allowed in policy.approvers):
        return f"{responder.get('name')} is not in {APPROVERS_ENV}"
    return None


def decision(
    status: str, reason: str, *, by: str | None = None, at: str | None = None, maker: str | None = None
) -> dict[str, Any]:
    """The approval task's result (XCom, report's ``approval``): JSON-native."""
    return {
        "status": status,
        "approved": status != NOT_APPROVED,
        "reason": reason,
        "by": by,
        "at": at,
        "triggered_by": maker,
    }


# ----------------------------------------------------------------------------------- the texts


def md(text: Any) -> str:
    """``text`` for the Markdown body: card-like numbers masked (a file name or a reference may
    hold one), then Markdown's special characters escaped (names from files, users, references)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", redact_text(str(text)))


def subject(request: ApprovalRequest) -> str:
    totals = ", ".join(f"{amount} {cur}" for cur, amount in request["totals"].items())
    name = redact_text(request["batch_id"])  # a batch id or reference may be all digits
    if request["kind"] == "batch":
        return f"Approve payout batch {name}: {request['to_pay']} payout(s), {totals}"
    return f"Approve payout {name}: {totals}"


def body(request: ApprovalRequest, policy: Policy, maker: str | None, allowed: Sequence[str]) -> str:
    """Markdown: what is about to leave, who triggered it, who may answer and until when."""
    lines = []
    if request["kind"] == "batch":
        lines += [
            f"**Batch** {md(request['batch_id'])}",
            "",
            f"- File: {md(request['file'])}",
            f"- SHA-256: `{request['file_sha256']}`",
            f"- Rows to pay: **{request['to_pay']}**",
            f"- Rows rejected (never sent): **{request['rejected']}**",
        ]
    else:
        lines += [f"**Payout** {md(request['batch_id'])}", ""]
    lines += ["", "| currency | total |", "|---|---:|"]
    lines += [f"| {cur} | {amount} |" for cur, amount in request["totals"].items()]
    lines += ["", "**Largest payouts**", "", "| row | reference | amount | service | recipient |"]
    lines += ["|---:|---|---:|---|---|"]
    for item in request["largest"]:
        row = item["row"] if item["row"] is not None else "-"
        lines.append(
            f"| {row} | {md(item['reference_id'])} | {item['amount']} {item['currency']} "
            f"| {md(item['service'])} | {md(item['recipient'])} |"
        )
    who = md(maker) if maker else "nobody (scheduled run)"
    lines += [
        "",
        f"Triggered by: {who}. May approve: {', '.join(md(a) for a in allowed)}.",
        f"No answer within {policy.timeout} means **not approved**: nothing is sent.",
    ]
    return "\n".join(lines)
