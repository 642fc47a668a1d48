"""Persistence across a restart, concurrent creates with one reference, and every fault kind."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest


def test_invoices_and_statuses_survive_a_restart(sandbox_factory: Any, new_body: Any, tmp_path: Any) -> None:
    db = tmp_path / "persist.db"
    first = sandbox_factory("--processing-delay", "0.2", db=db)
    with first.client() as api:
        done = api.post("/api/payout-invoices", json=new_body("ref-keep-processed")).json()["data"]
        api.post(f"/api/payout-invoices/{done['id']}/process")
        waiting = api.post("/api/payout-invoices", json=new_body("ref-keep-created")).json()["data"]
        in_flight = api.post("/api/payout-invoices", json=new_body("ref-keep-processing")).json()["data"]
        time.sleep(0.4)
        assert (
            api.get(f"/api/payout-invoices/{done['id']}").json()["data"]["attributes"]["status"]
            == "processed"
        )
        api.post(f"/api/payout-invoices/{in_flight['id']}/process")  # still processing when stopped
    first.stop()
    assert first.process.returncode is not None

    second = sandbox_factory("--processing-delay", "0.2", db=db, port=first.port)
    try:
        with second.client() as api:
            statuses = {
                i["id"]: i["attributes"]["status"] for i in api.get("/api/payout-invoices").json()["data"]
            }
            assert statuses[done["id"]] == "processed"
            assert statuses[waiting["id"]] == "created"
            assert statuses[in_flight["id"]] in ("processing", "processed")
            assert api.post(f"/api/payout-invoices/{done['id']}/process").status_code == 409
            assert api.post("/api/payout-invoices", json=new_body("ref-keep-created")).status_code == 409
            time.sleep(0.3)
            final = api.get(f"/api/payout-invoices/{in_flight['id']}").json()["data"]["attributes"]
            assert final["status"] == "processed"
        ledger = second.ledger()["references"]
        assert ledger["ref-keep-processed"] == {
            "invoices": 1,
            "process_calls": 1,
            "invoice_ids": [done["id"]],
        }
    finally:
        second.stop()


def test_fifty_concurrent_creates_with_one_reference_make_one_invoice(sandbox: Any, new_body: Any) -> None:
    body = new_body("ref-race")

    def post(_: int) -> int:
        with httpx.Client(auth=sandbox.auth, timeout=30) as client:
            return client.post(f"{sandbox.api_url}/payout-invoices", json=body).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = list(pool.map(post, range(50)))
    assert codes.count(201) == 1
    assert codes.count(409) == 49
    entry = sandbox.ledger()["references"]["ref-race"]
    assert entry["invoices"] == 1 and len(entry["invoice_ids"]) == 1


def test_fifty_concurrent_process_calls_take_effect_once(
    sandbox: Any, api: httpx.Client, new_body: Any
) -> None:
    invoice = api.post("/api/payout-invoices", json=new_body("ref-race-process")).json()["data"]

    def post(_: int) -> int:
        with httpx.Client(auth=sandbox.auth, timeout=30) as client:
            return client.post(f"{sandbox.api_url}/payout-invoices/{invoice['id']}/process").status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = list(pool.map(post, range(50)))
    assert codes.count(200) == 1 and codes.count(409) == 49
    assert sandbox.ledger()["references"]["ref-race-process"]["process_calls"] == 1


def plain_create(sandbox: Any, body: dict[str, Any], timeout: float = 30) -> httpx.Response:
    """A create from a plain HTTP client (no retries)."""
    return httpx.post(f"{sandbox.api_url}/payout-invoices", json=body, auth=sandbox.auth, timeout=timeout)


@pytest.mark.parametrize("status", [500, 503])
def test_fault_error_before_creates_nothing(sandbox: Any, new_body: Any, status: int) -> None:
    sandbox.set_faults([{"endpoint": "create_invoice", "kind": "error_before", "status": status}])
    response = plain_create(sandbox, new_body("ref-fault-before"))
    assert response.status_code == status
    assert response.json()["errors"][0]["code"] == str(status)
    assert "ref-fault-before" not in sandbox.ledger()["references"]


def test_fault_error_after_commit_created_the_invoice(sandbox: Any, new_body: Any) -> None:
    sandbox.set_faults([{"endpoint": "create_invoice", "kind": "error_after_commit", "status": 502}])
    response = plain_create(sandbox, new_body("ref-fault-after"))
    assert response.status_code == 502
    assert sandbox.ledger()["references"]["ref-fault-after"]["invoices"] == 1
    sandbox.clear_faults()
    assert plain_create(sandbox, new_body("ref-fault-after")).status_code == 409  # a blind retry is refused


def test_fault_reset_drops_the_connection_after_the_work(sandbox: Any, new_body: Any) -> None:
    sandbox.set_faults([{"endpoint": "create_invoice", "kind": "reset"}])
    with pytest.raises(httpx.RemoteProtocolError):
        plain_create(sandbox, new_body("ref-fault-reset"))
    assert sandbox.ledger()["references"]["ref-fault-reset"]["invoices"] == 1


def test_fault_reset_on_process_took_effect(sandbox: Any, api: httpx.Client, new_body: Any) -> None:
    invoice = api.post("/api/payout-invoices", json=new_body("ref-fault-reset-process")).json()["data"]
    sandbox.set_faults([{"endpoint": "process_invoice", "kind": "reset"}])
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{sandbox.api_url}/payout-invoices/{invoice['id']}/process", auth=sandbox.auth)
    sandbox.clear_faults()
    assert sandbox.ledger()["references"]["ref-fault-reset-process"]["process_calls"] == 1


def test_fault_delay_answers_late(sandbox: Any, new_body: Any) -> None:
    sandbox.set_faults([{"endpoint": "create_invoice", "kind": "delay", "seconds": 1.5}])
    with pytest.raises(httpx.ReadTimeout):
        plain_create(sandbox, new_body("ref-fault-slow"), timeout=0.5)
    assert sandbox.ledger()["references"]["ref-fault-slow"]["invoices"] == 1  # done before the answer
    started = time.monotonic()
    assert plain_create(sandbox, new_body("ref-fault-slow-2")).status_code == 201
    assert time.monotonic() - started >= 1.5


def test_fault_rate_limit_with_retry_after(sandbox: Any, new_body: Any) -> None:
    sandbox.set_faults([{"endpoint": "*", "kind": "rate_limit", "seconds": 3}])
    response = plain_create(sandbox, new_body("ref-fault-429"))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["errors"][0]["code"] == "429"
    listing = httpx.get(f"{sandbox.api_url}/payout-services", auth=sandbox.auth)
    assert listing.status_code == 429  # "*" covers every endpoint
    assert "ref-fault-429" not in sandbox.ledger()["references"]


def test_fault_rate_is_seeded(sandbox: Any) -> None:
    def pattern() -> list[int]:
        sandbox.set_faults([{"endpoint": "get_service", "kind": "error_before", "rate": 0.5}], seed=42)
        with sandbox.client() as api:
            return [api.get("/api/payout-services/test_usd").status_code for _ in range(20)]

    first = pattern()
    assert set(first) == {200, 500}
    assert pattern() == first


def test_fault_rules_are_validated(api: httpx.Client) -> None:
    response = api.put("/_sandbox/faults", json={"rules": [{"endpoint": "nowhere", "kind": "explode"}]})
    assert response.status_code == 422
    assert {"rules.0.endpoint", "rules.0.kind"} <= set(response.json()["errors"])
    wrong = api.put(
        "/_sandbox/faults", json={"rules": [{"endpoint": "*", "kind": "rate_limit", "status": 500}]}
    )
    assert wrong.status_code == 422
