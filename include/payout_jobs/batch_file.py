"""Reading batch payout files: the vendor's dashboard CSV, plus an optional ``currency`` column.

Columns: ``service``, ``service_amount``, ``fields_data`` (``key:value;key:value``),
``reference_id``, optional ``description``, ``customer`` (``reference_id:...;name:...``),
``customer_metadata`` (``key:value;...``) and ``currency``. Separator ``,``; properties ``;``.

Rows are numbered from 1 in file order, blank lines skipped (row N is line N + 1 when no cell
spans lines). Fields hold card and account numbers: they are kept out of ``repr`` and never put in
XCom, logs or reports; a task that needs them reads the file again.

The file as a whole is refused (:class:`BatchFileError`, nothing is sent) when it is larger than
``PAYOUT_BATCH_MAX_BYTES`` (from its size, before reading), has more data rows than
``PAYOUT_BATCH_MAX_ROWS``, is not UTF-8 (a BOM is fine), has a column twice, lacks or adds a
column, or breaks CSV quoting. Messages name the line and row, never a cell's value.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from payout_gateway.exceptions import PayoutValidationError

from payout_jobs import settings

REQUIRED_COLUMNS: tuple[str, ...] = ("service", "service_amount", "fields_data", "reference_id")
OPTIONAL_COLUMNS: tuple[str, ...] = ("description", "customer", "customer_metadata", "currency")
_FILE_ENCODING = "utf-8-sig"  # files saved by spreadsheets often start with a BOM
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_LONE_CR = re.compile(rb"(?<=\r)(?=[^\n])")
_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]{0,39}")
_DIGIT_RUN = re.compile(r"[0-9]{6}")


class BatchFileError(ValueError):
    """The file as a whole cannot be read as a batch: nothing of it is sent."""


@dataclass(frozen=True)
class BatchRow:
    """One data row of a batch file, as text (nothing is parsed or checked yet)."""

    row: int
    service: str
    service_amount: str
    reference_id: str
    fields_data: str = field(default="", repr=False)
    description: str = ""
    customer: str = field(default="", repr=False)
    customer_metadata: str = field(default="", repr=False)
    currency: str = ""
    #: Values beyond the header's columns (an unquoted comma, usually): the row is rejected.
    extra_values: int = 0


def safe_name(text: str) -> str | None:
    """``text`` if it looks like a name (a column, a key, a service code), else None: what a person
    typed may be a card number, and messages never echo values."""
    return text if _SAFE_NAME.fullmatch(text) and not _DIGIT_RUN.search(text) else None


def parse_properties(text: str, what: str) -> dict[str, str]:
    """``key:value;key:value`` as a dict; raises PayoutValidationError (a ValueError) naming the
    column ``what`` and the bad item's position (never its value: it may be a card number)."""
    result: dict[str, str] = {}
    for position, item in enumerate((part for part in text.split(";") if part.strip()), start=1):
        key, sep, value = item.partition(":")
        key = key.strip()
        if not sep or not key:
            raise PayoutValidationError(what, f"item {position} is not key:value")
        if key in result:
            name = safe_name(key)
            raise PayoutValidationError(
                what, f"has the key {name!r} twice" if name else f"item {position} repeats a key"
            )
        result[key] = value.strip()
    return result


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes (hex): the identity of its content. A file beyond the byte limit
    is refused from its size, before it is read (:class:`BatchFileError`)."""
    _check_size(path)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _column_label(name: str, position: int) -> str:
    label = safe_name(name)
    return repr(label) if label else f"#{position}"


def _check_header(header: list[str] | None, path: Path) -> list[str]:
    """The column names (stripped); raises for an empty header, a column twice, a missing or an
    unknown column."""
    if not header or not any(cell.strip() for cell in header):
        raise BatchFileError(f"{path.name} is empty: expected a header with {', '.join(REQUIRED_COLUMNS)}")
    names = [cell.strip() for cell in header]
    twice = [i for i, name in enumerate(names, 1) if name in names[: i - 1]]
    if twice:
        labels = ", ".join(dict.fromkeys(_column_label(names[i - 1], i) for i in twice))
        raise BatchFileError(
            f"{path.name} has the column(s) {labels} more than once (which one is meant is not ours to guess)"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise BatchFileError(f"{path.name} lacks the column(s) {', '.join(missing)}")
    known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    unknown = [_column_label(n, i) for i, n in enumerate(names, 1) if n not in known]
    if unknown:
        raise BatchFileError(f"{path.name} has unknown column(s) {', '.join(unknown)}")
    return names


class _Undecodable(Exception):
    def __init__(self, line: int, byte: int, at_end: bool) -> None:
        super().__init__(line, byte)
        self.line, self.byte, self.at_end = line, byte, at_end


class _Lines:
    """The file's lines as text for :mod:`csv`, each decoded strictly as UTF-8 (a BOM at the start
    is dropped), line ends kept (``\\n``, ``\\r\\n`` or a lone ``\\r``), bytes counted."""

    def __init__(self, handle: BinaryIO, max_bytes: int) -> None:
        self._handle = handle
        self._max_bytes = max_bytes
        self._decoder = codecs.getincrementaldecoder(_FILE_ENCODING)(errors="strict")
        self.line = 0
        self.bytes = 0

    def __iter__(self) -> Iterator[str]:
        for raw in self._handle:
            self.bytes += len(raw)
            if self.bytes > self._max_bytes:  # the file grew after its size was checked
                raise BatchFileError(f"grew beyond {self._max_bytes} bytes while it was read")
            for piece in _LONE_CR.split(raw):
                self.line += 1
                yield self._decode(piece)
        tail = self._decode(b"", final=True)
        if tail:
            yield tail

    def _decode(self, piece: bytes, final: bool = False) -> str:
        try:
            return self._decoder.decode(piece, final)
        except UnicodeDecodeError as exc:
            raise _Undecodable(max(self.line, 1), exc.start + 1, final) from None


def _check_size(path: Path) -> int:
    """The byte limit; raises unless ``path`` is a regular file within it (from stat, unread)."""
    if not path.is_file():
        raise BatchFileError(f"batch file {path} does not exist")
    limit = settings.max_batch_bytes()
    size = path.stat().st_size
    if size > limit:
        raise BatchFileError(
            f"{path.name} is {size} bytes; the limit is {limit} (setting PAYOUT_BATCH_MAX_BYTES): "
            "split the file"
        )
    return limit


def _where(rows_read: int) -> str:
    return "the header" if rows_read < 0 else f"row {rows_read + 1}"


def _row(number: int, names: list[str], values: list[str]) -> BatchRow:
    cells = dict(zip(names, values, strict=False))
    text = {k: v.strip() for k, v in cells.items()}
    return BatchRow(
        row=number,
        service=text.get("service", ""),
        service_amount=cells.get("service_amount", ""),  # as written: the grammar judges spaces
        reference_id=text.get("reference_id", ""),
        fields_data=text.get("fields_data", ""),
        description=text.get("description", ""),
        customer=text.get("customer", ""),
        customer_metadata=text.get("customer_metadata", ""),
        currency=text.get("currency", "").upper(),
        extra_values=max(0, len(values) - len(names)),
    )


def read_rows(path: Path | str, only: Iterable[int] | None = None) -> Iterator[BatchRow]:
    """The rows of a batch file, in order; with ``only``, just the rows with those numbers.

    Raises :class:`BatchFileError` for the file-level problems of the module docstring: the size
    before reading, the rows on reading the one too many, the others where they are met. Cells are
    stripped of surrounding spaces, except ``service_amount`` (kept as written).
    """
    path = Path(path)
    max_bytes = _check_size(path)
    max_rows = settings.max_batch_rows()
    wanted = set(only) if only is not None else None
    rows_read = -1  # -1: the header is being read
    with path.open("rb") as handle:
        if handle.read(2) in _UTF16_BOMS:
            raise BatchFileError(f"{path.name} is UTF-16 text; save it as UTF-8 (CSV UTF-8)")
        handle.seek(0)
        lines = _Lines(handle, max_bytes)
        reader = csv.reader(lines, strict=True)
        try:
            names = _check_header(next(reader, None), path)
            rows_read = 0
            for values in reader:
                if not values:
                    continue  # a blank line is not a row
                if rows_read >= max_rows:
                    raise BatchFileError(
                        f"{path.name} has more than {max_rows} rows (setting PAYOUT_BATCH_MAX_ROWS; the "
                        "vendor's dashboard takes 1,000 a file): split the file"
                    )
                rows_read += 1
                if wanted is None or rows_read in wanted:
                    yield _row(rows_read, names, values)
        except _Undecodable as exc:
            where = f"line {exc.line} ({_where(rows_read - 1 if exc.at_end else rows_read)})"
            at = (
                "ends inside a character"
                if exc.at_end
                else f"is not UTF-8 text (byte {exc.byte} of the line)"
            )
            raise BatchFileError(f"{path.name}: {where} {at}; save the file as UTF-8 (CSV UTF-8)") from None
        except csv.Error as exc:
            raise BatchFileError(
                f"{path.name}: line {lines.line} ({_where(rows_read)}) is not valid CSV ({exc})"
            ) from None


def count_rows(path: Path | str) -> int:
    """Read the whole file once, keeping nothing: its number of data rows, or the
    :class:`BatchFileError` that :func:`read_rows` would raise somewhere on the way."""
    return sum(1 for _ in read_rows(path))
