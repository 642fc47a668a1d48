"""The leak scan: after real runs with card and account numbers, nothing a user can read holds one,
nor the connection's secrets; and a planted number or secret is found (the scan can fail).

Under ``dag.test()`` Airflow masks nothing on the console (``airflow-3.3-probe.md`` §6), so the
console is not what a user sees; what is scanned here: every XCom, every rendered field and every
task instance row of the runs (metadata DB), every file the runs wrote to the report folder and the
Airflow log folder, and every log record of the payout code itself (which must never depend on
masking). ``make chaos`` runs the same scanner over a real scheduler's log files and whole DB.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from chaos_batch import FAMOUS_CARD, SMALL_INVALID, make_batch
from leak_scan import LeakScanner, ScanResult

#: The metadata tables a run writes what it computed into, each filtered to the runs scanned.
RUN_TABLES = ("xcom", "rendered_task_instance_fields", "task_instance")
SINGLE_CARD = "5454545454545454"
SHORT_CARD = "545454545454545"  # 15 digits: refused by the card service's regexp


def scanner_for(sandbox: Any, numbers: set[str]) -> LeakScanner:
    return LeakScanner({"API key": sandbox.password, "public key": sandbox.public_key}, numbers)


def scan_runs(scanner: LeakScanner, airflow_home: Path, run_ids: list[str]) -> ScanResult:
    marks = ", ".join("?" * len(run_ids))
    tables = {t: (f"run_id IN ({marks})", run_ids) for t in RUN_TABLES}
    return scanner.scan_sqlite(airflow_home / "airflow.db", tables)


def test_runs_with_card_and_account_numbers_leak_none_of_them(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    airflow_db: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    batch = make_batch(20, SMALL_INVALID, seed=23)  # card_in_amount and both shifted rows included
    batch_file = batch.write(tmp_path / "in" / "leaky.csv")
    # the only rejected row of this one has a card number for its amount (a total of one value)
    lone = make_batch(8, {"card_in_amount": 1}, seed=29)
    lone_file = lone.write(tmp_path / "in" / "lone.csv")
    out = tmp_path / "out"
    gateway_conn.set_faults(
        [
            {"endpoint": "create_invoice", "kind": "error_after_commit", "rate": 0.2},
            {"endpoint": "process_invoice", "kind": "reset", "rate": 0.2},
        ],
        seed=3,
    )
    runs = [
        run_dag("payout_batch", {"batch_file": str(batch_file), "output_dir": str(out), "chunk_size": 10}),
        run_dag("payout_batch", {"batch_file": str(lone_file), "output_dir": str(out)}),
        run_dag(
            "payout_by_reference",
            {
                "service": "card",
                "currency": "USD",
                "amount": "20.00",
                "fields": {"card_number": SINGLE_CARD, "card_holder": "Jane Doe"},
                "test_mode": True,
            },
        ),
    ]
    gateway_conn.clear_faults()
    before_refused = gateway_conn.ledger()
    runs.append(  # refused before anything is sent: the field is named, never its value
        run_dag(
            "payout_by_reference",
            {"service": "card", "currency": "USD", "amount": "20.00", "fields": {"card_number": SHORT_CARD}},
        )
    )
    assert [r.state for r in runs] == ["failed", "failed", "success", "failed"]
    assert runs[3].tasks["validate_request"] == "failed" and gateway_conn.ledger() == before_refused

    scanner = scanner_for(gateway_conn, batch.numbers | lone.numbers | {SINGLE_CARD, SHORT_CARD})
    result = scan_runs(scanner, airflow_db, [r.run_id for r in runs])
    result.extend(scanner.scan_tree(out))
    if (airflow_db / "logs").is_dir():
        result.extend(scanner.scan_tree(airflow_db / "logs"))
    own_records = [r for r in caplog.records if "payout" in r.name]
    for record in own_records:
        result.extend(scanner.scan_text(record.getMessage(), f"log record of {record.name}"))

    assert own_records and result.rows >= 4 * 5 and result.files >= 2  # the scan saw the runs
    assert result.leaks == [], "\n".join(map(str, result.leaks))


def test_a_card_number_planted_in_a_copy_of_a_report_is_found(tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    report.write_text("row,reference_id,status,amount\n1,b:r-1,rejected,10.00\n")
    planted = tmp_path / "planted" / "report.csv"
    planted.parent.mkdir()
    shutil.copy(report, planted)
    planted.write_text(planted.read_text() + f"2,b:r-2,rejected,{FAMOUS_CARD}\n")
    scanner = LeakScanner({"API key": "s3cr3t-key"}, {FAMOUS_CARD, "730012345678"})

    result = scanner.scan_tree(tmp_path)

    assert [(Path(leak.where), leak.label) for leak in result.leaks] == [(planted, "card/account number #1")]
    assert result.files == 2
    assert FAMOUS_CARD not in "\n".join(map(str, result.leaks)) + result.summary(len(scanner))


def test_a_log_file_with_a_grouped_card_number_or_a_secret_is_found_and_a_masked_one_is_not(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs" / "dag_id=payout_batch" / "attempt=1.log"
    logs.parent.mkdir(parents=True)
    logs.write_text(
        "card 411111******1111 and account ******5678 are masked\n"
        "reference b:v-00001 at 2026-12-02T18:29:41 took 1764700000123 ms\n"
    )
    scanner = LeakScanner({"API key": "s3cr3t-key", "public key": "pk_test_x"}, {FAMOUS_CARD, "730012345678"})
    assert scanner.scan_tree(tmp_path).leaks == []

    logs.write_text(
        logs.read_text() + "retrying with 4111 1111-1111 1111, key=s3cr3t-key, acct 730012345678\n"
    )
    labels = sorted(leak.label for leak in scanner.scan_tree(tmp_path).leaks)

    assert labels == ["API key", "card/account number #1", "card/account number #2"]


def test_a_secret_planted_in_an_xcom_row_is_found_by_table_and_column(tmp_path: Path) -> None:
    db = tmp_path / "airflow.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE xcom (run_id TEXT, key TEXT, value BLOB)")
        connection.execute("INSERT INTO xcom VALUES ('run-a', 'return_value', ?)", (b'{"rows": 3}',))
        connection.execute("INSERT INTO xcom VALUES ('run-b', 'batch', ?)", (b'{"k": "pk_test_x"}',))
    connection.close()
    scanner = LeakScanner({"public key": "pk_test_x"}, {FAMOUS_CARD})

    everything = scanner.scan_sqlite(db)
    only_run_a = scanner.scan_sqlite(db, {"xcom": ("run_id = ?", ["run-a"])})

    assert [str(leak) for leak in everything.leaks] == ["leak: public key in airflow.db:xcom.value (rowid 2)"]
    assert everything.rows == 2
    assert only_run_a.leaks == [] and only_run_a.rows == 1
