"""The batch report: one line per input row, a summary per status, and the verdict.

``<output_dir>/<batch_id>/report.csv`` has ``row, reference_id, invoice_id, status, resolution,
amount, processed_amount, reason, currency`` (rejected rows included; ``reference_id`` is the
gateway reference, ``<batch_id>:<row reference>``). ``summary.json`` has counts and totals per
status (Decimal totals as strings). No fields (card or account numbers) appear anywhere.

Row statuses besides the gateway's: ``rejected`` (failed our checks, never sent), ``refused``
(the gateway refused the create; nothing was made) and ``not_sent`` (no invoice exists for it,
e.g. its chunk task failed before sending).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from payout_gateway.money import format_amount
from payout_gateway.statuses import PayoutOutcome, outcome

from payout_jobs.batch_file import BatchRow, read_rows
from payout_jobs.batch_requests import row_currency
from payout_jobs.identity import item_reference

REPORT_COLUMNS = (
    "row",
    "reference_id",
    "invoice_id",
    "status",
    "resolution",
    "amount",
    "processed_amount",
    "reason",
    "currency",
)
REJECTED, REFUSED, NOT_SENT = "rejected", "refused", "not_sent"
#: Outcomes that make the batch run fail (red) once the report is written.
FAILING_OUTCOMES = frozenset(
    {
        REJECTED,
        REFUSED,
        NOT_SENT,
        PayoutOutcome.FAILED.value,
        PayoutOutcome.NEEDS_PERSON.value,
        PayoutOutcome.PENDING.value,
    }
)


@dataclass
class ReportLine:
    """One line of report.csv (plus the outcome, used for the verdict)."""

    row: int
    reference_id: str
    invoice_id: str
    status: str
    resolution: str
    amount: str
    processed_amount: str
    reason: str
    currency: str
    outcome: str


def _line_for_invoice(row: BatchRow, reference: str, currency: str, invoice: Mapping[str, Any]) -> ReportLine:
    return ReportLine(
        row=row.row,
        reference_id=reference,
        invoice_id=str(invoice.get("id") or ""),
        status=str(invoice.get("status") or ""),
        resolution=str(invoice.get("resolution") or ""),
        amount=str(invoice.get("amount") or row.service_amount),
        processed_amount=str(invoice.get("processed_amount") or ""),
        reason="moderation required" if invoice.get("moderation_required") else "",
        currency=str(invoice.get("currency") or currency),
        outcome=outcome(
            str(invoice.get("status") or "unknown"),
            invoice.get("resolution"),
            bool(invoice.get("moderation_required")),
        ).value,
    )


def build_lines(
    batch_file: Path | str,
    batch_id: str,
    batch_currency: str,
    rejected: Mapping[int, str],
    sent: Mapping[int, str],
    refused: Mapping[int, str],
    invoices: Mapping[str, Mapping[str, Any]],
    find_by_reference: Callable[[Iterable[str]], Mapping[str, Mapping[str, Any]]],
) -> list[ReportLine]:
    """One line per row of the file.

    ``sent`` maps row -> invoice id, ``invoices`` invoice id -> invoice summary (as
    ``PayoutInvoice.summary()``), ``refused`` row -> gateway reason. Valid rows with no known
    invoice are looked up by reference with ``find_by_reference`` (reference -> summary).
    """
    rows = list(read_rows(batch_file))
    unknown = [
        item_reference(batch_id, r.reference_id)
        for r in rows
        if r.row not in rejected and r.row not in refused and r.row not in sent
    ]
    found = find_by_reference(unknown) if unknown else {}
    lines: list[ReportLine] = []
    for row in rows:
        currency = row_currency(row, batch_currency)
        reference = item_reference(batch_id, row.reference_id) if row.reference_id else ""
        if row.row in rejected:
            lines.append(
                ReportLine(
                    row.row,
                    reference,
                    "",
                    REJECTED,
                    "",
                    row.service_amount,
                    "",
                    rejected[row.row],
                    currency,
                    REJECTED,
                )
            )
        elif row.row in refused:
            lines.append(
                ReportLine(
                    row.row,
                    reference,
                    "",
                    REFUSED,
                    "",
                    row.service_amount,
                    "",
                    refused[row.row],
                    currency,
                    REFUSED,
                )
            )
        elif row.row in sent and sent[row.row] in invoices:
            lines.append(_line_for_invoice(row, reference, currency, invoices[sent[row.row]]))
        elif reference in found:
            lines.append(_line_for_invoice(row, reference, currency, found[reference]))
        else:
            lines.append(
                ReportLine(
                    row.row,
                    reference,
                    sent.get(row.row, ""),
                    NOT_SENT,
                    "",
                    row.service_amount,
                    "",
                    "no invoice exists for this reference (its chunk did not run)",
                    currency,
                    NOT_SENT,
                )
            )
    return lines


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def summarize(lines: Iterable[ReportLine]) -> dict[str, Any]:
    """Counts and totals per status (per currency), and counts per outcome."""
    counts: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    totals: dict[str, dict[str, dict[str, Decimal]]] = defaultdict(
        lambda: defaultdict(lambda: {"amount": Decimal(0), "processed_amount": Decimal(0)})
    )
    for line in lines:
        counts[line.status] += 1
        outcomes[line.outcome] += 1
        bucket = totals[line.status][line.currency]
        for key in ("amount", "processed_amount"):
            value = _decimal(getattr(line, key))
            if value is not None:
                bucket[key] += value
    return {
        "rows": sum(counts.values()),
        "counts": dict(sorted(counts.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "totals": {
            status: {
                cur: {k: format_amount(v, cur) or "0" for k, v in sums.items()}
                for cur, sums in sorted(by_cur.items())
            }
            for status, by_cur in sorted(totals.items())
        },
        "failing_rows": sum(n for outcome, n in outcomes.items() if outcome in FAILING_OUTCOMES),
        "partial_rows": outcomes.get(PayoutOutcome.PARTIAL.value, 0),
    }


def _atomic_write(path: Path, write: Callable[[Any], None], newline: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed into place below
        "w", dir=path.parent, prefix=f".{path.name}.", delete=False, encoding="utf-8", newline=newline
    )
    try:
        with handle:
            write(handle)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def write_report(
    output_dir: Path | str, batch_id: str, lines: list[ReportLine], meta: Mapping[str, Any]
) -> dict[str, Any]:
    """Write report.csv and summary.json (atomically: a rerun replaces them); return the summary."""
    folder = Path(output_dir) / batch_id
    report_csv, summary_json = folder / "report.csv", folder / "summary.json"

    def write_csv(handle: Any) -> None:
        writer = csv.writer(handle)
        writer.writerow(REPORT_COLUMNS)
        for line in lines:
            values = asdict(line)
            writer.writerow([values[c] for c in REPORT_COLUMNS])

    _atomic_write(report_csv, write_csv, newline="")
    summary = {
        "batch_id": batch_id,
        **meta,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **summarize(lines),
        "report_csv": str(report_csv),
        "summary_json": str(summary_json),
    }
    _atomic_write(summary_json, lambda h: json.dump(summary, h, indent=2, sort_keys=False))
    return summary


def summary_table(summary: Mapping[str, Any]) -> str:
    """The summary as a fixed-width text table for the task log."""
    header = f"{'status':<22} {'rows':>7}  {'currency':<8} {'amount':>16} {'processed':>16}"
    out = [f"Batch {summary['batch_id']}: {summary['rows']} rows", header, "-" * len(header)]
    for status, count in summary["counts"].items():
        by_currency = summary["totals"].get(status) or {"": {"amount": "", "processed_amount": ""}}
        for i, (currency, sums) in enumerate(by_currency.items()):
            shown = str(count) if i == 0 else ""
            name = status if i == 0 else ""
            out.append(
                f"{name:<22} {shown:>7}  {currency:<8} {sums['amount']:>16} {sums['processed_amount']:>16}"
            )
    out.append("-" * len(header))
    out.append(
        f"rows needing attention: {summary['failing_rows']}   partially processed: {summary['partial_rows']}"
    )
    out.append(f"report: {summary['report_csv']}")
    return "\n".join(out)
