"""``GET /_sandbox/faults/counts``: every call and every applied fault, per endpoint and kind.

The counts are what a chaos run reports as "faults injected", so they must equal what a plain HTTP
client saw: one count per fault that took effect, none for a drawn rule that another one pre-empted.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest


def counts(sandbox: Any) -> dict[str, Any]:
    return sandbox.admin("GET", "faults/counts").json()


def test_each_kind_is_counted_on_its_endpoint(sandbox: Any, api: httpx.Client, new_body: Any) -> None:
    invoice = api.post("/api/payout-invoices", json=new_body("ref-count-0")).json()["data"]
    sandbox.set_faults(
        [
            {"endpoint": "get_service", "kind": "error_before", "status": 503},
            {"endpoint": "list_services", "kind": "rate_limit", "seconds": 1},
            {"endpoint": "create_invoice", "kind": "error_after_commit", "status": 502},
            {"endpoint": "process_invoice", "kind": "delay", "seconds": 0.1},
            {"endpoint": "get_invoice", "kind": "reset"},
        ]
    )
    assert api.get("/api/payout-services/test_usd").status_code == 503
    assert api.get("/api/payout-services/test_usd").status_code == 503
    assert api.get("/api/payout-services").status_code == 429
    assert api.post("/api/payout-invoices", json=new_body("ref-count-1")).status_code == 502
    assert api.post(f"/api/payout-invoices/{invoice['id']}/process").status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        api.get(f"/api/payout-invoices/{invoice['id']}")
    assert api.get("/api/payout-invoices").status_code == 200  # no rule for list_invoices

    seen = counts(sandbox)
    assert seen["injected"] == {
        "get_service": {"error_before": 2},
        "list_services": {"rate_limit": 1},
        "create_invoice": {"error_after_commit": 1},
        "process_invoice": {"delay": 1},
        "get_invoice": {"reset": 1},
    }
    assert seen["requests"] == {
        "get_service": 2,
        "list_services": 1,
        "create_invoice": 2,  # the first create, before the plan, is a call without a fault
        "process_invoice": 1,
        "get_invoice": 1,
        "list_invoices": 1,
    }
    assert seen["faulted_requests"] == {
        "get_service": 2,
        "list_services": 1,
        "create_invoice": 1,
        "process_invoice": 1,
        "get_invoice": 1,
    }
    assert seen["totals"] == {"requests": 8, "faulted_requests": 6, "injected": 6}


def test_only_faults_that_take_effect_are_counted(sandbox: Any, api: httpx.Client, new_body: Any) -> None:
    """error_before answers before the work: the error_after_commit drawn with it never happens.
    Delays add up with the fault that ends the answer, so both count."""
    invoice = api.post("/api/payout-invoices", json=new_body("ref-count-3")).json()["data"]
    sandbox.admin("DELETE", "faults/counts")
    sandbox.set_faults(
        [
            {"endpoint": "create_invoice", "kind": "error_before"},
            {"endpoint": "create_invoice", "kind": "error_after_commit"},
            {"endpoint": "get_invoice", "kind": "delay", "seconds": 0.05},
            {"endpoint": "get_invoice", "kind": "error_after_commit", "status": 504},
        ]
    )
    assert api.post("/api/payout-invoices", json=new_body("ref-count-2")).status_code == 500
    assert "ref-count-2" not in sandbox.ledger()["references"]
    assert api.get(f"/api/payout-invoices/{invoice['id']}").status_code == 504

    seen = counts(sandbox)
    assert seen["injected"] == {
        "create_invoice": {"error_before": 1},
        "get_invoice": {"delay": 1, "error_after_commit": 1},
    }
    assert seen["faulted_requests"] == {"create_invoice": 1, "get_invoice": 1}
    assert seen["totals"]["injected"] == 3


def test_counts_of_a_random_plan_equal_what_the_client_saw(sandbox: Any, api: httpx.Client) -> None:
    sandbox.set_faults(
        [
            {"endpoint": "*", "kind": "error_before", "rate": 0.2, "status": 500},
            {"endpoint": "*", "kind": "rate_limit", "rate": 0.2, "seconds": 1},
        ],
        seed=5,
    )
    codes = [api.get("/api/payout-services/test_usd").status_code for _ in range(60)]
    codes += [
        api.get(
            "/api/public/payout-invoices",
            params={"filter[reference_id]": "x"},
            headers={"X-Public-Key": sandbox.public_key},
        ).status_code
        for _ in range(40)
    ]

    seen = counts(sandbox)
    assert seen["requests"] == {"get_service": 60, "list_invoices": 40}  # public reads count as list
    assert seen["totals"]["faulted_requests"] == sum(c != 200 for c in codes)
    by_kind = {k: sum(e.get(k, 0) for e in seen["injected"].values()) for k in ("error_before", "rate_limit")}
    assert by_kind == {"error_before": codes.count(500), "rate_limit": codes.count(429)}
    assert codes.count(429) > 0 and codes.count(500) > 0 and codes.count(200) > 0


def test_counters_survive_a_plan_change_and_reset_on_request(sandbox: Any, api: httpx.Client) -> None:
    sandbox.set_faults([{"endpoint": "get_service", "kind": "error_before"}])
    api.get("/api/payout-services/test_usd")
    sandbox.clear_faults()  # clearing the plan keeps what was counted (read the counts after it)
    api.get("/api/payout-services/test_usd")
    assert counts(sandbox)["totals"] == {"requests": 2, "faulted_requests": 1, "injected": 1}

    zero = sandbox.admin("DELETE", "faults/counts").json()
    assert zero["totals"] == {"requests": 0, "faulted_requests": 0, "injected": 0}
    api.get("/api/payout-services/test_usd")
    sandbox.admin("POST", "reset")
    assert counts(sandbox) == {
        "requests": {},
        "faulted_requests": {},
        "injected": {},
        "totals": {"requests": 0, "faulted_requests": 0, "injected": 0},
    }


def test_counts_need_the_admin_login(sandbox: Any) -> None:
    assert httpx.get(f"{sandbox.url}/_sandbox/faults/counts").status_code == 401
