"""The status machine: outcomes from test_details_*, partial payouts, expiry, auto_process, admin changes."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

FINAL = {"processed", "partially_processed", "process_failed", "expired", "canceled"}


def run(api: httpx.Client, create_invoice: Any, wait_status: Any, body: dict[str, Any]) -> dict[str, Any]:
    invoice = create_invoice(body)
    assert api.post(f"/api/payout-invoices/{invoice['id']}/process").status_code == 200
    return wait_status(api, invoice["id"], lambda s: s != "processing")


@pytest.mark.parametrize(
    ("details", "status", "resolution", "moderation"),
    [
        ({}, "processed", "ok", False),
        ({"test_details_payout_status": "process failed"}, "process_failed", "declined_error", False),
        (
            {
                "test_details_payout_status": "Process-Failed",
                "test_details_payout_resolution": "insufficient funds",
            },
            "process_failed",
            "insufficient_funds",
            False,
        ),
        ({"test_details_payout_resolution": "connection error"}, "process_error", "connection_error", True),
        ({"test_details_payout_resolution": "antifraud error"}, "process_failed", "antifraud_error", False),
        ({"test_details_payout_status": "process pending"}, "process_pending", "ok", False),
        ({"test_details_success_rate": "100"}, "processed", "ok", False),
        ({"test_details_success_rate": "0"}, "process_failed", "declined_error", False),
    ],
)
def test_outcome_follows_test_details(
    api: httpx.Client,
    new_body: Any,
    create_invoice: Any,
    wait_status: Any,
    details: dict[str, str],
    status: str,
    resolution: str,
    moderation: bool,
) -> None:
    final = run(api, create_invoice, wait_status, new_body(fields={"account": "42", **details}))
    assert (final["status"], final["resolution"], final["moderation_required"]) == (
        status,
        resolution,
        moderation,
    )
    if status == "processed":
        assert final["processed_amount"] == final["amount"]
    if status == "process_failed":
        assert final["processed_amount"] == 0 and final["processed"] is None


def test_success_rate_is_seeded_and_reproducible(
    api: httpx.Client, new_body: Any, create_invoice: Any, wait_status: Any, sandbox: Any
) -> None:
    outcomes = []
    for _ in range(2):
        sandbox.reset()
        ids = []
        for i in range(12):
            body = new_body(f"ref-rate-{i}", fields={"account": "1", "test_details_success_rate": "50"})
            ids.append(create_invoice(body)["id"])
            assert api.post(f"/api/payout-invoices/{ids[-1]}/process").status_code == 200
        outcomes.append([wait_status(api, i, lambda s: s != "processing")["status"] for i in ids])
    assert set(outcomes[0]) == {"processed", "process_failed"}  # a real draw, not a constant
    assert outcomes[0] == outcomes[1]  # same seed and references: same outcomes


def test_partially_processed_needs_allow_partially(
    api: httpx.Client, new_body: Any, create_invoice: Any, wait_status: Any
) -> None:
    partial = {"account": "1", "test_details_payout_status": "partially processed"}
    allowed = run(
        api,
        create_invoice,
        wait_status,
        new_body(amount=100, fields=partial, options={"allow_partially": True}),
    )
    assert allowed["status"] == "partially_processed"
    assert 0 < Decimal(str(allowed["processed_amount"])) < 100
    assert Decimal(str(allowed["processed_amount"])) == Decimal(str(allowed["processed_amount"])).quantize(
        Decimal("0.01")
    )
    refused = run(api, create_invoice, wait_status, new_body(amount=100, fields=partial))
    assert (refused["status"], refused["resolution"]) == ("process_failed", "invalid_amount")


def test_auto_process(
    api: httpx.Client, new_body: Any, create_invoice: Any, wait_status: Any, sandbox: Any
) -> None:
    invoice = create_invoice(new_body("ref-auto", options={"auto_process": True}))
    assert invoice["attributes"]["status"] == "processing"
    assert wait_status(api, invoice["id"], lambda s: s in FINAL)["status"] == "processed"
    assert api.post(f"/api/payout-invoices/{invoice['id']}/process").status_code == 409
    assert sandbox.ledger()["references"]["ref-auto"]["process_calls"] == 1


def test_unprocessed_invoice_expires_after_its_lifetime(
    api: httpx.Client, new_body: Any, create_invoice: Any
) -> None:
    invoice = create_invoice(new_body("ref-expire"))
    api.post("/_sandbox/clock", json={"advance_seconds": 86400 + 1})
    read = api.get(f"/api/payout-invoices/{invoice['id']}").json()["data"]["attributes"]
    assert (read["status"], read["resolution"]) == ("expired", "operation_expired")
    refused = api.post(f"/api/payout-invoices/{invoice['id']}/process")
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["meta"]["invoice_status"] == "expired"


def test_expiry_uses_the_configured_lifetime(sandbox_factory: Any, new_body: Any) -> None:
    short = sandbox_factory("--invoice-lifetime", "0.5", "--processing-delay", "0.2")
    try:
        with short.client() as api:
            invoice = api.post("/api/payout-invoices", json=new_body("ref-short")).json()["data"]
            time.sleep(0.8)  # no read in between: the background sweeper expires it
            assert short.ledger()["references"]["ref-short"]["invoices"] == 1
            status = api.get(f"/api/payout-invoices/{invoice['id']}").json()["data"]["attributes"]["status"]
            assert status == "expired"
    finally:
        short.stop()


def test_processing_is_final_after_the_delay_and_fees_are_kept(
    api: httpx.Client, new_body: Any, create_invoice: Any, wait_status: Any
) -> None:
    card = new_body(service="card", amount=Decimal("1000.00"), fields={"card_number": "4111111111111111"})
    final = run(api, create_invoice, wait_status, card)
    # fee = clamp(1000 * 1.5% + 0.30, 0.50, 50) = 15.30; writeoff 1015.30
    assert (final["fee"], final["writeoff"], final["processed_fee"]) == (
        Decimal("15.30"),
        Decimal("1015.30"),
        Decimal("15.30"),
    )
    assert final["fields"] == {"card_number": "411111******1111"}
    capped = create_invoice(new_body(service="card", amount=5000, fields={"card_number": "4111111111111111"}))
    assert capped["attributes"]["fee"] == 50


def test_admin_patch_forces_a_reversal(
    api: httpx.Client, new_body: Any, create_invoice: Any, wait_status: Any
) -> None:
    final = run(api, create_invoice, wait_status, new_body("ref-reversal"))
    assert final["status"] == "processed"
    invoice_id = api.get("/api/payout-invoices", params={"filter[reference_id]": "ref-reversal"}).json()[
        "data"
    ][0]["id"]
    patched = api.patch(f"/_sandbox/invoices/{invoice_id}", json={"status": "canceled", "resolution": "ok"})
    assert patched.status_code == 200
    assert api.get(f"/api/payout-invoices/{invoice_id}").json()["data"]["attributes"]["status"] == "canceled"


def test_admin_can_plant_a_duplicate_reference(
    api: httpx.Client, new_body: Any, create_invoice: Any, sandbox: Any
) -> None:
    create_invoice(new_body("ref-planted"))
    attributes = new_body("ref-planted")["data"]["attributes"]
    planted = api.post("/_sandbox/invoices", json={**attributes, "status": "processed"})
    assert planted.status_code == 201, planted.text
    assert planted.json()["data"]["attributes"]["status"] == "processed"
    assert sandbox.ledger()["references"]["ref-planted"]["invoices"] == 2
    found = api.get("/api/payout-invoices", params={"filter[reference_id]": "ref-planted"}).json()
    assert len(found["data"]) == 2
    # the normal create path still refuses the reference
    assert api.post("/api/payout-invoices", json=new_body("ref-planted")).status_code == 409


def test_admin_patch_sets_an_exact_processed_amount(
    api: httpx.Client, new_body: Any, create_invoice: Any, wait_status: Any
) -> None:
    invoice = create_invoice(new_body("ref-patch-amount", amount=Decimal("100.00")))
    patched = api.patch(
        f"/_sandbox/invoices/{invoice['id']}",
        content=b'{"status": "partially_processed", "processed_amount": 33.10}',
        headers={"Content-Type": "application/json"},
    )
    assert patched.status_code == 200, patched.text
    attributes = wait_status(api, invoice["id"], lambda s: True)
    assert (attributes["status"], attributes["processed_amount"]) == ("partially_processed", Decimal("33.10"))
    too_fine = api.patch(f"/_sandbox/invoices/{invoice['id']}", json={"processed_amount": 1.001})
    assert too_fine.status_code == 422 and "processed_amount" in too_fine.json()["errors"]
    unknown_key = api.patch(f"/_sandbox/invoices/{invoice['id']}", json={"colour": "red"})
    assert unknown_key.status_code == 422 and "colour" in unknown_key.json()["errors"]
