"""The batch report tells the truth and leaks nothing: real ``dag.test()`` runs against the sandbox.

- a rejected cell is echoed only if it passed its grammar (no card number, no formula anywhere);
- every CSV cell is safe to open in a spreadsheet;
- a failed read of the gateway is an ``unknown`` row, the report is still written, the run is red;
- a rerun never replaces a report with one that knows less (runs kept, latest view from the ledger);
- an invoice that holds a row's reference but is not ours is a ``conflict`` naming it.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from payout_gateway.hooks import PayoutGatewayHook
from payout_jobs.batch_job import BatchInfo, make_report, verdict
from payout_jobs.csv_safety import needs_neutralising
from sqlalchemy import select

DAG_ID = "payout_batch"
CARD = "4111111111111111"
FAST_READS = {"max_retries": 2, "retry_delay": 0.01, "retry_max_wait": 0.05, "timeout": 5}
READ_FAULTS = [  # every read of an invoice fails: 429s and 503s
    {"endpoint": "get_invoice", "kind": "rate_limit", "rate": 0.5, "seconds": 0},
    {"endpoint": "get_invoice", "kind": "error_before", "rate": 1.0, "status": 503},
    {"endpoint": "list_invoices", "kind": "rate_limit", "rate": 0.5, "seconds": 0},
    {"endpoint": "list_invoices", "kind": "error_before", "rate": 1.0, "status": 503},
]


def raw_cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def stored_run_texts(dag_id: str, run_id: str) -> str:
    """Every XCom value and rendered template field of a run, as text."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        xcoms = session.scalars(
            select(XComModel.value).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
        ).all()
        rendered = session.scalars(
            select(RenderedTaskInstanceFields.rendered_fields).where(
                RenderedTaskInstanceFields.dag_id == dag_id, RenderedTaskInstanceFields.run_id == run_id
            )
        ).all()
    return "\n".join(json.dumps(v, default=str) for v in [*xcoms, *rendered])


def test_rejected_cells_are_echoed_only_when_valid_and_every_cell_is_spreadsheet_safe(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    write_batch: Callable[..., Path],
    read_report: Callable[..., Any],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    valid_rows: Callable[..., list[dict[str, str]]],
) -> None:
    caplog.set_level(logging.INFO)
    hostile = [
        {**valid_rows(1, "shift")[0], "service_amount": CARD},  # a shifted row: the card in the amount
        {**valid_rows(1, "fx")[0], "service_amount": '=HYPERLINK("http://evil.example","x")'},
        {**valid_rows(1, "cur")[0], "currency": "=CMD|' /C CALC'!A0"},
        {**valid_rows(1, "")[0], "reference_id": "@SUM(1+1)*cmd|' /C calc'!A0"},
        {**valid_rows(1, "regexp")[0], "service_amount": "12.34", "fields_data": "account:12AB"},
    ]
    batch = write_batch(tmp_path / "hostile.csv", [*valid_rows(2, "ok"), *hostile])
    out = tmp_path / "out"
    # A valid batch id may start with '-': its references are echoed, and must be neutralised.
    result = run_dag(DAG_ID, {"batch_file": str(batch), "output_dir": str(out), "batch_id": "-leak"})

    assert result.state == "failed" and result.tasks["report"] == "success"
    folder = out / "-leak"
    rows, summary = read_report(folder)
    by_row = {int(r["row"]): r for r in rows}
    assert [by_row[n]["status"] for n in (1, 2)] == ["processed", "processed"]
    assert by_row[1]["reference_id"] == "'-leak:ok-0000"  # neutralised for spreadsheets
    assert {by_row[n]["status"] for n in range(3, 8)} == {"rejected"}
    assert by_row[3]["amount"] == "" and by_row[3]["currency"] == "USD"  # the card: not echoed
    assert by_row[4]["amount"] == ""  # a formula: not money
    assert by_row[5]["currency"] == "" and by_row[5]["amount"] == ""  # not a currency code
    assert by_row[6]["reference_id"] == ""  # not a row reference
    assert by_row[7]["amount"] == "12.34" and by_row[6]["amount"] == "1.00"  # valid money is shown
    rejected_total = {"amount": "13.34", "processed_amount": "0.00", "fee": "0.00", "writeoff": "0.00"}
    assert summary["totals"]["rejected"] == {"USD": rejected_total}
    assert {cur for by_cur in summary["totals"].values() for cur in by_cur} == {"USD"}

    for path in (folder / "report.csv", *folder.glob("runs/*/report.csv")):
        for cells in raw_cells(path):
            assert not any(needs_neutralising(c) for c in cells), cells
    texts = {
        "report.csv": (folder / "report.csv").read_text(),
        "summary.json": (folder / "summary.json").read_text(),
        "run report": "".join(p.read_text() for p in folder.glob("runs/*/*")),
        "XComs and rendered fields": stored_run_texts(DAG_ID, result.run_id),
        "task logs": "\n".join([*capfd.readouterr(), caplog.text]),
    }
    assert "Batch -leak: 7 rows" in texts["task logs"]  # the logs were captured
    for where, text in texts.items():
        for raw in (CARD, "HYPERLINK", "CMD|", "cmd|", "SUM("):
            assert raw not in text, f"{raw!r} echoed in {where}"


def test_a_header_only_rerun_keeps_what_the_batch_paid(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    write_batch: Callable[..., Path],
    read_report: Callable[..., Any],
    valid_rows: Callable[..., list[dict[str, str]]],
) -> None:
    out = tmp_path / "out"
    paid = write_batch(tmp_path / "payroll.csv", valid_rows(20, "keep"))
    first = run_dag(
        DAG_ID,
        {"batch_file": str(paid), "output_dir": str(out), "batch_id": "keep-20"},
        logical_date=datetime(2026, 7, 1, 9, tzinfo=UTC),
    )
    assert first.state == "success"
    folder = out / "keep-20"
    before, first_summary = read_report(folder)
    ledger = gateway_conn.ledger()

    empty = write_batch(tmp_path / "empty.csv", [])
    second = run_dag(
        DAG_ID,
        {"batch_file": str(empty), "output_dir": str(out), "batch_id": "keep-20"},
        logical_date=datetime(2026, 7, 2, 9, tzinfo=UTC),
    )

    assert gateway_conn.ledger() == ledger  # nothing was sent
    latest, summary = read_report(folder)
    assert summary["rows"] == 20 and summary["rows_in_file"] == 0  # not a green 0-row report
    assert summary["rows_from_earlier_runs"] == 20
    assert summary["counts"] == {"processed": 20}
    assert summary["totals"] == first_summary["totals"]
    assert {r["source"] for r in latest} == {"earlier_run"} and {r["row"] for r in latest} == {""}
    assert {(r["reference_id"], r["invoice_id"], r["status"]) for r in latest} == {
        (r["reference_id"], r["invoice_id"], r["status"]) for r in before
    }
    assert second.state == "success"  # every payout of the batch succeeded, and the report says so
    runs = sorted((folder / "runs").iterdir())
    assert len(runs) == 2  # both runs' reports are kept
    kept = sorted(json.loads((r / "summary.json").read_text())["rows"] for r in runs)
    assert kept == [0, 20]
    assert len((folder / "ledger.jsonl").read_text().splitlines()) == 20


def test_a_gateway_that_cannot_be_read_gives_unknown_rows_and_a_red_run(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    write_batch: Callable[..., Path],
    read_report: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    valid_rows: Callable[..., list[dict[str, str]]],
) -> None:
    out = tmp_path / "out"
    paid = write_batch(tmp_path / "flaky.csv", valid_rows(8, "flaky"))
    conf = {"output_dir": str(out), "batch_id": "flaky-reads"}
    first = run_dag(DAG_ID, {**conf, "batch_file": str(paid)}, logical_date=datetime(2026, 7, 3, tzinfo=UTC))
    assert first.state == "success"

    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", gateway_conn.airflow_connection(**FAST_READS))
    gateway_conn.set_faults(READ_FAULTS, seed=3)
    empty = write_batch(tmp_path / "empty.csv", [])
    second = run_dag(
        DAG_ID, {**conf, "batch_file": str(empty)}, logical_date=datetime(2026, 7, 4, tzinfo=UTC)
    )
    gateway_conn.clear_faults()

    assert second.state == "failed"
    assert second.tasks["report"] == "success" and second.tasks["verdict"] == "failed"
    rows, summary = read_report(out / "flaky-reads")  # written although no read succeeded
    assert len(rows) == 8 and summary["counts"] == {"unknown": 8}
    assert all("could not be read" in r["reason"] and r["invoice_id"] for r in rows)
    assert summary["failing_rows"] == 8
    ledger = gateway_conn.ledger()["references"]
    assert {r["reference_id"] for r in rows} == set(ledger)
    assert {(e["invoices"], e["process_calls"]) for e in ledger.values()} == {(1, 1)}


def test_failed_reads_never_stop_the_report(
    gateway_conn: Any,
    tmp_path: Path,
    write_batch: Callable[..., Path],
    read_report: Callable[..., Any],
    valid_rows: Callable[..., list[dict[str, str]]],
) -> None:
    """Invoices the sensors did not report (read by id) and rows no chunk reported (looked up by
    reference) under a gateway whose reads all fail: every row is ``unknown``; the report is written."""
    hook = PayoutGatewayHook(**FAST_READS)
    batch = write_batch(tmp_path / "reads.csv", valid_rows(6, "reads"))
    ids = [
        hook.create_and_process({**_request(r), "reference_id": f"reads-b:{r['reference_id']}"}).id
        for r in valid_rows(6, "reads")
    ]
    info = BatchInfo(
        batch_id="reads-b",
        batch_file=str(batch),
        file_digest="",
        currency="USD",
        output_dir=str(tmp_path / "out"),
        from_drop_folder=False,
        total_rows=6,
        rejected=[],
    )
    sent = [[[1, ids[0]], [2, ids[1]], [3, ids[2]]]]  # rows 4-6: their chunk crashed before reporting

    gateway_conn.set_faults(READ_FAULTS, seed=4)
    summary = make_report(info, sent, [[]], [None], lambda: PayoutGatewayHook(**FAST_READS), "run-a")
    gateway_conn.clear_faults()

    rows, _ = read_report(tmp_path / "out" / "reads-b")
    assert summary["counts"] == {"unknown": 6}
    assert [r["invoice_id"] for r in rows] == [*ids[:3], "", "", ""]
    with pytest.raises(AirflowFailException, match="could not be read"):
        verdict(summary)

    again = make_report(info, sent, [[]], [None], lambda: PayoutGatewayHook(**FAST_READS), "run-a")
    rows, _ = read_report(tmp_path / "out" / "reads-b")  # the report's retry reads them all
    assert [r["invoice_id"] for r in rows] == ids and "unknown" not in again["counts"]
    assert len(list((tmp_path / "out" / "reads-b" / "runs").iterdir())) == 2  # both reports kept


def _request(row: dict[str, str]) -> dict[str, Any]:
    return {
        "service": row["service"],
        "currency": "USD",
        "amount": row["service_amount"],
        "fields": dict([row["fields_data"].split(":", 1)]),
    }


def test_a_rerun_with_a_changed_amount_is_a_conflict_naming_the_invoice(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    write_batch: Callable[..., Path],
    read_report: Callable[..., Any],
    valid_rows: Callable[..., list[dict[str, str]]],
) -> None:
    out = tmp_path / "out"
    rows = valid_rows(3, "conf")
    batch = write_batch(tmp_path / "conf.csv", rows)
    conf = {"batch_file": str(batch), "output_dir": str(out), "batch_id": "conf-b"}
    assert run_dag(DAG_ID, conf, logical_date=datetime(2026, 7, 5, tzinfo=UTC)).state == "success"
    before = {r["reference_id"]: r for r in read_report(out / "conf-b")[0]}
    ledger = gateway_conn.ledger()

    rows[1]["service_amount"] = "99.00"  # row 2 was paid 2.01; its reference now says 99.00
    write_batch(batch, rows)
    result = run_dag(DAG_ID, conf, logical_date=datetime(2026, 7, 6, tzinfo=UTC))

    assert result.state == "failed" and result.tasks["verdict"] == "failed"
    assert gateway_conn.ledger() == ledger  # one invoice, nothing sent
    report, summary = read_report(out / "conf-b")
    line = {r["reference_id"]: r for r in report}["conf-b:conf-0001"]
    assert line["status"] == "conflict"
    assert line["invoice_id"] == before["conf-b:conf-0001"]["invoice_id"]
    assert line["invoice_status"] == "processed" and "processed" in line["reason"]
    assert line["amount"] == "2.01"  # the existing invoice's amount: money that moved
    assert "amount" in line["reason"] and "person" in line["reason"]
    assert summary["counts"] == {"conflict": 1, "processed": 2}
    assert summary["totals"]["conflict"]["USD"]["amount"] == "2.01"
    assert summary["outcomes"]["needs_person"] == 1 and summary["failing_rows"] == 1
    assert len(report) == 3  # the conflict row names its invoice: no extra "earlier run" line


def test_a_planted_duplicate_is_a_conflict_naming_both_invoices(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    write_batch: Callable[..., Path],
    read_report: Callable[..., Any],
    valid_rows: Callable[..., list[dict[str, str]]],
) -> None:
    planted = [
        gateway_conn.admin(
            "POST",
            "invoices",
            json={
                "service": "test_usd",
                "currency": "USD",
                "amount": 7,
                "reference_id": "dup-b:dup-0000",
                "fields": {"account": "4000000000"},
                "status": "processed",
            },
        ).json()["data"]["id"]
        for _ in range(2)
    ]
    rows = [{**valid_rows(1, "dup")[0], "service_amount": "7.00"}, *valid_rows(2, "fine")[1:]]
    batch = write_batch(tmp_path / "dup.csv", rows)

    result = run_dag(DAG_ID, {"batch_file": str(batch), "output_dir": str(tmp_path), "batch_id": "dup-b"})

    assert result.state == "failed"
    report, summary = read_report(tmp_path / "dup-b")
    line = {r["reference_id"]: r for r in report}["dup-b:dup-0000"]
    assert line["status"] == "conflict"
    assert sorted(line["invoice_id"].split(";")) == sorted(planted)
    assert line["invoice_status"] == "processed;processed" and "2 invoices" in line["reason"]
    assert summary["totals"]["conflict"]["USD"] == {
        "amount": "14.00",
        "processed_amount": "14.00",
        "fee": "0.00",
        "writeoff": "0.00",
    }
    assert gateway_conn.ledger()["references"]["dup-b:dup-0000"]["invoices"] == 2  # nothing added
