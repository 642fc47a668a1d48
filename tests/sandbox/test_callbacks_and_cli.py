"""Signed callbacks to a receiver in the test, their retries, and the command's help."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest


class Receiver:
    """A callback receiver on 127.0.0.1 that answers the queued status codes (then 200)."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.answers: list[int] = []
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((body, dict(self.headers)))
                time.sleep(receiver.delay)
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/callback"

    def wait_for(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"{len(self.received)} callbacks, expected {count}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def expected_signature(secret: str, body: bytes) -> str:
    digest = hashlib.sha1(secret.encode() + body + secret.encode()).digest()  # noqa: S324 - the vendor scheme
    return base64.b64encode(digest).decode()


def test_signed_callback_on_each_status_change(
    sandbox: Any, api: httpx.Client, new_body: Any, receiver: Receiver
) -> None:
    invoice = api.post(
        "/api/payout-invoices", json=new_body("ref-callback", callback_url=receiver.url)
    ).json()
    invoice_id = invoice["data"]["id"]
    api.post(f"/api/payout-invoices/{invoice_id}/process")
    receiver.wait_for(2)  # processing, then processed (the sweeper finishes it without a read)
    statuses = []
    for body, headers in receiver.received:
        assert headers["X-Signature"] == expected_signature(sandbox.callback_secret, body)
        assert headers["X-Signature"] != expected_signature("another-secret", body)
        resource = json.loads(body)["data"]
        assert resource["type"] == "payout-invoices" and resource["id"] == invoice_id
        statuses.append(resource["attributes"]["status"])
    assert statuses == ["processing", "processed"]
    time.sleep(0.3)
    logs = api.get(f"/api/payout-invoices/{invoice_id}").json()["data"]["attributes"]["callback_logs"]
    assert [log["state"] for log in logs] == ["delivered", "delivered"]


def test_callback_retried_until_200(sandbox_factory: Any, new_body: Any, receiver: Receiver) -> None:
    quick = sandbox_factory("--processing-delay", "5", "--callback-retry-interval", "0.2")
    try:
        receiver.answers = [500, 503]
        with quick.client() as api:
            invoice = api.post(
                "/api/payout-invoices", json=new_body("ref-retry", callback_url=receiver.url)
            ).json()
            started = time.monotonic()
            api.post(f"/api/payout-invoices/{invoice['data']['id']}/process")
            receiver.wait_for(3)
            # linear backoff: +0.2 s, then +0.4 s
            assert time.monotonic() - started >= 0.6
            bodies = {body for body, _ in receiver.received}
            assert len(bodies) == 1  # the same callback, three attempts
            time.sleep(0.3)
            assert len(receiver.received) == 3  # delivered: no more attempts
    finally:
        quick.stop()


def test_callback_attempts_are_bounded(sandbox_factory: Any, new_body: Any, receiver: Receiver) -> None:
    bounded = sandbox_factory(
        "--processing-delay", "30", "--callback-retry-interval", "0.05", "--callback-max-attempts", "3"
    )
    try:
        receiver.answers = [500] * 10
        with bounded.client() as api:
            invoice = api.post(
                "/api/payout-invoices", json=new_body("ref-bounded", callback_url=receiver.url)
            ).json()
            api.post(f"/api/payout-invoices/{invoice['data']['id']}/process")
            receiver.wait_for(3)
            time.sleep(0.5)
            assert len(receiver.received) == 3
            logs = api.get(f"/api/payout-invoices/{invoice['data']['id']}").json()["data"]["attributes"]
            assert logs["callback_logs"][0]["state"] == "failed"
    finally:
        bounded.stop()


def test_a_slow_receiver_does_not_slow_the_api(
    sandbox: Any, api: httpx.Client, new_body: Any, receiver: Receiver
) -> None:
    receiver.delay = 2.0
    invoice = api.post(
        "/api/payout-invoices", json=new_body("ref-slow-hook", callback_url=receiver.url)
    ).json()
    api.post(f"/api/payout-invoices/{invoice['data']['id']}/process")
    receiver.wait_for(1)  # the receiver is now busy with the first callback
    started = time.monotonic()
    for _ in range(5):
        assert api.get(f"/api/payout-invoices/{invoice['data']['id']}").status_code == 200
        assert api.post("/api/payout-invoices", json=new_body()).status_code == 201
    assert time.monotonic() - started < 1.5


def test_queued_callbacks_are_sent_after_a_restart(
    sandbox_factory: Any, new_body: Any, receiver: Receiver, tmp_path: Path
) -> None:
    db = tmp_path / "callbacks.db"
    options = ("--processing-delay", "0.5", "--callback-retry-interval", "3")
    first = sandbox_factory(*options, db=db)
    receiver.answers = [503]  # the first attempt fails; its retry is due 3 s later
    with first.client() as api:
        invoice = api.post(
            "/api/payout-invoices", json=new_body("ref-hook-restart", callback_url=receiver.url)
        )
        api.post(f"/api/payout-invoices/{invoice.json()['data']['id']}/process")
        receiver.wait_for(1)
    first.stop()  # with the retry queued and the final status still ahead
    assert len(receiver.received) == 1
    second = sandbox_factory(*options, db=db, port=first.port)
    try:
        receiver.wait_for(3)
        statuses = [json.loads(body)["data"]["attributes"]["status"] for body, _ in receiver.received]
        # the retry of the queued "processing" callback, and the "processed" one, both from the new process
        assert statuses[0] == "processing" and sorted(statuses[1:]) == ["processed", "processing"]
    finally:
        second.stop()


def test_help_documents_every_option() -> None:
    command = Path(sys.executable).with_name("payout-sandbox")
    result = subprocess.run([str(command), "--help"], capture_output=True, text=True, check=True, timeout=60)
    for option in (
        "--host",
        "--port",
        "--db",
        "--seed",
        "--processing-delay",
        "--invoice-lifetime",
        "--callback-retry-interval",
        "--callback-max-attempts",
        "--callback-timeout",
        "--external-callbacks",
        "--callback-url",
        "--sweep-interval",
        "--log-level",
        "PAYOUT_SANDBOX_LOGIN",
        "PAYOUT_SANDBOX_PASSWORD",
        "PAYOUT_SANDBOX_PUBLIC_KEY",
        "PAYOUT_SANDBOX_CALLBACK_SECRET",
    ):
        assert option in result.stdout, option
