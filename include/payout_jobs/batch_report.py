"""The batch report: one line per input row (plus the batch's earlier payouts), a summary, the table.

``report.csv`` has ``row, reference_id, invoice_id, status, resolution, amount, processed_amount,
reason, currency, invoice_status, source, description, recipient, fee, writeoff, created,
processed`` (``reference_id`` is the gateway reference, ``<batch_id>:<row reference>``;
``invoice_status`` is the gateway status of the invoice(s) named; ``source`` is ``file`` for a row
of this run's file, ``earlier_run`` for a reference an earlier run of the batch paid that this
file does not hold). For a finance person:

- ``reason`` says in words why a payout failed or waits (``insufficient_funds`` -> "failed at the
  gateway: insufficient funds"), or why a row was rejected or refused (the gateway's own message);
- ``description`` is the row's description and ``recipient`` its payout fields with every value
  that holds a digit masked to its last four characters (``account ******3412``); both empty for
  a rejected row (nothing of it is echoed) and for an earlier run's payout;
- ``fee`` and ``writeoff`` are what the gateway charged and wrote off the balance for a final
  invoice (its ``processed_fee`` and ``processed_writeoff``: 0 for a failed one), empty while the
  invoice is not final;
- ``created`` and ``processed`` are the gateway's times in ISO-8601 UTC (``processed`` only once
  the payout was processed).

``summary.json`` has counts and totals per status (Decimal totals as strings, fee and write-off
included) and ``charges``: fee and write-off totals per currency. Each run's report is kept under
``runs/``; the batch folder's own ``report.csv`` is the latest view (see
:mod:`payout_jobs.batch_ledger`).

Row statuses besides the gateway's:

- ``rejected``: failed our checks, never sent;
- ``refused``: the gateway refused the create; nothing was made;
- ``conflict``: an invoice exists for the reference but is not ours to adopt (another payout under
  the same reference, or several invoices for it): it names the invoice(s) and their status, counts
  in the totals with the existing invoice's amount, and needs a person;
- ``not_sent``: the gateway answered that no invoice exists for it (e.g. its chunk did not run);
- ``not_approved``: the batch was not approved (rejected, no answer in time, an answer refused):
  nothing was sent for it (the reason says why);
- ``unknown``: the gateway could not be read for it (the payout may exist).

Nothing of a rejected cell is echoed unless it passed its grammar (:mod:`payout_jobs.report_cells`);
no fields (card or account numbers) appear anywhere; every CSV cell is neutralised for
spreadsheets (:mod:`payout_jobs.csv_safety`).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from payout_gateway.money import format_amount
from payout_gateway.statuses import PayoutOutcome, PayoutStatus, is_final, outcome, resolution_words

from payout_jobs.atomic_files import atomic_write
from payout_jobs.batch_file import BatchRow
from payout_jobs.batch_ledger import LedgerEntry
from payout_jobs.batch_requests import row_currency
from payout_jobs.csv_safety import safe_writer
from payout_jobs.report_cells import (
    currency_cell,
    invoice_id_cell,
    money,
    money_cell,
    recipient_cell,
    reference_cell,
    text_cell,
    time_cell,
    word_cell,
)

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
    "invoice_status",
    "source",
    "description",
    "recipient",
    "fee",
    "writeoff",
    "created",
    "processed",
)
#: The money columns summed per status and currency in summary.json.
MONEY_COLUMNS = ("amount", "processed_amount", "fee", "writeoff")
REJECTED, REFUSED, NOT_SENT = "rejected", "refused", "not_sent"
NOT_APPROVED = "not_approved"
CONFLICT, UNKNOWN = "conflict", "unknown"
FROM_FILE, FROM_EARLIER_RUN = "file", "earlier_run"
#: Outcomes that make the batch run fail (red) once the report is written.
FAILING_OUTCOMES = frozenset(
    {
        REJECTED,
        REFUSED,
        NOT_SENT,
        NOT_APPROVED,
        UNKNOWN,
        PayoutOutcome.FAILED.value,
        PayoutOutcome.NEEDS_PERSON.value,
        PayoutOutcome.PENDING.value,
    }
)
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.]{1,64}")


@dataclass(frozen=True)
class Unreadable:
    """A read of the gateway that failed; ``why`` is the error's class name (never its text)."""

    why: str


@dataclass(frozen=True)
class Conflict:
    """An invoice exists for a row's reference but is not ours to adopt (see ``chunks``)."""

    invoice_ids: tuple[str, ...]
    differences: tuple[str, ...] = ()
    duplicate: bool = False
    invoice_status: str | None = None
    invoice_resolution: str | None = None
    invoice_amount: str | None = None
    invoice_currency: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Conflict:
        """From the JSON form a chunk returns (unknown keys ignored)."""

        def text(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(
            invoice_ids=tuple(str(i) for i in data.get("invoice_ids") or ()),
            differences=tuple(str(d) for d in data.get("differences") or ()),
            duplicate=bool(data.get("duplicate")),
            invoice_status=text("invoice_status"),
            invoice_resolution=text("invoice_resolution"),
            invoice_amount=text("invoice_amount"),
            invoice_currency=text("invoice_currency"),
        )


#: A read invoice (``PayoutInvoice.summary()``) or why it could not be read.
InvoiceRead = Mapping[str, Any] | Unreadable
#: A lookup by reference: the invoice, none (the gateway answered absent), several, or a failure.
ReferenceRead = Mapping[str, Any] | Conflict | Unreadable | None


@dataclass
class ReportFacts:
    """What the report knows of the rows it did not reject: from the chunks and its own reads."""

    sent: Mapping[int, str] = field(default_factory=dict)  # row -> invoice id
    refused: Mapping[int, str] = field(default_factory=dict)  # row -> the gateway's reason
    conflicts: Mapping[int, Conflict] = field(default_factory=dict)  # row -> conflict
    invoices: Mapping[str, InvoiceRead] = field(default_factory=dict)  # invoice id -> read
    by_reference: Mapping[str, ReferenceRead] = field(default_factory=dict)  # reference -> lookup


@dataclass
class ReportLine:
    """One line of report.csv (plus the outcome, used for the verdict)."""

    row: int | None
    reference_id: str
    invoice_id: str
    status: str
    resolution: str
    amount: str
    processed_amount: str
    reason: str
    currency: str
    outcome: str
    invoice_status: str = ""
    source: str = FROM_FILE
    description: str = ""
    recipient: str = ""
    fee: str = ""
    writeoff: str = ""
    created: str = ""
    processed: str = ""

    @property
    def failing(self) -> bool:
        """Whether this line turns the run red. An earlier run's payout that failed for good was
        reported red by that run; it is listed, not counted again."""
        if self.source == FROM_EARLIER_RUN and self.outcome == PayoutOutcome.FAILED.value:
            return False
        return self.outcome in FAILING_OUTCOMES


def unreadable_reason(read: Unreadable) -> str:
    """The reason of an ``unknown`` line."""
    return f"the gateway could not be read ({read.why}); the payout may exist: check it before paying again"


def status_cell(value: Any) -> str:
    """A gateway status as one of the known status names (anything else is ``unknown``)."""
    return PayoutStatus(value).value if isinstance(value, str) and value else PayoutStatus.UNKNOWN.value


def gateway_reason(line_outcome: str, resolution: str, moderation: bool) -> str:
    """Why a payout failed or waits, in words (empty for a success or a plain wait)."""
    words = resolution_words(resolution) if resolution and resolution != "ok" else ""
    if line_outcome == PayoutOutcome.FAILED.value:
        return f"failed at the gateway: {words}" if words else "failed at the gateway"
    if line_outcome == PayoutOutcome.NEEDS_PERSON.value or moderation:
        return "moderation required" + (f": {words}" if words else "")
    return f"gateway says: {words}" if words else ""


def _invoice_line(
    row: int | None,
    reference: str,
    currency: str,
    fallback_amount: str,
    invoice: Mapping[str, Any],
    source: str = FROM_FILE,
    note: str = "",
) -> ReportLine:
    cur = currency_cell(invoice.get("currency")) or currency
    status = status_cell(invoice.get("status"))
    resolution = word_cell(invoice.get("resolution"))
    moderation = bool(invoice.get("moderation_required"))
    line_outcome = outcome(status, resolution or None, moderation).value
    reason = "; ".join(r for r in (note, gateway_reason(line_outcome, resolution, moderation)) if r)
    final = is_final(status)
    return ReportLine(
        row=row,
        reference_id=reference,
        invoice_id=invoice_id_cell(invoice.get("id")),
        status=status,
        resolution=resolution,
        amount=money_cell(invoice.get("amount"), cur) or fallback_amount,
        processed_amount=money_cell(invoice.get("processed_amount"), cur),
        reason=reason,
        currency=cur,
        outcome=line_outcome,
        invoice_status=status,
        source=source,
        fee=money_cell(invoice.get("processed_fee"), cur) if final else "",
        writeoff=money_cell(invoice.get("processed_writeoff"), cur) if final else "",
        created=time_cell(invoice.get("created")),
        processed=time_cell(invoice.get("processed")),
    )


def _plain_line(
    row: int | None,
    reference: str,
    status: str,
    amount: str,
    reason: str,
    currency: str,
    invoice_id: str = "",
    source: str = FROM_FILE,
) -> ReportLine:
    return ReportLine(
        row=row,
        reference_id=reference,
        invoice_id=invoice_id_cell(invoice_id),
        status=status,
        resolution="",
        amount=amount,
        processed_amount="",
        reason=text_cell(reason),
        currency=currency,
        outcome=status,
        source=source,
    )


def _conflict_line(
    row: int | None,
    reference: str,
    currency: str,
    conflict: Conflict,
    invoices: Mapping[str, InvoiceRead],
    source: str = FROM_FILE,
    note: str = "",
) -> ReportLine:
    """The line of a reference whose invoice(s) are not ours: the ids, their status and amounts."""
    ids = [i for i in (invoice_id_cell(i) for i in conflict.invoice_ids) if i]
    known: list[tuple[str, str, str, str, str]] = []  # id, status, resolution, amount, processed
    line_currency = ""
    for invoice_id in ids:
        read = invoices.get(invoice_id)
        if isinstance(read, Mapping):
            cur = currency_cell(read.get("currency"))
            status, resolution = status_cell(read.get("status")), word_cell(read.get("resolution"))
            amount, processed = read.get("amount"), read.get("processed_amount")
        elif len(ids) == 1:  # what the client's error said about it
            cur = currency_cell(conflict.invoice_currency)
            status = status_cell(conflict.invoice_status) if conflict.invoice_status else ""
            resolution, amount, processed = (
                word_cell(conflict.invoice_resolution),
                conflict.invoice_amount,
                None,
            )
        else:
            cur, status, resolution, amount, processed = "", "", "", None, None
        line_currency = line_currency or cur
        cur = cur or line_currency or currency
        known.append((invoice_id, status, resolution, money_cell(amount, cur), money_cell(processed, cur)))
    line_currency = line_currency or currency

    def total(index: int) -> str:
        values = [v for k in known if (v := money(k[index])) is not None]
        return (format_amount(sum(values, Decimal(0)), line_currency) or "") if values else ""

    described = ", ".join(f"{i} is {s or 'of unknown status'}" for i, s, *_ in known) or "an invoice"
    if conflict.duplicate:
        reason = (
            f"the gateway holds {len(ids)} invoices for this reference ({described}); "
            "nothing was sent: a person must reconcile them"
        )
    else:
        differences = ", ".join(d if _FIELD_NAME.fullmatch(d) else "?" for d in conflict.differences)
        reason = (
            f"an invoice exists for this reference but is another payout (differs in: "
            f"{differences or 'unknown'}): {described}; nothing was sent, it is not ours to adopt: "
            "a person must decide"
        )
    return ReportLine(
        row=row,
        reference_id=reference,
        invoice_id=";".join(ids),
        status=CONFLICT,
        resolution=known[0][2] if len(known) == 1 else "",
        amount=total(3),
        processed_amount=total(4),
        reason=text_cell(f"{note}; {reason}" if note else reason),
        currency=line_currency,
        outcome=PayoutOutcome.NEEDS_PERSON.value,
        invoice_status=";".join(s for _i, s, *_ in known),
        source=source,
    )


def _row_cells(row: BatchRow, batch_id: str, batch_currency: str) -> tuple[str, str, str]:
    """The row's reference, currency and amount, each only if it passed its grammar."""
    currency = currency_cell(row_currency(row, batch_currency))
    return reference_cell(batch_id, row.reference_id), currency, money_cell(row.service_amount, currency)


def references_to_look_up(
    rows: Iterable[BatchRow], batch_id: str, rejected: Mapping[int, str], facts: ReportFacts
) -> list[str]:
    """References of the rows no chunk reported (to be looked up on the gateway)."""
    return [
        reference
        for row in rows
        if row.row not in rejected
        and row.row not in facts.refused
        and row.row not in facts.conflicts
        and row.row not in facts.sent
        and (reference := reference_cell(batch_id, row.reference_id))
    ]


def build_lines(
    rows: Iterable[BatchRow],
    batch_id: str,
    batch_currency: str,
    rejected: Mapping[int, str],
    facts: ReportFacts,
    not_approved: str | None = None,
) -> list[ReportLine]:
    """One line per row of the file, from what the chunks, the sensors and the reads told.

    ``not_approved``: the reason the batch was not approved (its unsent rows say so), or None."""
    lines: list[ReportLine] = []
    for row in rows:
        number = row.row
        reference, currency, amount = _row_cells(row, batch_id, batch_currency)
        if number in rejected:
            lines.append(_plain_line(number, reference, REJECTED, amount, rejected[number], currency))
        elif number in facts.refused:
            lines.append(_plain_line(number, reference, REFUSED, amount, facts.refused[number], currency))
        elif number in facts.conflicts:
            lines.append(_conflict_line(number, reference, currency, facts.conflicts[number], facts.invoices))
        elif number in facts.sent:
            read = facts.invoices.get(facts.sent[number], Unreadable("not read"))
            if isinstance(read, Unreadable):
                reason = unreadable_reason(read)
                lines.append(
                    _plain_line(number, reference, UNKNOWN, amount, reason, currency, facts.sent[number])
                )
            else:
                lines.append(_invoice_line(number, reference, currency, amount, read))
        else:
            found = facts.by_reference.get(reference, Unreadable("not read"))
            if isinstance(found, Conflict):
                lines.append(_conflict_line(number, reference, currency, found, facts.invoices))
            elif isinstance(found, Unreadable):
                lines.append(
                    _plain_line(number, reference, UNKNOWN, amount, unreadable_reason(found), currency)
                )
            elif found is None and not_approved:
                lines.append(_plain_line(number, reference, NOT_APPROVED, amount, not_approved, currency))
            elif found is None:
                reason = "no invoice exists for this reference (its chunk did not send it)"
                lines.append(_plain_line(number, reference, NOT_SENT, amount, reason, currency))
            else:
                lines.append(_invoice_line(number, reference, currency, amount, found))
        if number not in rejected:  # nothing of a rejected row is echoed
            lines[-1].description = text_cell(row.description)
            lines[-1].recipient = recipient_cell(row.fields_data)
    return lines


def covered_references(lines: Iterable[ReportLine]) -> set[str]:
    """References whose line names an invoice (nothing earlier needs adding for them)."""
    return {line.reference_id for line in lines if line.reference_id and line.invoice_id}


def earlier_lines(
    ledger: Mapping[str, Sequence[LedgerEntry]],
    covered: set[str],
    invoices: Mapping[str, InvoiceRead],
) -> list[ReportLine]:
    """Lines for the references an earlier run paid that this run's lines do not name."""
    lines: list[ReportLine] = []
    for reference in sorted(set(ledger) - covered):
        entries = ledger[reference]
        runs = ", ".join(sorted({e.run_id for e in entries if e.run_id})) or "an earlier run"
        note = f"from an earlier run ({runs}); not in this file"
        if len(entries) > 1:
            conflict = Conflict(invoice_ids=tuple(e.invoice_id for e in entries), duplicate=True)
            lines.append(_conflict_line(None, reference, "", conflict, invoices, FROM_EARLIER_RUN, note))
            continue
        invoice_id = entries[0].invoice_id
        read = invoices.get(invoice_id, Unreadable("not read"))
        if isinstance(read, Mapping) and read.get("reference_id") not in (None, reference):
            read = Unreadable("the invoice belongs to another reference")
        if isinstance(read, Unreadable):
            reason = f"{note}; {unreadable_reason(read)}"
            lines.append(_plain_line(None, reference, UNKNOWN, "", reason, "", invoice_id, FROM_EARLIER_RUN))
        else:
            lines.append(_invoice_line(None, reference, "", "", read, FROM_EARLIER_RUN, text_cell(note)))
    return lines


def summarize(lines: Iterable[ReportLine]) -> dict[str, Any]:
    """Counts and totals per status (per valid currency), counts per outcome, failing rows."""
    counts: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    failing = 0
    totals: dict[str, dict[str, dict[str, Decimal]]] = defaultdict(
        lambda: defaultdict(lambda: dict.fromkeys(MONEY_COLUMNS, Decimal(0)))
    )
    charges: dict[str, dict[str, Decimal]] = defaultdict(lambda: {"fee": Decimal(0), "writeoff": Decimal(0)})
    for line in lines:
        counts[line.status] += 1
        outcomes[line.outcome] += 1
        sources[line.source] += 1
        failing += line.failing
        currency = currency_cell(line.currency)
        if not currency:
            continue  # no valid currency: no valid money to sum
        bucket = totals[line.status][currency]
        for key in MONEY_COLUMNS:
            value = money(money_cell(getattr(line, key), currency))
            if value is not None:
                bucket[key] += value
                if key in ("fee", "writeoff"):
                    charges[currency][key] += value
    return {
        "rows": sum(counts.values()),
        "rows_in_file": sources[FROM_FILE],
        "rows_from_earlier_runs": sources[FROM_EARLIER_RUN],
        "counts": dict(sorted(counts.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "totals": {
            status: {
                cur: {k: format_amount(v, cur) or "0" for k, v in sums.items()}
                for cur, sums in sorted(by_cur.items())
            }
            for status, by_cur in sorted(totals.items())
        },
        "charges": {
            cur: {k: format_amount(v, cur) or "0" for k, v in sums.items()}
            for cur, sums in sorted(charges.items())
        },
        "failing_rows": failing,
        "partial_rows": outcomes.get(PayoutOutcome.PARTIAL.value, 0),
    }


def write_report(folder: Path, lines: Sequence[ReportLine], meta: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``folder``/report.csv and summary.json (each atomically); return the summary."""
    report_csv, summary_json = folder / "report.csv", folder / "summary.json"

    def write_csv(handle: Any) -> None:
        writer = safe_writer(handle)
        writer.writerow(REPORT_COLUMNS)
        for line in lines:
            values = asdict(line)
            writer.writerow([values[c] for c in REPORT_COLUMNS])

    atomic_write(report_csv, write_csv, newline="")
    summary = {
        **meta,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **summarize(lines),
        "report_csv": str(report_csv),
        "summary_json": str(summary_json),
    }
    atomic_write(summary_json, lambda h: json.dump(summary, h, indent=2, sort_keys=False))
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
    for currency, charged in summary.get("charges", {}).items():
        out.append(f"charged {currency}: fee {charged['fee']}, written off {charged['writeoff']}")
    out.append(
        f"rows needing attention: {summary['failing_rows']}   partially processed: {summary['partial_rows']}"
    )
    if summary.get("rows_from_earlier_runs"):
        out.append(
            f"{summary['rows_from_earlier_runs']} row(s) from earlier runs of this batch (not in this file)"
        )
    decision = summary.get("approval")
    if decision:
        by = f" by {decision['by']}" if decision.get("by") else ""
        out.append(f"approval: {decision['status']}{by} ({decision['reason']})")
    out.append(f"report: {summary['report_csv']}")
    return "\n".join(out)
