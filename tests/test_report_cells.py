"""What of a rejected row a report may echo, the finance cells (recipient, times, declines in
words), and the batch ledger the latest view is built from."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from payout_gateway.statuses import resolution_words
from payout_jobs.batch_ledger import BatchLedger, LedgerEntry, new_run_folder
from payout_jobs.batch_report import REPORT_COLUMNS, ReportLine, gateway_reason, write_report
from payout_jobs.csv_safety import needs_neutralising
from payout_jobs.report_cells import (
    currency_cell,
    money_cell,
    recipient_cell,
    reference_cell,
    text_cell,
    time_cell,
)

CARDS = ["4111111111111111", "378282246310005", "5123817234060000", "4111 1111 1111 1111"]


def test_card_numbers_and_formulas_are_never_money() -> None:
    for value in [
        *CARDS,
        *(c + ".00" for c in CARDS),
        "=1+1",
        "@SUM(A1)",
        "abc",
        "",
        None,
        "NaN",
        "Infinity",
    ]:
        assert money_cell(value, "USD") == "", value


def test_valid_money_is_echoed_in_its_checked_form() -> None:
    assert money_cell("12.34", "USD") == "12.34"
    assert money_cell("12.5", "USD") == "12.50"
    assert money_cell("1200", "JPY") == "1200"
    assert money_cell("12.345", "USD") == ""  # more decimals than the currency allows
    assert money_cell("12.00", "=CMD") == ""  # no valid currency: no valid money


def test_currency_and_reference_cells_pass_their_grammar_or_are_empty() -> None:
    assert currency_cell("USD") == "USD"
    for bad in ("usd", "US", "USDX", "=CMD|' /C CALC'!A0", "\uff35\uff33\uff24", "", None):
        assert currency_cell(bad) == "", bad
    assert reference_cell("b1", "row-1") == "b1:row-1"
    for bad in ("@SUM(1+1)", "a b", "x" * 65, "", "ref\n", CARDS[0] + "!"):
        assert reference_cell("b1", bad) == "", bad


@given(st.text(max_size=40))
def test_a_money_cell_is_empty_or_a_plain_amount(text: str) -> None:
    cell = money_cell(text, "USD")
    assert cell == "" or re.fullmatch(r"-?[0-9]{1,11}\.[0-9]{2}", cell)
    assert text_cell(text).count("4111111111111111") == 0


def test_reasons_are_redacted() -> None:
    assert "4111111111111111" not in text_cell("service: 4111111111111111 is not offered")


def test_ledger_appends_whole_lines_skips_torn_ones_and_dedupes(tmp_path: Path) -> None:
    ledger = BatchLedger(tmp_path / "b1", "b1")
    first = [LedgerEntry(f"b1:r-{i}", f"cpoi_{i}", f"r-{i}", "run-1", i + 1) for i in range(3)]
    assert ledger.record(first) == 3
    assert ledger.record([*first, LedgerEntry("b1:r-3", "cpoi_3", "r-3", "run-2", 4)]) == 1
    with ledger.path.open("a") as handle:  # a write torn by a crash, and a foreign line
        handle.write('{"reference_id": "b1:r-9", "invo')
    assert ledger.record([LedgerEntry("other:r-1", "cpoi_x", "r-1", "run-2")]) == 0  # not this batch
    assert sorted(ledger.invoices_by_reference()) == ["b1:r-0", "b1:r-1", "b1:r-2", "b1:r-3"]
    assert all(json.loads(line) for line in ledger.path.read_text().splitlines()[:4])


def test_ledger_of_a_batch_reported_before_it_existed_starts_from_that_report(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "report.csv").write_text(
        "row,reference_id,invoice_id,status,resolution,amount,processed_amount,reason,currency\n"
        "1,old:a,cpoi_1,processed,ok,1.00,1.00,,USD\n"
        "2,old:b,,rejected,,,,service: is required,USD\n"
    )
    ledger = BatchLedger(folder, "old")
    assert [e.invoice_id for e in ledger.entries()] == ["cpoi_1"]
    ledger.record([LedgerEntry("old:c", "cpoi_3", "c", "run-2", 3)])
    assert sorted(ledger.invoices_by_reference()) == ["old:a", "old:c"]  # the old report's kept


def test_every_report_of_a_run_gets_its_own_folder(tmp_path: Path) -> None:
    run_id = "manual__2026-06-01T09:00:00+00:00"
    first, second = new_run_folder(tmp_path, run_id), new_run_folder(tmp_path, run_id)
    assert first != second and first.is_dir() and second.is_dir()
    assert ":" not in first.name and "+" not in first.name


def test_a_recipient_is_its_fields_with_every_number_masked_to_four_characters() -> None:
    assert recipient_cell("card_number:4111111111111111;card_holder:Ann Lee") == (
        "card_number ******1111; card_holder Ann Lee"
    )
    assert recipient_cell("iban:DE89370400440532013000") == "iban ******3000"
    assert recipient_cell("card_holder:4111 1111 1111 1111") == "card_holder ******1111"  # shifted
    assert recipient_cell("4111111111111111:x;account:12") == "account ****"  # a card as a key: left out
    assert recipient_cell("not properties") == recipient_cell(None) == ""


@given(st.lists(st.tuples(st.from_regex(r"\A[a-z_]{1,12}\Z"), st.text(max_size=30)), max_size=4))
def test_no_recipient_shows_more_than_four_digits_of_a_value(pairs: list[tuple[str, str]]) -> None:
    fields = ";".join(f"{k}:{v}" for k, v in pairs if ":" not in v and ";" not in v)
    shown = recipient_cell(fields)
    assert not re.search(r"[0-9]{5}", shown.replace("******", "")), shown


def test_gateway_times_are_iso_utc_or_empty() -> None:
    assert time_cell(1597835735) == time_cell("1597835735") == "2020-08-19T11:15:35Z"
    assert time_cell("2020-08-19T13:15:35+02:00") == "2020-08-19T11:15:35Z"
    for value in (None, "", "=cmd|' /C calc'!A0", "yesterday", True, 10**20):
        assert time_cell(value) == "", value


def test_a_decline_reads_in_words() -> None:
    assert resolution_words("insufficient_funds") == "insufficient funds"
    assert resolution_words("INSUFFICIENT_FUNDS") == "insufficient funds"
    assert resolution_words("brand_new_reason") == "brand new reason"  # undocumented: spelled out
    declined = gateway_reason("failed", "insufficient_funds", False)
    assert declined == "failed at the gateway: insufficient funds"
    assert gateway_reason("needs_person", "connection_error", True) == (
        "moderation required: the provider could not be reached"
    )
    assert gateway_reason("succeeded", "ok", False) == ""


def test_finance_columns_of_a_report_are_spreadsheet_safe(tmp_path: Path) -> None:
    line = ReportLine(
        row=1,
        reference_id="b:r-1",
        invoice_id="cpoi_1",
        status="processed",
        resolution="ok",
        amount="10.00",
        processed_amount="10.00",
        reason="",
        currency="USD",
        outcome="succeeded",
        description=text_cell('=HYPERLINK("http://evil.example","pay") 4111111111111111'),
        recipient=recipient_cell("account_holder:@Ann;account:4000123412"),
        fee="0.30",
        writeoff="10.30",
        created="2026-12-08T00:00:00Z",
        processed="2026-12-08T00:00:05Z",
    )
    summary = write_report(tmp_path, [line], {"batch_id": "b"})
    with (tmp_path / "report.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(REPORT_COLUMNS)
    assert all(not needs_neutralising(cell) for row in rows for cell in row)
    written = dict(zip(rows[0], rows[1], strict=True))
    assert written["description"].startswith("'=HYPERLINK")
    assert "4111111111111111" not in written["description"]
    assert written["recipient"] == "account_holder @Ann; account ******3412"
    assert summary["charges"] == {"USD": {"fee": "0.30", "writeoff": "10.30"}}
