"""``POST /payouts/callbacks`` with the sandbox's real signed callbacks.

The Payouts view app is served by a real uvicorn on a free port, mounted at ``/payouts`` as the
api-server mounts it; the sandbox delivers its callbacks there (its account ``--callback-url``).
Callbacks captured from the sandbox (an invoice with its own ``callback_url`` pointing at a
recorder) are replayed, tampered with and delivered out of order.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from payout_gateway.callbacks import CallbackStore, signature
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.triggers import PayoutInvoiceTrigger
from payouts_view.app import create_app

from .conftest import FAST, card_request
from .receiver import receiver

LIVE_SECRET = "live-callback-secret-for-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def plugin_url() -> Iterator[str]:
    """The plugin app under /payouts, served by uvicorn on 127.0.0.1 (in this process)."""
    root = FastAPI()
    root.mount("/payouts", create_app())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(root, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}/payouts"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def callback_sandbox(sandbox_factory: Any, plugin_url: str) -> Any:
    """A sandbox whose account callback URL is the plugin; payouts stay 'processing' until the
    test moves the sandbox clock (so that each state has its own ``updated`` second)."""
    return sandbox_factory(
        "--processing-delay",
        "30",
        "--callback-url",
        f"{plugin_url}/callbacks",
        "--callback-retry-interval",
        "0.2",
    )


@pytest.fixture
def gateway(callback_sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    callback_sandbox.reset()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT",
        callback_sandbox.airflow_connection(
            test_callback_secret=callback_sandbox.callback_secret, callback_secret=LIVE_SECRET
        ),
    )
    monkeypatch.setenv("PAYOUT_CALLBACK_STORE", str(tmp_path / "callbacks.sqlite"))
    return callback_sandbox


def settle(sandbox: Any) -> None:
    """Move the sandbox clock past the processing delay: processing payouts become final."""
    sandbox.admin("POST", "clock", json={"advance_seconds": 60})


def wait_until(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.05)
    raise AssertionError("timed out")


def captured_callbacks(sandbox: Any, reference: str) -> dict[str, tuple[bytes, str]]:
    """A payout's real signed callbacks (processing, then processed), captured by a recorder."""
    hook = PayoutGatewayHook(**FAST)
    with receiver({"/cb": {}}) as recorder:
        invoice = hook.create_invoice(card_request(reference, callback_url=f"{recorder.url}/cb"))
        hook.process_invoice(invoice.id)
        wait_until(lambda: len(recorder.requests) >= 1)
        settle(sandbox)
        wait_until(lambda: len(recorder.requests) >= 2)
    found = {}
    for request in recorder.requests:
        status = json.loads(request.body)["data"]["attributes"]["status"]
        found[status] = (request.body, request.headers["X-Signature"])
    assert set(found) == {"processing", "processed"}, set(found)
    return found


def post(plugin_url: str, body: bytes, sig: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({"X-Signature": sig} if sig is not None else {})}
    return httpx.post(f"{plugin_url}/callbacks", content=body, headers=headers, timeout=30)


def test_sandbox_callbacks_record_what_the_gateway_says(gateway: Any) -> None:
    hook = PayoutGatewayHook(**FAST)
    invoice = hook.create_invoice(card_request("cb-real-1"))  # no callback_url: the account's
    hook.process_invoice(invoice.id)
    store = CallbackStore()
    first = wait_until(lambda: store.latest(invoice.id))
    assert first["status"] == "processing"
    settle(gateway)
    final = wait_until(lambda: (r := store.latest(invoice.id)) and r["status"] == "processed" and r)

    now = hook.get_invoice(invoice.id)
    assert (final["status"], final["amount"], final["processed_amount"], final["currency"]) == (
        now.status.value,
        "10.00",
        "10.00",
        "USD",
    )
    assert final["reference_id"] == "cb-real-1"
    # the sandbox saw its callbacks accepted (HTTP 200), each once
    time.sleep(0.3)
    read = httpx.get(f"{gateway.api_url}/payout-invoices/{invoice.id}", auth=gateway.auth, timeout=30)
    logs = read.json()["data"]["attributes"]["callback_logs"]
    assert [(log["state"], log["response_code"], log["attempts"]) for log in logs] == [
        ("delivered", 200, 1),
        ("delivered", 200, 1),
    ]


def test_tampered_or_unsigned_callbacks_are_refused(gateway: Any, plugin_url: str) -> None:
    callbacks = captured_callbacks(gateway, "cb-tamper-1")
    body, sig = callbacks["processing"]
    tampered = body.replace(b'"processing"', b'"processed"', 1)
    assert tampered != body

    assert post(plugin_url, tampered, sig).status_code == 401
    assert post(plugin_url, body, None).status_code == 401
    assert post(plugin_url, body, sig[:-2] + "AA").status_code == 401
    # the key follows test_mode: a test-mode body signed with the live secret is refused
    assert post(plugin_url, body, signature(LIVE_SECRET, body)).status_code == 401
    assert post(plugin_url, b"not json", sig).status_code == 400
    for position in range(0, len(body), max(1, len(body) // 40)):  # any changed byte breaks it
        changed = body[:position] + bytes([body[position] ^ 0x01]) + body[position + 1 :]
        assert post(plugin_url, changed, sig).status_code in (400, 401), position
    assert post(plugin_url, body + b" " * 300_000, sig).status_code == 413
    invoice_id = json.loads(body)["data"]["id"]
    assert CallbackStore().latest(invoice_id) is None  # nothing recorded from a refused callback

    answer = post(plugin_url, body, sig)  # the untouched one is taken
    assert answer.status_code == 200 and answer.json()["result"] == "recorded"


def test_replayed_callback_is_handled_once(gateway: Any, plugin_url: str) -> None:
    body, sig = captured_callbacks(gateway, "cb-replay-1")["processed"]
    first = post(plugin_url, body, sig)
    assert first.status_code == 200 and first.json() == {
        "result": "recorded",
        "invoice_id": json.loads(body)["data"]["id"],
        "status": "processed",
    }
    for _ in range(3):
        again = post(plugin_url, body, sig)
        assert again.status_code == 200 and again.json()["result"] == "duplicate"


def test_older_callback_never_overwrites_a_newer_state(gateway: Any, plugin_url: str) -> None:
    callbacks = captured_callbacks(gateway, "cb-order-1")
    older, newer = callbacks["processing"], callbacks["processed"]
    assert (
        json.loads(older[0])["data"]["attributes"]["updated"]
        < json.loads(newer[0])["data"]["attributes"]["updated"]
    )
    invoice_id = json.loads(newer[0])["data"]["id"]

    assert post(plugin_url, *newer).json()["result"] == "recorded"
    late = post(plugin_url, *older)
    assert late.status_code == 200 and late.json() == {
        "result": "stale",
        "invoice_id": invoice_id,
        "status": "processed",
    }
    assert CallbackStore().latest(invoice_id)["status"] == "processed"


async def test_a_callback_ends_a_waiting_trigger_sleep(gateway: Any) -> None:
    hook = PayoutGatewayHook(**FAST)
    invoice = hook.create_invoice(card_request("cb-wake-1"))
    hook.process_invoice(invoice.id)
    # polls every 10 minutes: only a callback can end this wait within the test's timeout
    trigger = PayoutInvoiceTrigger(
        [invoice.id], poll_interval=600, end_time=time.time() + 900, hook_params=FAST
    )
    waiting = asyncio.create_task(trigger._wait())
    await asyncio.sleep(1.0)  # the first read (processing) is done; the trigger sleeps
    assert not waiting.done()
    await asyncio.to_thread(settle, gateway)
    event = await asyncio.wait_for(waiting, timeout=60)
    assert event["status"] == "success"
    assert [i["status"] for i in event["invoices"]] == ["processed"]


def test_signed_callback_for_an_invoice_the_gateway_does_not_have(gateway: Any, plugin_url: str) -> None:
    body, _ = captured_callbacks(gateway, "cb-unknown-1")["processed"]
    forged_id = body.replace(json.loads(body)["data"]["id"].encode(), b"cpoi_notours0000000000")
    answer = post(plugin_url, forged_id, signature(gateway.callback_secret, forged_id))
    assert answer.status_code == 200 and answer.json()["result"] == "unknown_invoice"
    assert CallbackStore().latest("cpoi_notours0000000000") is None


def test_the_key_follows_test_mode(gateway: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox (test mode only) signs with its one secret. Configured as the *live* secret, with
    another test-mode secret, its callbacks for a test payout are refused: 401, as the sandbox logs."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT",
        gateway.airflow_connection(callback_secret=gateway.callback_secret, test_callback_secret="other"),
    )
    hook = PayoutGatewayHook(**FAST)
    invoice = hook.create_invoice(card_request("cb-key-1"))
    hook.process_invoice(invoice.id)

    def first_answer() -> Any:
        read = httpx.get(f"{gateway.api_url}/payout-invoices/{invoice.id}", auth=gateway.auth, timeout=30)
        logs = read.json()["data"]["attributes"]["callback_logs"]
        return logs and logs[0]["response_code"]

    assert wait_until(first_answer) == 401
    assert CallbackStore().latest(invoice.id) is None
