"""The gateway's behaviour over the store: create, process, read, list, settle, expire, admin changes.

Times are on the sandbox clock: real time plus an offset that the admin API can move forward.
Every status change enqueues a signed callback (to the invoice's callback_url, else the account's
``--callback-url``) in the same transaction, so that none is lost across a restart.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import string
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from payout_sandbox.catalog import find_service
from payout_sandbox.errors import ApiError, FieldErrors, not_found
from payout_sandbox.jsonio import dumps
from payout_sandbox.money import compute_fee, fits_currency
from payout_sandbox.render import invoice_money, invoice_resource
from payout_sandbox.settings import Settings
from payout_sandbox.statuses import (
    CREATED,
    ERROR_RESOLUTIONS,
    EXPIRED,
    FINAL_STATUSES,
    PROCESSED,
    PROCESSING,
    decide_outcome,
)
from payout_sandbox.store import Store
from payout_sandbox.validation import NewInvoice

_ALPHANUMERIC = string.ascii_letters + string.digits
_INSERT_COLUMNS = (
    "id", "reference_id", "duplicate_no", "service", "currency", "amount", "fee", "service_amount",
    "status", "resolution", "created", "updated", "options", "fields", "test_details", "description",
    "customer", "metadata", "callback_url", "test_mode",
)  # fmt: skip


def new_invoice_id() -> str:
    return "cpoi_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(16))


@dataclass
class InvoicePage:
    """One page of the cursor list."""

    rows: list[sqlite3.Row]
    has_prev: bool
    has_next: bool


@dataclass
class InvoiceFilter:
    """Filters of the invoice list (created bounds are unix seconds on the sandbox clock, inclusive)."""

    reference_id: str | None = None
    statuses: tuple[str, ...] = ()
    created_gte: int | None = None
    created_lte: int | None = None

    def where(self) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.reference_id is not None:
            clauses.append("reference_id = ?")
            params.append(self.reference_id)
        if self.statuses:
            clauses.append(f"status IN ({','.join('?' * len(self.statuses))})")
            params.extend(self.statuses)
        if self.created_gte is not None:
            clauses.append("created >= ?")
            params.append(self.created_gte)
        if self.created_lte is not None:
            clauses.append("created < ?")
            params.append(self.created_lte + 1)
        return clauses, params


class Gateway:
    """The sandbox gateway's state machine. Thread-safe; every write is one SQLite transaction."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._clock_lock = threading.Lock()
        self._offset = float(store.get_state("clock_offset", "0"))

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        """The sandbox clock (unix seconds)."""
        return time.time() + self._offset

    def advance_clock(self, seconds: float) -> dict[str, float]:
        with self._clock_lock, self.store.transaction() as conn:
            offset = self._offset + seconds
            conn.execute(
                "INSERT INTO state (key, value) VALUES ('clock_offset', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (repr(offset),),
            )
            self._offset = offset
        self.settle_due()
        return self.clock()

    def clock(self) -> dict[str, float]:
        return {"now": self.now(), "offset_seconds": self._offset}

    # ------------------------------------------------------------------ reads

    def _row(self, conn: sqlite3.Connection, invoice_id: str) -> sqlite3.Row | None:
        return conn.execute("SELECT * FROM invoices WHERE id = ?", (invoice_id,)).fetchone()

    @contextmanager
    def _locked_invoice(self, invoice_id: str) -> Iterator[tuple[sqlite3.Connection, sqlite3.Row, float]]:
        """Settle what is due, then hold the store's write lock over the invoice's row (404 when
        there is none); yields the connection, the row and the time the change happens at."""
        self.settle_due()
        now = self.now()
        with self.store.transaction() as conn:
            row = self._row(conn, invoice_id)
            if row is None:
                raise not_found()
            yield conn, row, now

    def get(self, invoice_id: str) -> sqlite3.Row:
        self.settle_due()
        row = self._row(self.store.connection(), invoice_id)
        if row is None:
            raise not_found()
        return row

    def find_by_reference(self, reference_id: str) -> list[sqlite3.Row]:
        self.settle_due()
        return (
            self.store.connection()
            .execute("SELECT * FROM invoices WHERE reference_id = ? ORDER BY seq", (reference_id,))
            .fetchall()
        )

    def _cursor_seq(self, invoice_id: str, name: str) -> int:
        row = (
            self.store.connection().execute("SELECT seq FROM invoices WHERE id = ?", (invoice_id,)).fetchone()
        )
        if row is None:
            raise FieldErrors({name: "Unknown cursor: no invoice with this id."})
        return int(row["seq"])

    def list_invoices(
        self, flt: InvoiceFilter, size: int, after: str | None = None, before: str | None = None
    ) -> InvoicePage:
        """Newest first, by insertion order; ``after`` pages towards older, ``before`` towards newer."""
        self.settle_due()
        conn = self.store.connection()
        clauses, params = flt.where()
        if after is not None and before is not None:
            raise FieldErrors({"page[before]": "Use page[after] or page[before], not both."})
        if before is not None:
            seq = self._cursor_seq(before, "page[before]")
            sql = " AND ".join([*clauses, "seq > ?"])
            rows = conn.execute(
                f"SELECT * FROM invoices WHERE {sql} ORDER BY seq ASC LIMIT ?",  # noqa: S608 - fixed clauses
                (*params, seq, size + 1),
            ).fetchall()
            has_prev = len(rows) > size
            rows = list(reversed(rows[:size]))
            has_next = True
        else:
            cursor_clause = []
            cursor_params: list[Any] = []
            if after is not None:
                cursor_clause = ["seq < ?"]
                cursor_params = [self._cursor_seq(after, "page[after]")]
            sql = " AND ".join([*clauses, *cursor_clause]) or "1=1"
            rows = conn.execute(
                f"SELECT * FROM invoices WHERE {sql} ORDER BY seq DESC LIMIT ?",  # noqa: S608 - fixed clauses
                (*params, *cursor_params, size + 1),
            ).fetchall()
            has_next = len(rows) > size
            rows = rows[:size]
            has_prev = after is not None
        if rows and has_prev and before is None:
            sql = " AND ".join([*clauses, "seq > ?"])
            has_prev = (
                conn.execute(
                    f"SELECT 1 FROM invoices WHERE {sql} LIMIT 1",  # noqa: S608 - fixed clauses
                    (*params, rows[0]["seq"]),
                ).fetchone()
                is not None
            )
        if rows and has_next and before is not None:
            sql = " AND ".join([*clauses, "seq < ?"])
            has_next = (
                conn.execute(
                    f"SELECT 1 FROM invoices WHERE {sql} LIMIT 1",  # noqa: S608 - fixed clauses
                    (*params, rows[-1]["seq"]),
                ).fetchone()
                is not None
            )
        if not rows:
            has_prev = has_next = False
        return InvoicePage(rows, has_prev, has_next)

    def callback_logs(self, invoice_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        logs: dict[str, list[dict[str, Any]]] = {i: [] for i in invoice_ids}
        if not invoice_ids:
            return logs
        marks = ",".join("?" * len(invoice_ids))
        rows = (
            self.store.connection()
            .execute(
                f"SELECT * FROM callbacks WHERE attempts > 0 AND invoice_id IN ({marks}) ORDER BY seq",  # noqa: S608
                invoice_ids,
            )
            .fetchall()
        )
        for row in rows:
            logs[row["invoice_id"]].append(_callback_log(row))
        return logs

    def resource(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return invoice_resource(row, self.callback_logs([row["id"]])[row["id"]])

    def resources(self, rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
        logs = self.callback_logs([r["id"] for r in rows])
        return [invoice_resource(r, logs[r["id"]]) for r in rows]

    def ledger(self) -> dict[str, Any]:
        self.settle_due()
        rows = (
            self.store.connection()
            .execute("SELECT reference_id, id, process_calls FROM invoices ORDER BY seq")
            .fetchall()
        )
        references: dict[str, dict[str, Any]] = {}
        for row in rows:
            entry = references.setdefault(
                row["reference_id"], {"invoices": 0, "process_calls": 0, "invoice_ids": []}
            )
            entry["invoices"] += 1
            entry["process_calls"] += row["process_calls"]
            entry["invoice_ids"].append(row["id"])
        return {"references": references}

    # ------------------------------------------------------------------ writes

    def create(self, new: NewInvoice, *, planted: bool = False) -> sqlite3.Row:
        """Insert a new invoice (201), or 409 when its reference_id exists (unless planted by the admin)."""
        now = self.now()
        fee, service_amount = invoice_money(new.service, new.amount, new.currency)
        invoice_id = new_invoice_id()
        values = {
            "id": invoice_id,
            "reference_id": new.reference_id,
            "duplicate_no": 0,
            "service": new.service.code,
            "currency": new.currency,
            "amount": str(new.amount),
            "fee": str(fee),
            "service_amount": str(service_amount),
            "status": CREATED,
            "resolution": "ok",
            "created": now,
            "updated": now,
            "options": json.dumps(new.options),
            "fields": json.dumps(new.fields),
            "test_details": json.dumps(new.test_details),
            "description": new.description,
            "customer": dumps(new.customer) if new.customer is not None else None,
            "metadata": dumps(new.metadata) if new.metadata is not None else None,
            "callback_url": new.callback_url,
            "test_mode": 1,
        }
        try:
            with self.store.transaction() as conn:
                if planted:
                    values["duplicate_no"] = conn.execute(
                        "SELECT COALESCE(MAX(duplicate_no) + 1, 0) FROM invoices WHERE reference_id = ?",
                        (new.reference_id,),
                    ).fetchone()[0]
                conn.execute(
                    f"INSERT INTO invoices ({','.join(_INSERT_COLUMNS)}) "  # noqa: S608 - fixed columns
                    f"VALUES ({','.join('?' * len(_INSERT_COLUMNS))})",
                    [values[c] for c in _INSERT_COLUMNS],
                )
                if planted and new.status and new.status != CREATED:
                    self._force_status(conn, invoice_id, new.status, now)
                elif new.options.get("auto_process"):
                    row = self._row(conn, invoice_id)
                    assert row is not None
                    self._start_processing(conn, row, now)
        except sqlite3.IntegrityError:
            existing = (
                self.store.connection()
                .execute(
                    "SELECT id FROM invoices WHERE reference_id = ? ORDER BY seq LIMIT 1", (new.reference_id,)
                )
                .fetchone()
            )
            if existing is None:  # not a reference clash (an id clash): let the client retry
                raise
            raise ApiError(
                409,
                title="duplicate_reference_id",
                detail=f"An invoice with reference_id {new.reference_id} already exists.",
                meta={"invoice_id": existing["id"]},
            ) from None
        return self.get(invoice_id)

    def process(self, invoice_id: str) -> sqlite3.Row:
        """Start processing a ``created`` invoice; 409 (and nothing happens) for any other status."""
        with self._locked_invoice(invoice_id) as (conn, row, now):
            started = row["status"] == CREATED and self._start_processing(conn, row, now)
            status = row["status"] if not started else PROCESSING
        if not started:
            raise ApiError(
                409,
                title="invoice_not_processable",
                detail=f"Invoice {invoice_id} is in status {status}; only created invoices can be processed.",
                meta={"invoice_id": invoice_id, "invoice_status": status},
            )
        return self.get(invoice_id)

    def _start_processing(self, conn: sqlite3.Connection, row: sqlite3.Row, now: float) -> bool:
        outcome = decide_outcome(
            seed=self.settings.seed,
            reference_id=row["reference_id"],
            amount=Decimal(row["amount"]),
            currency=row["currency"],
            test_details=json.loads(row["test_details"]),
            allow_partially=bool(json.loads(row["options"]).get("allow_partially", False)),
        )
        changed = conn.execute(
            "UPDATE invoices SET status = ?, resolution = 'ok', updated = ?, settle_at = ?, "
            "planned_status = ?, planned_resolution = ?, planned_processed_amount = ?, "
            "process_calls = process_calls + 1 WHERE id = ? AND status = ?",
            (
                PROCESSING,
                now,
                now + max(self.settings.processing_delay, 0.0),
                outcome.status,
                outcome.resolution,
                None if outcome.processed_amount is None else str(outcome.processed_amount),
                row["id"],
                CREATED,
            ),
        ).rowcount
        if not changed:
            return False
        self._enqueue_callback(conn, row["id"], now)
        if self.settings.processing_delay <= 0:
            settled = self._row(conn, row["id"])
            assert settled is not None
            self._settle(conn, settled)
        return True

    def settle_due(self) -> int:
        """Finish every invoice whose processing delay ran out and expire the overdue ``created`` ones."""
        now = self.now()
        expire_before = now - self.settings.invoice_lifetime
        conn = self.store.connection()
        due = conn.execute(
            "SELECT 1 FROM invoices WHERE (settle_at IS NOT NULL AND settle_at <= ?) "
            "OR (status = ? AND created <= ?) LIMIT 1",
            (now, CREATED, expire_before),
        ).fetchone()
        if due is None:
            return 0
        count = 0
        with self.store.transaction() as conn:
            for row in conn.execute(
                "SELECT * FROM invoices WHERE settle_at IS NOT NULL AND settle_at <= ? ORDER BY settle_at",
                (now,),
            ).fetchall():
                self._settle(conn, row)
                count += 1
            for row in conn.execute(
                "SELECT * FROM invoices WHERE status = ? AND created <= ? ORDER BY seq",
                (CREATED, expire_before),
            ).fetchall():
                at = row["created"] + self.settings.invoice_lifetime
                conn.execute(
                    "UPDATE invoices SET status = ?, resolution = 'operation_expired', "
                    "processed_amount = '0', processed_fee = '0', updated = ? WHERE id = ? AND status = ?",
                    (EXPIRED, at, row["id"], CREATED),
                )
                self._enqueue_callback(conn, row["id"], at)
                count += 1
        return count

    def _settle(self, conn: sqlite3.Connection, row: sqlite3.Row) -> None:
        at = row["settle_at"]
        amount = Decimal(row["amount"])
        processed = (
            None if row["planned_processed_amount"] is None else Decimal(row["planned_processed_amount"])
        )
        processed_fee: Decimal | None = None
        if processed is not None:
            service = find_service(row["service"])
            assert service is not None
            if processed == amount:
                processed_fee = Decimal(row["fee"])
            elif processed > 0:
                processed_fee = compute_fee(
                    processed,
                    row["currency"],
                    service.fee_rate,
                    service.fee_fix,
                    service.fee_min,
                    service.fee_max,
                )
            else:
                processed_fee = Decimal(0)
        conn.execute(
            "UPDATE invoices SET status = ?, resolution = ?, processed_amount = ?, processed_fee = ?, "
            "processed_at = ?, moderation_required = ?, updated = ?, settle_at = NULL WHERE id = ?",
            (
                row["planned_status"],
                row["planned_resolution"],
                None if processed is None else str(processed),
                None if processed_fee is None else str(processed_fee),
                at if row["planned_status"] in FINAL_STATUSES else None,
                int(row["planned_resolution"] in ERROR_RESOLUTIONS),
                at,
                row["id"],
            ),
        )
        self._enqueue_callback(conn, row["id"], at)

    def _force_status(
        self,
        conn: sqlite3.Connection,
        invoice_id: str,
        status: str,
        now: float,
        resolution: str | None = None,
        processed_amount: Decimal | None = None,
        moderation_required: bool | None = None,
    ) -> None:
        row = self._row(conn, invoice_id)
        assert row is not None
        amount = Decimal(row["amount"])
        if processed_amount is None:
            if status == PROCESSED:
                processed_amount = amount
            elif row["processed_amount"] is not None:
                processed_amount = Decimal(row["processed_amount"])
            elif status in FINAL_STATUSES:
                processed_amount = Decimal(0)
        if resolution is None:
            resolution = row["resolution"] if status == row["status"] else "ok"
        if moderation_required is None:
            moderation_required = resolution in ERROR_RESOLUTIONS
        processed_fee = Decimal(0)
        if processed_amount is not None and processed_amount > 0:
            processed_fee = Decimal(row["fee"]) if processed_amount == amount else Decimal(0)
        conn.execute(
            "UPDATE invoices SET status = ?, resolution = ?, processed_amount = ?, processed_fee = ?, "
            "processed_at = COALESCE(processed_at, ?), moderation_required = ?, updated = ?, "
            "settle_at = NULL WHERE id = ?",
            (
                status,
                resolution,
                None if processed_amount is None else str(processed_amount),
                str(processed_fee),
                now if status in FINAL_STATUSES else None,
                int(moderation_required),
                now,
                invoice_id,
            ),
        )
        self._enqueue_callback(conn, invoice_id, now)

    def patch(
        self,
        invoice_id: str,
        status: str | None,
        resolution: str | None,
        processed_amount: Decimal | None,
        moderation_required: bool | None,
    ) -> sqlite3.Row:
        """Force an invoice into a state (admin): e.g. a reversal processed -> canceled."""
        with self._locked_invoice(invoice_id) as (conn, row, now):
            if processed_amount is not None and not fits_currency(processed_amount, row["currency"]):
                raise FieldErrors(
                    {"processed_amount": "This value has more decimals than the currency allows."}
                )
            self._force_status(
                conn,
                invoice_id,
                status or row["status"],
                now,
                resolution,
                processed_amount,
                moderation_required,
            )
        return self.get(invoice_id)

    def reset(self) -> None:
        """Empty the store and put the clock back to real time."""
        with self._clock_lock, self.store.transaction() as conn:
            conn.execute("DELETE FROM invoices")
            conn.execute("DELETE FROM callbacks")
            conn.execute("DELETE FROM state")
            self._offset = 0.0

    # ------------------------------------------------------------------ callbacks

    def _enqueue_callback(self, conn: sqlite3.Connection, invoice_id: str, at: float) -> None:
        row = self._row(conn, invoice_id)
        url = (row["callback_url"] or self.settings.callback_url) if row is not None else None
        if row is None or not url:
            return
        logs = [
            _callback_log(r)
            for r in conn.execute(
                "SELECT * FROM callbacks WHERE invoice_id = ? AND attempts > 0 ORDER BY seq", (invoice_id,)
            )
        ]
        body = dumps({"data": invoice_resource(row, logs)})
        conn.execute(
            "INSERT INTO callbacks (invoice_id, url, body, next_at, created) VALUES (?, ?, ?, ?, ?)",
            (invoice_id, url, body, time.time(), at),
        )


def _callback_log(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "created": int(row["created"]),
        "url": row["url"],
        "attempts": row["attempts"],
        "state": row["state"],
        "response_code": row["last_status"],
    }
