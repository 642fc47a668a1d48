"""Scripted payout through the sandbox gateway: start it, create, process, read back, stop.

Starts ``payout-sandbox`` on 127.0.0.1 (a free port, a temporary database), creates a payout on
``test_usd`` with a fixed reference_id, processes it, waits for its final status, reads it back
(private and public API), and stops exactly the process it started.

Run: ``.venv/bin/python scripts/sandbox_demo.py``
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

LOGIN = os.environ.get("PAYOUT_SANDBOX_LOGIN", "merchant")
PASSWORD = os.environ.get("PAYOUT_SANDBOX_PASSWORD", "sandbox-secret")
PUBLIC_KEY = os.environ.get("PAYOUT_SANDBOX_PUBLIC_KEY", "pk_test_sandbox")
FINAL = {"processed", "partially_processed", "process_failed", "expired", "terminated", "canceled"}


def say(step: str, detail: str = "") -> None:
    print(f"[sandbox demo] {step}{': ' + detail if detail else ''}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(db: Path, port: int) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).with_name("payout-sandbox"))]
    args = ["--host", "127.0.0.1", "--port", str(port), "--db", str(db), "--processing-delay", "1"]
    log = db.with_suffix(".log").open("wb")
    process = subprocess.Popen([*command, *args], stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"sandbox exited with {process.returncode}; see {db.with_suffix('.log')}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("sandbox did not answer within 30 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop exactly the process this script started."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def data(response: httpx.Response) -> Any:
    """The JSON body with money as Decimal (never binary floats)."""
    return json.loads(response.content, parse_float=Decimal)


def summary(attributes: dict[str, Any]) -> str:
    keys = ("status", "resolution", "amount", "currency", "fee", "writeoff", "processed_amount", "fields")
    return json.dumps({k: attributes.get(k) for k in keys}, default=str)


def run(base: str) -> int:
    api = httpx.Client(base_url=f"{base}/api", auth=(LOGIN, PASSWORD), timeout=10)
    reference_id = f"demo-{time.strftime('%Y%m%dT%H%M%S')}"

    prerequest = api.post(
        "/payout-prerequest", json={"currency": "USD", "amount": 25, "public_key": PUBLIC_KEY}
    )
    prerequest.raise_for_status()
    service = data(prerequest)["data"]["services"]["test_usd"]
    say(
        "prerequest",
        f"test_usd takes {service['amount_min']}..{service['amount_max']} USD, "
        f"fields {[f['key'] for f in service['fields'] if f['required']]} required",
    )

    body = {
        "data": {
            "type": "payout-invoice",
            "attributes": {
                "service": "test_usd",
                "currency": "USD",
                "amount": 25,
                "reference_id": reference_id,
                "test_mode": True,
                "fields": {"account": "4000123456"},
                "description": "sandbox demo payout",
            },
        }
    }
    created = api.post("/payout-invoices", json=body)
    created.raise_for_status()
    invoice = data(created)["data"]
    say("created", f"{invoice['id']} (reference {reference_id}) {summary(invoice['attributes'])}")

    again = api.post("/payout-invoices", json=body)
    say(
        "create again, same reference",
        f"HTTP {again.status_code} -> existing "
        f"{again.json()['errors'][0]['meta']['invoice_id']} (nothing new created)",
    )

    processed = api.post(f"/payout-invoices/{invoice['id']}/process")
    processed.raise_for_status()
    say("process", f"HTTP {processed.status_code}, status {processed.json()['data']['attributes']['status']}")

    twice = api.post(f"/payout-invoices/{invoice['id']}/process")
    say(
        "process again",
        f"HTTP {twice.status_code} {twice.json()['errors'][0]['title']} (not processed twice)",
    )

    deadline = time.monotonic() + 30
    while True:
        attributes = data(api.get(f"/payout-invoices/{invoice['id']}"))["data"]["attributes"]
        if attributes["status"] in FINAL or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    say("read back", summary(attributes))

    public_response = httpx.get(
        f"{base}/api/public/payout-invoices",
        params={"filter[reference_id]": reference_id},
        headers={"X-Public-Key": PUBLIC_KEY},
        timeout=10,
    )
    public = data(public_response)["data"]
    say("public read by reference", f"{[(i['id'], i['status'], str(i['processed_amount'])) for i in public]}")

    ledger = api.get(f"{base}/_sandbox/ledger").json()["references"][reference_id]
    say("ledger", f"{ledger['invoices']} invoice, {ledger['process_calls']} process call")
    ok = attributes["status"] == "processed" and attributes["processed_amount"] == Decimal("25.00")
    ok = ok and ledger["invoices"] == 1 and ledger["process_calls"] == 1
    say("result", "payout created once, processed once, read back as processed" if ok else "UNEXPECTED")
    return 0 if ok else 1


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="payout_sandbox_demo_") as tmp:
        db = Path(tmp) / "sandbox.db"
        port = free_port()
        process = start(db, port)
        say("sandbox started", f"pid {process.pid} on http://127.0.0.1:{port}/api (db {db})")
        try:
            return run(f"http://127.0.0.1:{port}")
        finally:
            stop(process)
            say("sandbox stopped", f"pid {process.pid} (terminated, exit status {process.returncode})")


if __name__ == "__main__":
    sys.exit(main())
