"""Signed callbacks: a background thread that POSTs queued invoice bodies and retries non-200 answers."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import sqlite3
import threading
import time
from urllib.parse import urlsplit

import httpx

from payout_sandbox.settings import Settings
from payout_sandbox.store import Store

log = logging.getLogger(__name__)


def sign(secret: str, body: bytes) -> str:
    """X-Signature: base64 of the binary SHA-1 digest of secret + raw body + secret (not an HMAC)."""
    digest = hashlib.sha1(secret.encode() + body + secret.encode()).digest()  # noqa: S324 - vendor's scheme
    return base64.b64encode(digest).decode("ascii")


class CallbackDispatcher:
    """Delivers due callbacks in the order they were queued; attempt n+1 waits n * retry interval.

    The queue lives in SQLite, so callbacks due before a restart are sent after it.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="payout-sandbox-callbacks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.settings.callback_timeout + 2)

    def _run(self) -> None:
        with httpx.Client(timeout=self.settings.callback_timeout, follow_redirects=False) as client:
            while not self._stop.is_set():
                try:
                    sent = self.deliver_due(client)
                except Exception:
                    log.exception("callback delivery failed")
                    sent = 0
                if not sent:
                    self._stop.wait(self.settings.sweep_interval)

    def deliver_due(self, client: httpx.Client) -> int:
        """Send every callback due now; returns how many were attempted."""
        conn = self.store.connection()
        due = conn.execute(
            "SELECT seq, url, body, attempts FROM callbacks WHERE state = 'pending' AND next_at <= ? "
            "ORDER BY seq LIMIT 50",
            (time.time(),),
        ).fetchall()
        for row in due:
            if self._stop.is_set():
                break
            body = row["body"].encode()
            if not self.settings.external_callbacks and not is_local_url(row["url"]):
                self._record(row, None, final=True)
                log.info("callback %s not sent: its url is not on this machine", row["seq"])
                continue
            try:
                response = client.post(
                    row["url"],
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Signature": sign(self.settings.callback_secret, body),
                    },
                )
                code: int | None = response.status_code
            except httpx.HTTPError as exc:
                log.info("callback %s to its url failed: %s", row["seq"], type(exc).__name__)
                code = None
            self._record(row, code)
        return len(due)

    def _record(self, row: sqlite3.Row, code: int | None, final: bool = False) -> None:
        """Note an attempt: delivered on 200, else retried after attempts * interval, up to the limit."""
        attempts = row["attempts"] + 1
        now = time.time()
        if code == 200:
            state, next_at = "delivered", now
        elif final or attempts >= self.settings.callback_max_attempts:
            state, next_at = "failed", now
        else:
            state, next_at = "pending", now + attempts * self.settings.callback_retry_interval
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE callbacks SET attempts = ?, state = ?, next_at = ?, last_status = ?, "
                "delivered = CASE WHEN ? = 'delivered' THEN ? ELSE delivered END WHERE seq = ?",
                (attempts, state, next_at, code, state, now, row["seq"]),
            )


def is_local_url(url: str) -> bool:
    """True for callback URLs on this machine (loopback), the only ones sent unless allowed otherwise."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
