"""Daily reconciliation: what in the gateway's invoice list needs attention.

Findings (one CSV line per invoice and category):

- ``stuck``: not final, and not updated for longer than the threshold (as of the check time).
- ``needs_person``: an error-group resolution or ``moderation_required`` (the gateway waits for a
  person; nothing is retried or re-created automatically).
- ``reversal``: a payout that was processed (a processed time or amount) and is now in any other
  status than ``processed``/``partially_processed`` (the cancel family, ``process_failed`` with the
  processed amount kept, back to pending, an unknown status...): any move away from success.
- ``unknown_status``: a status the gateway does not document (e.g. ``refunded``): never taken for
  a success or a failure, and never left to age into ``stuck``.
- ``duplicate_reference``: a reference with more than one invoice (a payout made twice).
- ``partially_processed``: processed for less than the invoice amount.
- ``failed``: a final failure (``process_failed``, ``expired``, ``terminated`` ...), not a reversal.

``stuck``, ``needs_person``, ``reversal``, ``unknown_status`` and ``duplicate_reference`` need a
person: the DAG run
fails (red) after writing the files when any is found. Failures and partial payouts are listed for
the record (the payout DAGs already went red for them).
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from payout_gateway.models import PayoutInvoice, parse_timestamp
from payout_gateway.money import format_amount
from payout_gateway.statuses import PayoutOutcome, PayoutStatus

from payout_jobs import settings
from payout_jobs.atomic_files import atomic_write
from payout_jobs.csv_safety import safe_writer
from payout_jobs.gateway_client import PayoutGateway

log = logging.getLogger(__name__)

STUCK, NEEDS_PERSON, REVERSAL = "stuck", "needs_person", "reversal"
DUPLICATE, PARTIAL, FAILED = "duplicate_reference", "partially_processed", "failed"
UNKNOWN_STATUS = "unknown_status"
NEEDS_A_PERSON = frozenset({STUCK, NEEDS_PERSON, REVERSAL, DUPLICATE, UNKNOWN_STATUS})
#: The statuses a paid invoice may keep without a person looking at it.
SUCCESS_STATUSES = frozenset({PayoutStatus.PROCESSED, PayoutStatus.PARTIALLY_PROCESSED})
CSV_COLUMNS = (
    "category",
    "invoice_id",
    "reference_id",
    "status",
    "resolution",
    "amount",
    "processed_amount",
    "currency",
    "created",
    "updated",
    "age_minutes",
    "detail",
)


@dataclass
class Finding:
    """One line of reconciliation.csv."""

    category: str
    invoice_id: str
    reference_id: str
    status: str
    resolution: str
    amount: str
    processed_amount: str
    currency: str
    created: str
    updated: str
    age_minutes: str
    detail: str


def _finding(category: str, invoice: PayoutInvoice, as_of: datetime, detail: str) -> Finding:
    created, updated = invoice.created, invoice.updated
    age = f"{(as_of - updated).total_seconds() / 60:.0f}" if updated else ""
    return Finding(
        category=category,
        invoice_id=invoice.id,
        reference_id=invoice.reference_id or "",
        status=invoice.status.value,
        resolution=invoice.resolution or "",
        amount=format_amount(invoice.amount, invoice.currency) or "",
        processed_amount=format_amount(invoice.processed_amount, invoice.currency) or "",
        currency=invoice.currency,
        created=created.isoformat() if created else "",
        updated=updated.isoformat() if updated else "",
        age_minutes=age,
        detail=detail,
    )


def was_processed(invoice: PayoutInvoice) -> bool:
    """Whether the gateway ever paid this invoice (a processed time or a processed amount)."""
    return bool(invoice.processed) or bool(invoice.processed_amount)


def classify(invoice: PayoutInvoice, as_of: datetime, stuck_after: timedelta) -> list[tuple[str, str]]:
    """The (category, detail) findings for one invoice (none for a healthy one)."""
    findings: list[tuple[str, str]] = []
    outcome = invoice.outcome
    unknown = invoice.status is PayoutStatus.UNKNOWN
    if was_processed(invoice) and invoice.status not in SUCCESS_STATUSES:
        now = "a status the gateway does not document" if unknown else invoice.status.value
        findings.append((REVERSAL, f"processed, now {now}"))
    elif outcome is PayoutOutcome.FAILED:
        findings.append((FAILED, f"final status {invoice.status.value}"))
    if unknown:
        findings.append((UNKNOWN_STATUS, "status not documented by the gateway: check it in the dashboard"))
    if outcome is PayoutOutcome.PARTIAL:
        findings.append((PARTIAL, "processed amount below the invoice amount"))
    if outcome is PayoutOutcome.NEEDS_PERSON:
        why = "moderation required" if invoice.moderation_required else f"resolution {invoice.resolution}"
        findings.append((NEEDS_PERSON, why))
    if not invoice.is_final and not unknown:
        updated = invoice.updated or invoice.created
        if updated is not None and as_of - updated > stuck_after:
            minutes = stuck_after.total_seconds() / 60
            findings.append((STUCK, f"{invoice.status.value} for more than {minutes:.0f} min"))
    return findings


@dataclass
class Reconciliation:
    """The outcome of one reconciliation pass."""

    findings: list[Finding]
    scanned: int
    by_status: dict[str, int]

    @property
    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(f.category for f in self.findings).items()))

    @property
    def needs_person(self) -> int:
        return sum(1 for f in self.findings if f.category in NEEDS_A_PERSON)


def reconcile(invoices: Iterable[PayoutInvoice], as_of: datetime, stuck_after: timedelta) -> Reconciliation:
    """Classify every invoice (each id once) and find references with more than one invoice."""
    seen: dict[str, PayoutInvoice] = {}
    for invoice in invoices:
        seen.setdefault(invoice.id, invoice)
    findings: list[Finding] = []
    by_reference: dict[str, list[PayoutInvoice]] = defaultdict(list)
    for invoice in seen.values():
        for category, detail in classify(invoice, as_of, stuck_after):
            findings.append(_finding(category, invoice, as_of, detail))
        if invoice.reference_id:
            by_reference[invoice.reference_id].append(invoice)
    for reference, group in by_reference.items():
        if len(group) > 1:
            ids = ", ".join(sorted(i.id for i in group))
            for invoice in group:
                findings.append(_finding(DUPLICATE, invoice, as_of, f"{reference} has invoices {ids}"))
    by_status = Counter(i.status.value for i in seen.values())
    return Reconciliation(findings=findings, scanned=len(seen), by_status=dict(sorted(by_status.items())))


def write_outputs(folder: Path | str, result: Reconciliation, meta: dict[str, Any]) -> dict[str, Any]:
    """Write reconciliation.csv and summary.json into ``folder``; return the summary."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, summary_path = folder / "reconciliation.csv", folder / "summary.json"

    def write_csv(handle: Any) -> None:
        writer = safe_writer(handle)  # cells neutralised for spreadsheets
        writer.writerow(CSV_COLUMNS)
        for finding in sorted(result.findings, key=lambda f: (f.category, f.reference_id, f.invoice_id)):
            values = asdict(finding)
            writer.writerow([values[c] for c in CSV_COLUMNS])

    atomic_write(csv_path, write_csv, newline="")
    summary = {
        **meta,
        "invoices_scanned": result.scanned,
        "by_status": result.by_status,
        "findings": result.counts,
        "needs_person": result.needs_person,
        "reconciliation_csv": str(csv_path),
        "summary_json": str(summary_path),
    }
    atomic_write(summary_path, lambda handle: json.dump(summary, handle, indent=2))
    return summary


def findings_table(summary: dict[str, Any]) -> str:
    """The summary as text for the task log."""
    lines = [
        f"Reconciliation {summary.get('window_start')} .. {summary.get('window_end')} "
        f"(as of {summary.get('as_of')}): {summary['invoices_scanned']} invoices",
        f"{'finding':<22} {'count':>7}",
    ]
    for category, count in summary["findings"].items():
        mark = "  <- needs a person" if category in NEEDS_A_PERSON else ""
        lines.append(f"{category:<22} {count:>7}{mark}")
    if not summary["findings"]:
        lines.append("(nothing to report)")
    lines.append(f"report: {summary['reconciliation_csv']}")
    return "\n".join(lines)


def in_window(invoice: PayoutInvoice, window_start: datetime, window_end: datetime) -> bool:
    """Whether the invoice was created in the window (checked here too, whatever the server did)."""
    created = invoice.created
    return created is None or window_start <= created < window_end


def run_reconciliation(
    hook: PayoutGateway,
    window_start: datetime,
    window_end: datetime,
    as_of: datetime,
    stuck_after: timedelta,
    folder: Path | str,
) -> dict[str, Any]:
    """Walk the invoice list for the window with the cursor, classify, write the files."""
    invoices = (
        invoice
        # the window's end is exclusive, the filter's bound inclusive (whole seconds)
        for invoice in hook.list_invoices(
            created_from=window_start, created_to=window_end - timedelta(seconds=1)
        )
        if in_window(invoice, window_start, window_end)
    )
    result = reconcile(invoices, as_of, stuck_after)
    meta = {
        "window_start": window_start.isoformat(),
        "window_end": window_end.isoformat(),
        "as_of": as_of.isoformat(),
        "stuck_after_minutes": stuck_after.total_seconds() / 60,
    }
    return write_outputs(folder, result, meta)


def reconciliation_task(
    params: Mapping[str, Any],
    interval_start: datetime | None,
    interval_end: datetime | None,
    hook: PayoutGateway,
) -> dict[str, Any]:
    """The reconcile task: window = the data interval, extended back by ``lookback_days`` (so that
    late reversals and long-stuck invoices of earlier days are seen again), and up to now with
    ``through_now`` (a manual run covering today so far); ages judged as of ``as_of`` (default:
    now). Writes ``<output_dir>/reconciliation/<day>/`` (``<day>_to_<now>`` with ``through_now``);
    ``output_dir`` must be inside ``PAYOUT_OUTPUT_DIRS`` (checked before anything is read)."""
    try:
        output_dir = settings.checked_output_dir(params.get("output_dir") or settings.reports_dir())
    except settings.PathNotAllowedError as exc:
        raise AirflowFailException(str(exc)) from None
    now = datetime.now(UTC)
    end = interval_end or now
    start = interval_start if interval_start and interval_start < end else end - timedelta(days=1)
    day = start.strftime("%Y-%m-%d")
    if params.get("through_now"):
        end = now.replace(microsecond=0) + timedelta(seconds=1)  # the window's end is exclusive
        day = f"{day}_to_{now:%Y-%m-%dT%H%M%SZ}"
    window_start = start - timedelta(days=int(params.get("lookback_days") or 0))
    as_of_text = (params.get("as_of") or "").strip()
    as_of = parse_timestamp(as_of_text) if as_of_text else now
    folder = output_dir / "reconciliation" / day
    summary = run_reconciliation(
        hook, window_start, end, as_of or now, timedelta(minutes=float(params["stuck_after_minutes"])), folder
    )
    log.info("\n%s", findings_table(summary))
    return summary


def verdict(summary: Mapping[str, Any]) -> None:
    """Fail (red, no retry) when something needs a person."""
    if summary["needs_person"]:
        needing = {k: v for k, v in summary["findings"].items() if k in NEEDS_A_PERSON}
        raise AirflowFailException(
            f"{summary['needs_person']} finding(s) need a person: {needing}. "
            f"See {summary['reconciliation_csv']}"
        )
