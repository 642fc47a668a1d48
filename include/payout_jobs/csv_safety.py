"""CSV files that are safe to open in a spreadsheet (formula injection neutralised).

Excel, LibreOffice Calc and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or ``@``
as a formula (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``, ``-2+3+cmd|...``); a leading tab, CR,
LF or NUL can hide such a start. OWASP's CSV injection guidance: prefix such a cell with ``'``,
which spreadsheets read as "this is text". Here, a cell is neutralised when its first character,
or its first one after leading whitespace, is one of those, or one of their full-width forms
(U+FF1D, U+FF0B, U+FF0D, U+FF20), which some spreadsheets' input methods turn into ASCII ones.

A plain number (ASCII digits, an optional leading ``-``, an optional ``.`` fraction: ``-5.00``) is
data, not a formula, and is written as it is: prefixing it would turn a number into text and
change what every CSV reader sees. Quoting follows RFC 4180 (the :mod:`csv` module).

Every CSV this project writes goes through :func:`safe_writer`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

#: First characters that make a spreadsheet evaluate a cell (ASCII and full-width forms).
FORMULA_STARTS = frozenset("=+-@\t\r\n\0" + "\uff1d\uff0b\uff0d\uff20")
#: What a neutralised cell starts with.
TEXT_MARKER = "'"
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def needs_neutralising(text: str) -> bool:
    """Whether a spreadsheet could run ``text`` as a formula."""
    if not text or _PLAIN_NUMBER.fullmatch(text):
        return False
    stripped = text.lstrip()
    return text[0] in FORMULA_STARTS or (bool(stripped) and stripped[0] in FORMULA_STARTS)


def safe_cell(value: Any) -> str:
    """``value`` as CSV cell text that no spreadsheet runs (None is the empty cell)."""
    text = "" if value is None else str(value)
    return TEXT_MARKER + text if needs_neutralising(text) else text


class SafeWriter:
    """A :func:`csv.writer` that passes every cell through :func:`safe_cell`."""

    def __init__(self, handle: Any, **fmtparams: Any) -> None:
        self._writer = csv.writer(handle, **fmtparams)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def safe_writer(handle: Any, **fmtparams: Any) -> SafeWriter:
    """A CSV writer on ``handle`` (opened with ``newline=""``) whose cells are all neutralised."""
    return SafeWriter(handle, **fmtparams)
