"""Reading batch payout files: the vendor's dashboard CSV, plus an optional ``currency`` column.

Columns: ``service``, ``service_amount``, ``fields_data`` (``key:value;key:value``),
``reference_id``, optional ``description``, ``customer`` (``reference_id:...;name:...``),
``customer_metadata`` (``key:value;...``) and ``currency``. Separator ``,``; properties ``;``.

Rows are numbered from 1 in file order (row N is line N + 1, after the header). Fields hold card
and account numbers: they are kept out of ``repr`` and never put in XCom, logs or reports; a task
that needs them reads the file again.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED_COLUMNS: tuple[str, ...] = ("service", "service_amount", "fields_data", "reference_id")
OPTIONAL_COLUMNS: tuple[str, ...] = ("description", "customer", "customer_metadata", "currency")
REPORT_ENCODING = "utf-8"
_FILE_ENCODING = "utf-8-sig"  # files saved by spreadsheets often start with a BOM


class BatchFileError(ValueError):
    """The file as a whole cannot be read as a batch (missing, empty, wrong header)."""


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


def parse_properties(text: str, what: str) -> dict[str, str]:
    """``key:value;key:value`` as a dict; raises ValueError naming ``what`` and the bad item's
    position (never its value, which may be a card or account number)."""
    result: dict[str, str] = {}
    for position, item in enumerate((part for part in text.split(";") if part.strip()), start=1):
        key, sep, value = item.partition(":")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{what} item {position} is not key:value")
        if key in result:
            raise ValueError(f"{what} has the key {key!r} twice")
        result[key] = value.strip()
    return result


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes (hex): the identity of its content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_header(header: list[str] | None, path: Path) -> None:
    if not header:
        raise BatchFileError(f"{path.name} is empty: expected a header with {', '.join(REQUIRED_COLUMNS)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise BatchFileError(f"{path.name} lacks the column(s) {', '.join(missing)}")
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise BatchFileError(f"{path.name} has unknown column(s) {', '.join(unknown)}")


def read_rows(path: Path | str, only: Iterable[int] | None = None) -> Iterator[BatchRow]:
    """The rows of a batch file, in order; with ``only``, just the rows with those numbers."""
    path = Path(path)
    if not path.is_file():
        raise BatchFileError(f"batch file {path} does not exist")
    wanted = set(only) if only is not None else None
    with path.open(newline="", encoding=_FILE_ENCODING) as handle:
        reader = csv.DictReader(handle)
        _check_header(reader.fieldnames, path)
        for number, record in enumerate(reader, start=1):
            if wanted is not None and number not in wanted:
                continue
            values = {k: (v or "").strip() for k, v in record.items() if k is not None}
            yield BatchRow(
                row=number,
                service=values.get("service", ""),
                service_amount=values.get("service_amount", ""),
                reference_id=values.get("reference_id", ""),
                fields_data=values.get("fields_data", ""),
                description=values.get("description", ""),
                customer=values.get("customer", ""),
                customer_metadata=values.get("customer_metadata", ""),
                currency=values.get("currency", "").upper(),
                extra_values=len(record.get(None) or []),  # type: ignore[call-overload]
            )
