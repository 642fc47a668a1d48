"""``payout_batch`` end to end: real Airflow (``dag.test()``) against the real sandbox."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

DAG_ID = "payout_batch"
SAMPLES = Path(__file__).resolve().parents[2] / "include" / "samples"


def batch_folder(output_dir: Path) -> Path:
    folders = [p for p in output_dir.iterdir() if (p / "report.csv").exists()]
    assert len(folders) == 1, folders
    return folders[0]


def gateway_time(text: str) -> datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_demo_sample_pays_every_row(
    gateway_conn: Any, run_dag: Callable[..., Any], tmp_path: Path, read_report: Callable[..., Any]
) -> None:
    started = datetime.now(UTC).replace(microsecond=0)
    result = run_dag(DAG_ID, {"batch_file": str(SAMPLES / "batch_demo.csv"), "output_dir": str(tmp_path)})

    assert result.state == "success"
    rows, summary = read_report(batch_folder(tmp_path))
    assert [r["status"] for r in rows] == ["processed"] * 6
    assert summary["counts"] == {"processed": 6}
    # card: 1.5 % + 0.30 (120.00 -> 2.10, 49.99 -> 1.05); test_usd: no fee
    assert summary["totals"]["processed"]["USD"] == {
        "amount": "1712.74",
        "processed_amount": "1712.74",
        "fee": "3.15",
        "writeoff": "1715.89",
    }
    assert summary["charges"] == {"USD": {"fee": "3.15", "writeoff": "1715.89"}}
    by_ref = {r["reference_id"].split(":", 1)[1]: r for r in rows}
    card = by_ref["pay-0003"]
    assert (card["fee"], card["writeoff"]) == ("2.10", "122.10")
    assert (by_ref["pay-0001"]["fee"], by_ref["pay-0001"]["writeoff"]) == ("0.00", "10.00")
    assert card["description"] == "Card payout" and by_ref["pay-0004"]["description"] == ""
    assert card["recipient"] == "card_number ******0000; card_holder ANN LEE"
    assert by_ref["pay-0001"]["recipient"] == "account ******3401"
    for row in rows:
        assert started <= gateway_time(row["created"]) <= gateway_time(row["processed"]) <= datetime.now(UTC)
        assert row["reason"] == ""
    ledger = gateway_conn.ledger()["references"]
    assert {r["reference_id"] for r in rows} == set(ledger)
    assert all(e["invoices"] == 1 and e["process_calls"] == 1 for e in ledger.values())


def test_bad_rows_are_rejected_reported_and_never_sent(
    gateway_conn: Any, run_dag: Callable[..., Any], tmp_path: Path, read_report: Callable[..., Any]
) -> None:
    conf = {
        "batch_file": str(SAMPLES / "batch_with_bad_rows.csv"),
        "output_dir": str(tmp_path),
        "chunk_size": 2,
    }
    result = run_dag(DAG_ID, conf)

    assert result.state == "failed"  # red: rows were rejected and one payout failed
    assert result.tasks["report"] == "success" and result.tasks["verdict"] == "failed"
    rows, summary = read_report(batch_folder(tmp_path))
    assert [int(r["row"]) for r in rows] == list(range(1, 13))  # one line per input row
    by_ref = {r["reference_id"].split(":", 1)[1]: r for r in rows}
    rejected = {ref for ref, r in by_ref.items() if r["status"] == "rejected"}
    assert rejected == {
        "bad-service",
        "bad-missing-field",
        "bad-regexp",
        "bad-limit",
        "bad-decimals",
        "dup-ref",
        "bad-negative",
        "bad-currency",
    }
    assert sum(r["status"] == "rejected" for r in rows) == 9  # both rows of the duplicate reference
    reasons = {ref: by_ref[ref]["reason"] for ref in rejected}
    assert reasons["bad-service"].startswith("service:")
    assert reasons["bad-missing-field"] == "fields.account: is required"
    assert reasons["bad-regexp"].startswith("fields.account: does not match")
    assert "maximum" in reasons["bad-limit"] and reasons["bad-decimals"].startswith("service_amount:")
    assert "also used by row" in reasons["dup-ref"]
    assert by_ref["ok-0001"]["status"] == by_ref["ok-0010"]["status"] == "processed"
    declined = by_ref["fails-at-gateway"]
    assert declined["status"] == "process_failed"
    assert declined["resolution"] == "insufficient_funds"
    assert declined["reason"] == "failed at the gateway: insufficient funds"
    assert (declined["fee"], declined["writeoff"], declined["processed"]) == ("0.00", "0.00", "")
    assert declined["description"] == "declined by the gateway" and declined["created"]
    assert declined["recipient"].startswith("account ******3409; ")
    assert (by_ref["ok-0010"]["fee"], by_ref["ok-0010"]["writeoff"]) == ("0.60", "20.60")
    for ref in rejected:  # nothing of a rejected row is echoed, not even masked
        assert by_ref[ref]["recipient"] == by_ref[ref]["description"] == by_ref[ref]["fee"] == ""
    assert summary["charges"] == {"USD": {"fee": "0.60", "writeoff": "30.60"}}
    assert summary["counts"] == {"process_failed": 1, "processed": 2, "rejected": 9}
    assert summary["failing_rows"] == 10

    sent = set(gateway_conn.ledger()["references"])
    assert sent == {r["reference_id"] for r in rows if r["status"] != "rejected"}
    assert not any(ref.endswith(tuple(rejected)) for ref in sent)
    report_text = (batch_folder(tmp_path) / "report.csv").read_text()
    assert "5123817234060000" not in report_text and "4000123401" not in report_text


def test_rerun_of_the_same_batch_run_creates_no_new_invoices(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    write_batch: Callable[..., Path],
    read_report: Callable[..., Any],
    valid_rows: Callable[..., list[dict[str, str]]],
) -> None:
    """25 rows in chunks of 10 (3 mapped chunk groups, not 25 tasks); the same run again sends nothing."""
    batch = write_batch(tmp_path / "payroll.csv", valid_rows(25))
    conf = {"batch_file": str(batch), "output_dir": str(tmp_path / "out"), "chunk_size": 10}
    when = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

    first = run_dag(DAG_ID, conf, logical_date=when)
    ledger = gateway_conn.ledger()
    second = run_dag(DAG_ID, conf, logical_date=when)

    assert first.state == second.state == "success"
    assert first.mapped("chunk.execute") == ["success"] * 3
    assert first.mapped("chunk.wait") == ["success"] * 3
    assert len(ledger["references"]) == 25
    assert all(e["invoices"] == 1 and e["process_calls"] == 1 for e in ledger["references"].values())
    assert gateway_conn.ledger() == ledger  # the rerun re-attached to every invoice
    rows, _ = read_report(batch_folder(tmp_path / "out"))
    assert len(rows) == 25 and {r["status"] for r in rows} == {"processed"}


def test_drop_folder_file_is_paid_once_whichever_run_sees_it(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    write_batch: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    valid_rows: Callable[..., list[dict[str, str]]],
) -> None:
    drop = tmp_path / "incoming"
    drop.mkdir()
    monkeypatch.setenv("PAYOUT_BATCH_DROP_DIR", str(drop))
    source = write_batch(tmp_path / "payroll-june.csv", valid_rows(3, prefix="june"))
    conf = {"output_dir": str(tmp_path / "out")}

    shutil.copy(source, drop / source.name)
    first = run_dag(DAG_ID, conf)
    assert first.state == "success"
    assert not (drop / source.name).exists()
    assert [p.suffix for p in (drop / "processed").iterdir()] == [".csv"]
    ledger = gateway_conn.ledger()
    assert len(ledger["references"]) == 3

    shutil.copy(source, drop / source.name)  # the same file dropped again (or never moved away)
    second = run_dag(DAG_ID, conf)
    assert second.state == "success"
    assert gateway_conn.ledger() == ledger

    empty = run_dag(DAG_ID, conf)  # nothing waiting: the run has nothing to do
    assert empty.state == "success"
    assert empty.tasks["report"] == "skipped" and empty.tasks["verdict"] == "skipped"


def test_gateway_faults_during_a_batch_never_pay_twice(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    write_batch: Callable[..., Path],
    read_report: Callable[..., Any],
    valid_rows: Callable[..., list[dict[str, str]]],
) -> None:
    """Creates and processes whose answers are lost (the work done, then a 5xx or a dropped
    connection) are resolved by reading the gateway: every row ends with one invoice, processed once."""
    gateway_conn.set_faults(
        [
            {"endpoint": "create_invoice", "kind": "error_after_commit", "rate": 0.3, "status": 502},
            {"endpoint": "process_invoice", "kind": "reset", "rate": 0.3},
        ],
        seed=11,
    )
    batch = write_batch(tmp_path / "flaky.csv", valid_rows(20, prefix="flaky"))

    result = run_dag(
        DAG_ID, {"batch_file": str(batch), "output_dir": str(tmp_path / "out"), "chunk_size": 10}
    )

    gateway_conn.clear_faults()
    assert result.state == "success"
    rows, summary = read_report(batch_folder(tmp_path / "out"))
    assert summary["counts"] == {"processed": 20}
    assert {r["reference_id"] for r in rows} == set(gateway_conn.ledger()["references"])
    ledger = gateway_conn.ledger()["references"]
    assert len(ledger) == 20
    assert {(e["invoices"], e["process_calls"]) for e in ledger.values()} == {(1, 1)}


def test_fixing_rejected_rows_and_rerunning_pays_only_what_was_not_paid(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    write_batch: Callable[..., Path],
    read_report: Callable[..., Any],
    valid_rows: Callable[..., list[dict[str, str]]],
) -> None:
    rows = valid_rows(4, prefix="fix")
    rows[2]["fields_data"] = "account:12AB"  # rejected: fails the service's regexp
    batch = write_batch(tmp_path / "june.csv", rows)
    conf = {"batch_file": str(batch), "output_dir": str(tmp_path / "out")}
    when = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)

    first = run_dag(DAG_ID, conf, logical_date=when)
    assert first.state == "failed"
    paid_first = gateway_conn.ledger()["references"]
    assert len(paid_first) == 3

    rows[2]["fields_data"] = "account:4000999999"  # fixed
    rows[3]["service_amount"] = "99.00"  # a paid row changed afterwards: must not be paid again
    write_batch(batch, rows)
    second = run_dag(DAG_ID, conf, logical_date=when)  # the same run again

    assert second.state == "failed"  # red: the changed row's reference holds another payout
    ledger = gateway_conn.ledger()["references"]
    assert len(ledger) == 4
    assert {(e["invoices"], e["process_calls"]) for e in ledger.values()} == {(1, 1)}
    for reference, entry in paid_first.items():
        assert ledger[reference] == entry
    report, summary = read_report(batch_folder(tmp_path / "out"))
    by_ref = {r["reference_id"].split(":", 1)[1]: r for r in report}
    assert by_ref["fix-0002"]["status"] == "processed"
    assert by_ref["fix-0003"]["status"] == "conflict"  # an invoice exists: not "nothing was sent"
    assert by_ref["fix-0003"]["invoice_id"] and "amount" in by_ref["fix-0003"]["reason"]
    assert summary["counts"] == {"conflict": 1, "processed": 3}


def test_single_row_batch_is_one_chunk_and_one_payout(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    write_batch: Callable[..., Path],
    read_report: Callable[..., Any],
    valid_rows: Callable[..., list[dict[str, str]]],
) -> None:
    batch = write_batch(tmp_path / "one.csv", valid_rows(1, prefix="solo"))

    result = run_dag(DAG_ID, {"batch_file": str(batch), "output_dir": str(tmp_path / "out")})

    assert result.state == "success"
    rows, summary = read_report(batch_folder(tmp_path / "out"))
    assert [(r["row"], r["status"], r["amount"]) for r in rows] == [("1", "processed", "1.00")]
    assert summary["counts"] == {"processed": 1}
    ledger = gateway_conn.ledger()["references"]
    assert list(ledger) == [rows[0]["reference_id"]]
    assert ledger[rows[0]["reference_id"]]["invoices"] == 1
    assert ledger[rows[0]["reference_id"]]["process_calls"] == 1
