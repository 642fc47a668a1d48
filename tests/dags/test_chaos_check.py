"""The chaos comparer counts what it must: a planted duplicate, a lost payout, a report that
disagrees with the gateway, a paid invalid row (so a green chaos line means something)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from chaos_batch import make_batch
from chaos_check import GatewaySnapshot, compare

BATCH_ID = "b1"


def consistent(batch: Any) -> tuple[GatewaySnapshot, list[dict[str, str]]]:
    """A gateway that paid every valid row once, and the report that says exactly that."""
    ledger, invoices, report = {}, {}, []
    for planned in batch.rows:
        reference = f"{BATCH_ID}:{planned.reference_id}"
        line = {"row": str(planned.row), "reference_id": reference, "invoice_id": "", "status": "rejected"}
        line["amount"] = ""
        if planned.valid:
            invoice_id = f"cpoi_{planned.row}"
            ledger[reference] = {"invoices": 1, "process_calls": 1, "invoice_ids": [invoice_id]}
            invoices[invoice_id] = {"id": invoice_id, "reference_id": reference, "status": "processed"}
            invoices[invoice_id]["amount"] = planned.amount
            line.update(invoice_id=invoice_id, status="processed", amount=planned.amount)
        report.append(line)
    return GatewaySnapshot(ledger=ledger, invoices=invoices), report


def test_a_consistent_gateway_and_report_give_a_clean_line() -> None:
    batch = make_batch(30)
    gateway, report = consistent(batch)

    verdict = compare(batch, BATCH_ID, gateway, report)

    assert verdict.line(7) == "chaos: 80 rows, 7 faults injected, 0 duplicates, 0 lost, 0 report mismatches"
    assert verdict.ok


def test_each_kind_of_failure_is_counted() -> None:
    batch = make_batch(30)
    gateway, report = consistent(batch)
    gateway, report = copy.deepcopy(gateway), copy.deepcopy(report)
    valid = [r for r in batch.rows if r.valid]
    invalid = next(r for r in batch.rows if r.kind == "unknown_service")
    first, second, third, fourth, fifth = (f"{BATCH_ID}:{r.reference_id}" for r in valid[:5])

    gateway.ledger[first]["invoices"] = 2  # paid twice
    gateway.ledger[second]["process_calls"] = 2  # processed twice
    del gateway.ledger[third]  # lost: no invoice ...
    gateway.ledger[fourth]["process_calls"] = 0  # ... never processed
    gateway.invoices[gateway.ledger[fifth]["invoice_ids"][0]]["status"] = "processing"  # not final
    report[valid[5].row - 1]["status"] = "process_failed"  # the report disagrees with the gateway
    report[valid[6].row - 1]["amount"] = "0.01"
    del report[valid[7].row - 1]  # a row missing from the report
    wrong = f"{BATCH_ID}:{invalid.reference_id}"
    gateway.ledger[wrong] = {"invoices": 1, "process_calls": 1, "invoice_ids": ["cpoi_bad"]}  # paid
    gateway.ledger[f"{BATCH_ID}:nobody"] = {"invoices": 1, "process_calls": 0, "invoice_ids": ["x"]}

    verdict = compare(batch, BATCH_ID, gateway, report)

    assert [f.row for f in verdict.duplicates] == sorted([valid[0].row, valid[1].row])
    assert sorted(f.row for f in verdict.lost) == sorted([valid[2].row, valid[3].row, valid[4].row])
    rows = {f.row for f in verdict.mismatches}
    assert {valid[5].row, valid[6].row, valid[7].row, invalid.row, None} <= rows
    assert len(verdict.mismatches) == 7  # and rows 3 and 5: their lines no longer match the gateway
    assert not verdict.ok
    assert "report status 'process_failed', gateway 'processed'" in "\n".join(verdict.details())


def test_no_report_is_a_mismatch_for_every_row() -> None:
    batch = make_batch(10)
    gateway, _ = consistent(batch)

    verdict = compare(batch, BATCH_ID, gateway, None)

    assert len(verdict.mismatches) == len(batch.rows) == 60
    assert not verdict.duplicates and not verdict.lost
