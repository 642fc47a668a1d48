"""SQLite persistence: one connection per thread, WAL, short write transactions.

The UNIQUE constraint on ``(reference_id, duplicate_no)`` is what makes a reference create one
invoice only: normal creates always use ``duplicate_no = 0``; only the admin "plant a duplicate"
insert uses a higher number.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS invoices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    reference_id TEXT NOT NULL,
    duplicate_no INTEGER NOT NULL DEFAULT 0,
    service TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount TEXT NOT NULL,
    fee TEXT NOT NULL,
    service_amount TEXT NOT NULL,
    status TEXT NOT NULL,
    resolution TEXT NOT NULL,
    moderation_required INTEGER NOT NULL DEFAULT 0,
    processed_amount TEXT,
    processed_fee TEXT,
    processed_at REAL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    settle_at REAL,
    planned_status TEXT,
    planned_resolution TEXT,
    planned_processed_amount TEXT,
    process_calls INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL,
    fields TEXT NOT NULL,
    test_details TEXT NOT NULL,
    description TEXT,
    customer TEXT,
    metadata TEXT,
    callback_url TEXT,
    test_mode INTEGER NOT NULL DEFAULT 1,
    UNIQUE (reference_id, duplicate_no)
);
CREATE INDEX IF NOT EXISTS invoices_settle ON invoices (settle_at) WHERE settle_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS invoices_status ON invoices (status);
CREATE INDEX IF NOT EXISTS invoices_created ON invoices (created);
CREATE TABLE IF NOT EXISTS callbacks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    invoice_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_status INTEGER,
    created REAL NOT NULL,
    delivered REAL
);
CREATE INDEX IF NOT EXISTS callbacks_due ON callbacks (state, next_at);
CREATE INDEX IF NOT EXISTS callbacks_invoice ON callbacks (invoice_id);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store:
    """The sandbox database. Safe to use from many threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.connection().executescript(SCHEMA)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode; use :meth:`transaction` for writes)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE): committed on success, rolled back on any error."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def get_state(self, key: str, default: str) -> str:
        row = self.connection().execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                with suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
