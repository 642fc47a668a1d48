"""The gateway's signed callbacks: the signature, and the store shared by the receiver and the waits.

The gateway POSTs an invoice (the JSON:API resource of ``GET /payout-invoices/{id}``) to the
callback URL, signed in ``X-Signature`` = base64(sha1(secret + raw body + secret)) (a binary digest,
not an HMAC) with the account's test or live callback secret, by the invoice's ``test_mode``. The
connection keeps them in the extras ``test_callback_secret`` and ``callback_secret``.

Callbacks may be duplicated, replayed, out of order or merged: a callback is only a hint. The
receiver (the Payouts view plugin, ``POST /payouts/callbacks``) re-reads the invoice through the
hook and records what the gateway says in a :class:`CallbackStore`: one row per invoice, never
replaced by an older ``updated``; each state is handled once; and every valid callback notes a
*hint* that :class:`~payout_gateway.triggers.PayoutInvoiceTrigger` checks between its reads, so a
waiting payout reads its invoice at once instead of at its next poll.

The store is a SQLite file (``PAYOUT_CALLBACK_STORE``, default ``$AIRFLOW_HOME/payout_callbacks.sqlite``)
on a disk that the api-server and the triggerer share (one machine, or a shared volume). It holds
ids, statuses and amounts only: never fields (card or account numbers).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from payout_gateway.models import PayoutInvoice
from payout_gateway.money import format_amount

#: Connection extras holding the callback secrets (live and test mode).
CALLBACK_SECRET_EXTRA = "callback_secret"  # noqa: S105 - the name of an extra
TEST_CALLBACK_SECRET_EXTRA = "test_callback_secret"  # noqa: S105 - the name of an extra
STORE_ENV = "PAYOUT_CALLBACK_STORE"
#: The largest callback body accepted (an invoice resource is a few KiB).
MAX_BODY_BYTES = 256 * 1024


def signature(secret: str, body: bytes) -> str:
    """``base64(sha1(secret + body + secret))``, the gateway's ``X-Signature``."""
    digest = hashlib.sha1(secret.encode() + body + secret.encode()).digest()  # noqa: S324 - vendor's scheme
    return base64.b64encode(digest).decode("ascii")


def signature_valid(secret: str | None, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` under ``secret`` (constant-time compare)."""
    if not secret or not header:
        return False
    return hmac.compare_digest(signature(secret, body).encode("ascii"), header.strip().encode("utf-8"))


def secret_for(extra: Mapping[str, Any], test_mode: bool) -> str | None:
    """The connection's callback secret for ``test_mode`` (None when not configured)."""
    value = extra.get(TEST_CALLBACK_SECRET_EXTRA if test_mode else CALLBACK_SECRET_EXTRA)
    return str(value) if value not in (None, "") else None


class CallbackError(ValueError):
    """A callback body that is not an invoice (the text never echoes the body)."""


@dataclass(frozen=True)
class Callback:
    """What a callback says about its invoice (a hint: the receiver reads the invoice itself)."""

    invoice_id: str
    test_mode: bool
    status: str | None
    resolution: str | None
    updated: float | None
    processed_amount: str | None

    @property
    def key(self) -> str:
        """The state this callback reports: equal keys are duplicates (replays, re-deliveries)."""
        parts = [self.invoice_id, self.status, self.resolution, self.updated, self.processed_amount]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def epoch(value: Any) -> float | None:
    """A gateway timestamp (epoch seconds, or ISO-8601 text) as epoch seconds; None if absent/unreadable."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp()


def parse_callback(body: bytes) -> Callback:
    """The invoice a callback body describes; :class:`CallbackError` if it is not one."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise CallbackError("the body is not JSON") from None
    data = document.get("data", document) if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise CallbackError("the body is not an invoice resource")
    attributes = data.get("attributes") if isinstance(data.get("attributes"), dict) else data
    invoice_id = data.get("id")
    if not isinstance(invoice_id, str) or not invoice_id or len(invoice_id) > 128:
        raise CallbackError("the body has no invoice id")

    def text(key: str) -> str | None:
        value = attributes.get(key)
        return None if value is None else str(value)[:64]

    return Callback(
        invoice_id=invoice_id,
        test_mode=attributes.get("test_mode") is True,
        status=text("status"),
        resolution=text("resolution"),
        updated=epoch(attributes.get("updated")),
        processed_amount=text("processed_amount"),
    )


def store_path() -> Path:
    """``PAYOUT_CALLBACK_STORE``, else ``$AIRFLOW_HOME/payout_callbacks.sqlite``."""
    configured = os.environ.get(STORE_ENV, "").strip()
    if configured:
        return Path(configured)
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(home) / "payout_callbacks.sqlite"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS handled (key TEXT PRIMARY KEY, invoice_id TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS hints (invoice_id TEXT PRIMARY KEY, at REAL NOT NULL, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS invoices (
    invoice_id TEXT PRIMARY KEY,
    reference_id TEXT,
    status TEXT NOT NULL,
    resolution TEXT,
    amount TEXT,
    processed_amount TEXT,
    currency TEXT,
    updated REAL,
    recorded_at REAL NOT NULL
);
"""


class CallbackStore:
    """The SQLite file of callback hints and the gateway states read after them (see module doc)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else store_path()

    @contextlib.contextmanager
    def _connect(self, create: bool = True) -> Iterator[sqlite3.Connection | None]:
        if not create and not self.path.exists():
            yield None
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            yield conn
        finally:
            conn.close()

    def note_hint(self, invoice_id: str) -> None:
        """A valid callback arrived for ``invoice_id`` (waits for it read it at once)."""
        with self._connect() as conn:
            assert conn is not None
            conn.execute(
                "INSERT INTO hints (invoice_id, at, count) VALUES (?, ?, 1) "
                "ON CONFLICT(invoice_id) DO UPDATE SET at = excluded.at, count = count + 1",
                (invoice_id, time.time()),
            )

    def hinted_since(self, invoice_ids: Sequence[str], since: float) -> bool:
        """Whether a callback for one of ``invoice_ids`` arrived after ``since`` (epoch seconds)."""
        if not invoice_ids:
            return False
        with self._connect(create=False) as conn:
            if conn is None:
                return False
            marks = ",".join("?" * len(invoice_ids))
            row = conn.execute(
                f"SELECT 1 FROM hints WHERE at > ? AND invoice_id IN ({marks}) LIMIT 1",  # noqa: S608
                (since, *invoice_ids),
            ).fetchone()
            return row is not None

    def handled(self, key: str) -> bool:
        """Whether the state ``key`` (see :attr:`Callback.key`) was handled already."""
        with self._connect() as conn:
            assert conn is not None
            return conn.execute("SELECT 1 FROM handled WHERE key = ?", (key,)).fetchone() is not None

    def mark_handled(self, key: str, invoice_id: str) -> None:
        with self._connect() as conn:
            assert conn is not None
            conn.execute(
                "INSERT OR IGNORE INTO handled (key, invoice_id, at) VALUES (?, ?, ?)",
                (key, invoice_id, time.time()),
            )

    def latest(self, invoice_id: str) -> dict[str, Any] | None:
        """The last recorded gateway state of ``invoice_id``."""
        found = self.latest_many([invoice_id])
        return found.get(invoice_id)

    def latest_many(self, invoice_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The recorded states of ``invoice_ids`` (those known), by invoice id."""
        ids = list(dict.fromkeys(invoice_ids))
        if not ids:
            return {}
        found: dict[str, dict[str, Any]] = {}
        with self._connect(create=False) as conn:
            if conn is None:
                return {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(
                    f"SELECT * FROM invoices WHERE invoice_id IN ({marks})",  # noqa: S608
                    chunk,
                ):
                    found[row["invoice_id"]] = dict(row)
        return found

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The most recently recorded invoice states, newest first."""
        with self._connect(create=False) as conn:
            if conn is None:
                return []
            rows = conn.execute("SELECT * FROM invoices ORDER BY recorded_at DESC LIMIT ?", (limit,))
            return [dict(r) for r in rows]

    def record(self, invoice: PayoutInvoice, key: str) -> bool:
        """Record ``invoice`` as read from the gateway and mark ``key`` handled, in one transaction.

        The record is kept only if it is not older (``updated``) than the one stored: returns
        False (nothing changed but the key) when the stored state is newer.
        """
        updated = epoch(invoice.updated)
        with self._connect() as conn:
            assert conn is not None
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT updated FROM invoices WHERE invoice_id = ?", (invoice.id,)
                ).fetchone()
                stored = None if row is None else row["updated"]
                newer = stored is None or (updated is not None and updated >= stored)
                if newer:
                    conn.execute(
                        "INSERT OR REPLACE INTO invoices (invoice_id, reference_id, status, resolution, "
                        "amount, processed_amount, currency, updated, recorded_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            invoice.id,
                            invoice.reference_id,
                            invoice.status.value,
                            invoice.resolution,
                            format_amount(invoice.amount, invoice.currency),
                            format_amount(invoice.processed_amount, invoice.currency),
                            invoice.currency,
                            updated,
                            time.time(),
                        ),
                    )
                conn.execute(
                    "INSERT OR IGNORE INTO handled (key, invoice_id, at) VALUES (?, ?, ?)",
                    (key, invoice.id, time.time()),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return newer
