"""The batch file of a chaos run: valid payouts plus invalid rows of every kind, and what is in it.

Valid rows pay USD through ``test_usd`` (a 12-digit account) or ``card`` (a 16-digit card number),
each number used once. Invalid rows, each of which must be rejected and never reach the gateway:

- ``amount_grammar``: ``1e3``, ``1_000``, full-width digits, a sign, three decimals, ...;
- ``missing_field``: no account / card number, or no reference_id;
- ``bad_regexp``: an account or card number the service's regexp refuses;
- ``duplicate_reference``: two rows with one reference_id (both are rejected);
- ``unknown_service``: a service the gateway does not offer;
- ``card_in_amount``: a card number typed into ``service_amount``;
- ``shifted_row``: a missing or extra value shifts the columns, so a card number lands in
  ``service_amount`` or an account number in ``reference_id``.

Every card and account number of the file is listed in :attr:`ChaosBatch.numbers` (for the leak
scan).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from payout_jobs.batch_file import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

#: The batch file's columns, as the reader declares them.
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
#: Invalid rows of the full chaos run (50 rows).
FULL_INVALID: Mapping[str, int] = {
    "amount_grammar": 10,
    "missing_field": 8,
    "bad_regexp": 8,
    "duplicate_reference": 10,
    "unknown_service": 8,
    "card_in_amount": 3,
    "shifted_row": 3,
}
#: Invalid rows of the small run in the default test suite (11 rows, every kind and both shifts).
SMALL_INVALID: Mapping[str, int] = {
    "amount_grammar": 3,
    "missing_field": 1,
    "bad_regexp": 1,
    "duplicate_reference": 2,
    "unknown_service": 1,
    "card_in_amount": 1,
    "shifted_row": 2,
}
BAD_AMOUNTS = ("1e3", "1_000", "\uff11\uff12", "+10", "12.345", "-5", "abc", "10.5.1", "0x1F", "1,5")
FAMOUS_CARD = "4111111111111111"


def luhn_complete(prefix: str) -> str:
    """``prefix`` plus the Luhn check digit (a card number that passes the checksum)."""
    total = 0
    for i, ch in enumerate(reversed(prefix)):
        digit = int(ch)
        if i % 2 == 0:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return prefix + str((10 - total % 10) % 10)


@dataclass(frozen=True)
class PlannedRow:
    """One row of the file and what it is meant to be."""

    row: int
    kind: str
    cells: tuple[str, ...] = field(repr=False)

    @property
    def valid(self) -> bool:
        return self.kind == "valid"

    @property
    def reference_id(self) -> str:
        return self.cells[3] if len(self.cells) > 3 else ""

    @property
    def amount(self) -> str:
        return self.cells[1]


@dataclass
class ChaosBatch:
    """The rows of a chaos batch file and every card or account number they hold."""

    rows: list[PlannedRow]
    numbers: set[str]

    def write(self, path: Path) -> Path:
        """Write the file (header, then each row's cells as they are: shifted rows stay shifted)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for planned in self.rows:
                writer.writerow(planned.cells)
        return path

    @property
    def valid_rows(self) -> list[PlannedRow]:
        return [r for r in self.rows if r.valid]

    def valid_references(self, batch_id: str) -> dict[str, PlannedRow]:
        """Gateway reference -> row, for the rows that must be paid."""
        return {f"{batch_id}:{r.reference_id}": r for r in self.valid_rows}


class _Numbers:
    """Unique account and card numbers from a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = {FAMOUS_CARD}

    def keep(self, value: str) -> str:
        """Record a number that a row holds (also a cut or invalid one)."""
        self.used.add(value)
        return value

    def _unique(self, make: Callable[[], str]) -> str:
        while True:
            value = make()
            if value not in self.used:
                self.used.add(value)
                return value

    def account(self) -> str:
        return self._unique(lambda: "73" + "".join(self.rng.choices("0123456789", k=10)))

    def card(self) -> str:
        return self._unique(lambda: luhn_complete("4" + "".join(self.rng.choices("0123456789", k=14))))


def _row(service: str, amount: str, fields: str, reference: str, description: str = "") -> tuple[str, ...]:
    return (service, amount, fields, reference, description, "", "", "")


def _valid(i: int, rng: random.Random, numbers: _Numbers) -> tuple[str, ...]:
    reference = f"v-{i:05d}"
    if i % 4 == 3:
        amount = f"{rng.randint(1, 4999)}.{rng.randint(0, 99):02d}"
        fields = f"card_number:{numbers.card()};card_holder:Holder {i}"
        return ("card", amount, fields, reference, "chaos card payout", f"reference_id:cust-{i}", "", "")
    amount = f"{rng.randint(1, 99999)}.{rng.randint(0, 99):02d}" if i % 5 else str(rng.randint(1, 999))
    return _row("test_usd", amount, f"account:{numbers.account()}", reference, "chaos payout")


def _invalid(kind: str, n: int, numbers: _Numbers) -> list[tuple[str, ...]]:
    """The ``n``-th row(s) of an invalid kind (a duplicate reference makes two rows every 2)."""
    ref = f"bad-{kind.replace('_', '-')}-{n}"
    if kind == "amount_grammar":
        return [_row("test_usd", BAD_AMOUNTS[n % len(BAD_AMOUNTS)], f"account:{numbers.account()}", ref)]
    if kind == "missing_field":
        choices = [
            _row("test_usd", "10.00", "", ref),
            _row("card", "10.00", "card_holder:No Number", ref),
            _row("test_usd", "10.00", f"account:{numbers.account()}", ""),
        ]
        return [choices[n % len(choices)]]
    if kind == "bad_regexp":
        choices = [
            _row("test_usd", "10.00", "account:12AB34", ref),
            _row("card", "10.00", f"card_number:{numbers.keep(numbers.card()[:15])}", ref),  # 15 digits
            _row("test_usd", "10.00", f"account:{numbers.card()}", ref),  # 16 digits
        ]
        return [choices[n % len(choices)]]
    if kind == "duplicate_reference":
        if n % 2:
            return []
        dup = f"dup-{n // 2}"
        return [
            _row("test_usd", "11.00", f"account:{numbers.account()}", dup, "first of a duplicate"),
            _row("test_usd", "12.00", f"account:{numbers.account()}", dup, "second of a duplicate"),
        ]
    if kind == "unknown_service":
        service = ("paypal", "no_such_service", "test_eur")[n % 3]  # test_eur: not a USD service
        return [_row(service, "10.00", f"account:{numbers.account()}", ref)]
    if kind == "card_in_amount":
        card = FAMOUS_CARD if n == 0 else numbers.card()
        return [_row("test_usd", card, f"account:{numbers.account()}", ref)]
    if kind == "shifted_row":
        if n % 2 == 0:  # the amount was left out: the card number moved into service_amount
            card = FAMOUS_CARD if n == 0 else numbers.card()
            return [("card", card, ref, "", "", "", "", "")]
        # an unquoted "10,00": the account number moved into reference_id (9 values, 8 columns)
        return [("test_usd", "10", "00", f"account:{numbers.account()}", ref, "", "", "", "")]
    raise ValueError(f"unknown invalid kind {kind}")


def make_batch(valid: int, invalid: Mapping[str, int] = FULL_INVALID, seed: int = 7) -> ChaosBatch:
    """``valid`` good rows with the invalid rows spread among them (seeded: same seed, same file)."""
    rng = random.Random(seed)
    numbers = _Numbers(rng)
    bad: list[tuple[str, tuple[str, ...]]] = []
    for kind, count in invalid.items():
        rows = [cells for n in range(count) for cells in _invalid(kind, n, numbers)]
        bad.extend((kind, cells) for cells in rows[:count])
    rng.shuffle(bad)
    good = [("valid", _valid(i, rng, numbers)) for i in range(valid)]
    size = valid + len(bad)
    slots = set(rng.sample(range(size), len(bad)))
    bad_rows, good_rows = iter(bad), iter(good)
    merged = [next(bad_rows) if i in slots else next(good_rows) for i in range(size)]
    rows = [PlannedRow(row=i, kind=kind, cells=cells) for i, (kind, cells) in enumerate(merged, start=1)]
    return ChaosBatch(rows=rows, numbers=numbers.used)
