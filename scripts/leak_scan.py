"""Search what a user can see (logs, reports, the metadata database) for secrets and card numbers.

A needle is a secret (found as a substring) or a card/account number (found among the digits of
the text, also when written with spaces or dashes between digit groups). A masked form such as
``411111******1111`` is not a match. A leak names the place and the needle's label, never its
value, so the scan's own output leaks nothing. Standard library only.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Digits, possibly grouped by single spaces or dashes ("4111 1111 1111 1111").
_DIGIT_GROUPS = re.compile(r"\d(?:[ \-]?\d)+")
MIN_NUMBER_LENGTH = 6


@dataclass(frozen=True)
class Leak:
    """A needle found somewhere: where, and which needle (by label)."""

    where: str
    label: str

    def __str__(self) -> str:
        return f"leak: {self.label} in {self.where}"


@dataclass
class ScanResult:
    """Every leak found, and how much was searched."""

    leaks: list[Leak] = field(default_factory=list)
    files: int = 0
    rows: int = 0

    def extend(self, other: ScanResult) -> None:
        self.leaks.extend(other.leaks)
        self.files += other.files
        self.rows += other.rows

    def summary(self, needles: int) -> str:
        found = f"{len(self.leaks)} leak(s)" if self.leaks else "no leak"
        return (
            f"leak scan: {found} in {self.files} file(s) and {self.rows} database row(s) "
            f"({needles} secrets and card/account numbers searched)"
        )


class LeakScanner:
    """Searches text, files, folders and SQLite databases for the needles.

    :param secrets: label -> secret text (e.g. ``{"API key": ...}``), found as substrings.
    :param numbers: card and account numbers (digits only), labelled by their position.
    """

    def __init__(self, secrets: Mapping[str, str], numbers: Iterable[str]) -> None:
        self.secrets = {label: value for label, value in secrets.items() if value}
        ordered = sorted({n for n in numbers if n.isdigit() and len(n) >= MIN_NUMBER_LENGTH})
        self.numbers = {n: f"card/account number #{i + 1}" for i, n in enumerate(ordered)}
        self._lengths = sorted({len(n) for n in self.numbers})

    def __len__(self) -> int:
        return len(self.secrets) + len(self.numbers)

    def labels_in(self, text: str) -> list[str]:
        """The labels of every needle in ``text`` (each once, in a stable order)."""
        found = [label for label, secret in self.secrets.items() if secret in text]
        hits: set[str] = set()
        for match in _DIGIT_GROUPS.finditer(text):
            digits = re.sub(r"[ \-]", "", match.group())
            for size in self._lengths:
                for start in range(len(digits) - size + 1):
                    label = self.numbers.get(digits[start : start + size])
                    if label:
                        hits.add(label)
        return found + sorted(hits)

    def scan_text(self, text: str, where: str) -> ScanResult:
        return ScanResult(leaks=[Leak(where, label) for label in self.labels_in(text)])

    def scan_file(self, path: Path) -> ScanResult:
        result = self.scan_text(path.read_bytes().decode("utf-8", errors="replace"), str(path))
        result.files = 1
        return result

    def scan_tree(self, root: Path, skip: Sequence[Path] = ()) -> ScanResult:
        """Every file under ``root`` (or ``root`` itself if a file), except those in ``skip``."""
        skipped = {p.resolve() for p in skip}
        result = ScanResult()
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            if path.resolve() not in skipped:
                result.extend(self.scan_file(path))
        return result

    def scan_sqlite(
        self, db: Path, tables: Mapping[str, tuple[str, Sequence[Any]]] | None = None
    ) -> ScanResult:
        """Every column of every row of ``tables`` (table -> (WHERE clause, parameters)), or of
        every table of the database when ``tables`` is None."""
        result = ScanResult()
        connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            names = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            selected = {name: ("", ()) for name in names} if tables is None else dict(tables)
            for table, (where, parameters) in selected.items():
                if table not in names:
                    continue
                cursor = connection.execute(
                    f'SELECT rowid, * FROM "{table}"' + (f" WHERE {where}" if where else ""),  # noqa: S608
                    tuple(parameters),
                )
                columns = [d[0] for d in cursor.description][1:]
                for rowid, *values in cursor:
                    result.rows += 1
                    for column, value in zip(columns, values, strict=True):
                        text = _as_text(value)
                        if text:
                            result.extend(self.scan_text(text, f"{db.name}:{table}.{column} (rowid {rowid})"))
        finally:
            connection.close()
        return result


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)
