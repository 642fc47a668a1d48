"""After a chaos run: read the gateway, compare it with the batch and with ``report.csv``.

The gateway is the truth (``GET /_sandbox/ledger`` and every invoice of ``GET /api/payout-invoices``,
read with a plain HTTP client, faults off). For a batch written by :mod:`chaos_batch`:

- **duplicates**: a reference of the batch with more than one invoice or more than one processing;
- **lost**: a valid row with no invoice, an invoice never processed, or none in a final status;
- **report mismatches**: a row whose ``report.csv`` line does not equal the gateway (status,
  invoice id, amount, reference), is missing or listed twice; a valid row paid another amount than
  the file's; an invalid row that is not reported ``rejected`` or has an invoice; a reference of the
  batch that no row of the file can have. Without a report every row is a mismatch.

Findings name rows and valid references only, never a cell of an invalid row (it may be a card
number). Needs ``httpx``.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
from chaos_batch import ChaosBatch, PlannedRow

#: Final statuses of the gateway (FACTS.md); anything else is still moving or unknown.
FINAL_STATUSES = frozenset(
    {
        "processed",
        "partially_processed",
        "process_failed",
        "expired",
        "terminated",
        "canceled",
        "partially_canceled",
        "cancel_failed",
    }
)
REJECTED = "rejected"
SHOWN_PER_CATEGORY = 15


@dataclass
class GatewaySnapshot:
    """What the gateway holds: the ledger (reference -> counts) and every invoice (id -> attributes)."""

    ledger: dict[str, dict[str, Any]]
    invoices: dict[str, dict[str, Any]]

    def invoice_ids(self, reference: str) -> list[str]:
        return list((self.ledger.get(reference) or {}).get("invoice_ids", []))

    def non_final(self, prefix: str) -> list[str]:
        """Invoice ids under ``prefix`` whose status is not final."""
        return [
            i
            for i, a in self.invoices.items()
            if str(a.get("reference_id", "")).startswith(prefix) and a.get("status") not in FINAL_STATUSES
        ]


def read_gateway(base_url: str, auth: tuple[str, str], timeout: float = 60) -> GatewaySnapshot:
    """The ledger and every invoice (the cursor list walked to its end), faults must be off."""
    with httpx.Client(base_url=base_url, auth=auth, timeout=timeout) as client:
        ledger = client.get("/_sandbox/ledger")
        ledger.raise_for_status()
        invoices: dict[str, dict[str, Any]] = {}
        link: str | None = "/api/payout-invoices?page[size]=100"
        while link:
            page = client.get(link)
            page.raise_for_status()
            body = page.json()
            for item in body["data"]:
                invoices[item["id"]] = {"id": item["id"], **item["attributes"]}
            link = (body.get("links") or {}).get("next") or None
    return GatewaySnapshot(ledger=ledger.json()["references"], invoices=invoices)


def read_report(path: Path) -> list[dict[str, str]] | None:
    """The lines of ``report.csv``, or None when there is no report."""
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@dataclass(frozen=True)
class Finding:
    """One problem: its category, the row (if any), and a value-free detail."""

    category: str
    row: int | None
    detail: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "gateway"
        return f"{self.category}: {where}: {self.detail}"


@dataclass
class ChaosVerdict:
    """The outcome of a chaos run's checks."""

    rows: int
    duplicates: list[Finding] = field(default_factory=list)
    lost: list[Finding] = field(default_factory=list)
    mismatches: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.lost or self.mismatches)

    def line(self, faults: int) -> str:
        """The one line a chaos run ends with."""
        return (
            f"chaos: {self.rows} rows, {faults} faults injected, {len(self.duplicates)} duplicates, "
            f"{len(self.lost)} lost, {len(self.mismatches)} report mismatches"
        )

    def details(self, limit: int = SHOWN_PER_CATEGORY) -> list[str]:
        """The first findings of each category, then how many more there are."""
        out: list[str] = []
        for findings in (self.duplicates, self.lost, self.mismatches):
            out.extend(str(f) for f in findings[:limit])
            if len(findings) > limit:
                out.append(f"... and {len(findings) - limit} more {findings[0].category} finding(s)")
        return out


def _decimal(text: Any) -> Decimal | None:
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None


def _valid_line_problem(
    planned: PlannedRow, reference: str, line: Mapping[str, str], gateway: GatewaySnapshot
) -> str | None:
    ids = gateway.invoice_ids(reference)
    reported_id = line.get("invoice_id") or ""
    if line.get("reference_id") != reference:
        return "report names another reference"
    if not ids:
        return (
            f"report says {line.get('status')!r} with invoice {reported_id!r}, gateway has none"
            if (reported_id)
            else None
        )
    if reported_id not in ids:
        return f"report invoice {reported_id!r} is not the gateway's ({', '.join(ids)})"
    invoice = gateway.invoices.get(reported_id)
    if invoice is None:
        return f"invoice {reported_id} is in the ledger but not in the invoice list"
    if line.get("status") != invoice.get("status"):
        return f"report status {line.get('status')!r}, gateway {invoice.get('status')!r}"
    if _decimal(line.get("amount")) != _decimal(invoice.get("amount")):
        return f"report amount {line.get('amount')!r}, gateway {invoice.get('amount')}"
    if _decimal(invoice.get("amount")) != _decimal(planned.amount):
        return f"gateway amount {invoice.get('amount')} differs from the file's {planned.amount}"
    return None


def _invalid_line_problem(planned: PlannedRow, line: Mapping[str, str]) -> str | None:
    if line.get("status") != REJECTED:
        return f"invalid row ({planned.kind}) reported {line.get('status')!r}, not rejected"
    if line.get("invoice_id"):
        return f"invalid row ({planned.kind}) reported with an invoice id"
    return None


def _lines_by_row(report: Iterable[Mapping[str, str]]) -> tuple[dict[int, list[Mapping[str, str]]], int]:
    by_row: dict[int, list[Mapping[str, str]]] = defaultdict(list)
    unreadable = 0
    for line in report:
        try:
            by_row[int(line.get("row") or "")].append(line)
        except ValueError:
            unreadable += 1
    return by_row, unreadable


def compare(
    batch: ChaosBatch, batch_id: str, gateway: GatewaySnapshot, report: list[dict[str, str]] | None
) -> ChaosVerdict:
    """Check the gateway against the batch, and the report against the gateway (see the module)."""
    prefix = f"{batch_id}:"
    verdict = ChaosVerdict(rows=len(batch.rows))
    valid = batch.valid_references(batch_id)
    ours = {ref: entry for ref, entry in gateway.ledger.items() if ref.startswith(prefix)}

    for reference, entry in sorted(ours.items()):
        if entry["invoices"] > 1 or entry["process_calls"] > 1:
            row = valid[reference].row if reference in valid else None
            verdict.duplicates.append(
                Finding(
                    "duplicate", row, f"{entry['invoices']} invoices, {entry['process_calls']} processings"
                )
            )
    for reference, planned in valid.items():
        entry = ours.get(reference)
        if not entry:
            verdict.lost.append(Finding("lost", planned.row, "no invoice at the gateway"))
        elif entry["process_calls"] == 0:
            verdict.lost.append(Finding("lost", planned.row, "invoice never processed"))
        else:
            statuses = [gateway.invoices.get(i, {}).get("status") for i in entry["invoice_ids"]]
            if not any(s in FINAL_STATUSES for s in statuses):
                verdict.lost.append(
                    Finding("lost", planned.row, f"not final ({', '.join(map(str, statuses))})")
                )

    by_row, unreadable = _lines_by_row(report or [])
    invalid_references = {f"{prefix}{r.reference_id}" for r in batch.rows if not r.valid and r.reference_id}
    for planned in batch.rows:
        reference = f"{prefix}{planned.reference_id}"
        lines = by_row.pop(planned.row, [])
        if report is None:
            problem: str | None = "no report.csv"
        elif len(lines) != 1:
            problem = "missing from the report" if not lines else f"listed {len(lines)} times"
        elif planned.valid:
            problem = _valid_line_problem(planned, reference, lines[0], gateway)
        else:
            problem = _invalid_line_problem(planned, lines[0])
        if not planned.valid and planned.reference_id and reference in ours and reference not in valid:
            problem = f"invalid row ({planned.kind}) has an invoice at the gateway"
        if problem:
            verdict.mismatches.append(Finding("mismatch", planned.row, problem))
    for number in sorted(by_row):
        verdict.mismatches.append(Finding("mismatch", number, "report line for a row the file does not have"))
    if unreadable:
        verdict.mismatches.append(
            Finding("mismatch", None, f"{unreadable} report line(s) without a row number")
        )
    strangers = set(ours) - set(valid) - invalid_references
    verdict.mismatches += [
        Finding("mismatch", None, "an invoice under the batch for no row of the file") for _ in strangers
    ]
    return verdict
