"""Issue 7 items 1 and 2 as a user meets them: a run must never be green on an invoice that is not its
payout (a test invoice for a live payout, another account with the same last digits)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def test_live_payout_by_reference_does_not_adopt_the_test_invoice(
    gateway_conn: Any, run_dag: Callable[..., Any]
) -> None:
    conf = {
        "service": "test_usd",
        "currency": "USD",
        "amount": "10.00",
        "fields": {"account": "4000100010"},
        "reference_id": "tm-1",
        "test_mode": True,
    }
    assert run_dag("payout_by_reference", conf).state == "success"
    ledger = gateway_conn.ledger()

    live = run_dag("payout_by_reference", {**conf, "test_mode": False})

    assert live.state == "failed"
    assert live.tasks["create_invoice"] == "failed"
    assert live.tasks["process_invoice"] == "upstream_failed"
    assert gateway_conn.ledger() == ledger  # nothing new was created or processed


def test_batch_rerun_with_another_account_of_the_same_tail_is_not_reported_paid(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    write_batch: Callable[..., Path],
    read_report: Callable[..., Any],
) -> None:
    rows = [
        {"service": "test_usd", "service_amount": "10.00", "fields_data": f"account:{a}", "reference_id": r}
        for a, r in (("4000100010", "row-a"), ("4000200020", "row-b"))
    ]
    batch = write_batch(tmp_path / "accounts.csv", rows)
    conf = {"batch_file": str(batch), "output_dir": str(tmp_path / "out")}
    when = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert run_dag("payout_batch", conf, logical_date=when).state == "success"
    ledger = gateway_conn.ledger()

    rows[0]["fields_data"] = "account:9999900010"  # same last 4 digits: masked alike by the gateway
    write_batch(batch, rows)
    rerun = run_dag("payout_batch", conf, logical_date=when)

    assert rerun.state == "failed"
    assert gateway_conn.ledger() == ledger
    folder = next(p for p in (tmp_path / "out").iterdir() if (p / "report.csv").exists())
    report, _ = read_report(folder)
    by_ref = {r["reference_id"].split(":", 1)[1]: r for r in report}
    assert by_ref["row-b"]["status"] == "processed"
    assert by_ref["row-a"]["status"] == "conflict"  # an invoice exists, not ours: a person decides
    paid_invoice = ledger["references"][by_ref["row-a"]["reference_id"]]["invoice_ids"]
    assert [by_ref["row-a"]["invoice_id"]] == paid_invoice
    assert "fingerprint" in by_ref["row-a"]["reason"]
    assert "9999900010" not in (folder / "report.csv").read_text()
