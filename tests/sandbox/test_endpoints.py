"""Every endpoint's success path, checked against the keys of the matching vendor sample."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx


def test_prerequest_matches_sample(sandbox: Any, sample: Any, keys_missing: Any) -> None:
    request = {**sample("prerequest.request"), "public_key": sandbox.public_key}
    response = httpx.post(f"{sandbox.api_url}/payout-prerequest", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert keys_missing(sample("prerequest.response"), body) == []
    services = body["data"]["services"]
    assert {"test_usd", "card", "bank_transfer_zar", "methods", "account"} <= set(services)
    # the regexps are served double-escaped, like the vendor's sample
    assert services["test_usd"]["fields"][0]["regexp"] == "^\\\\d{1,15}$"
    assert services["bank_transfer_zar"]["amount"] == "182.50"  # 10 USD at 18.25, in ZAR
    assert services["methods"]["test"]["code"] == "test"


def test_prerequest_filters_by_currency_and_amount(sandbox: Any) -> None:
    url = f"{sandbox.api_url}/payout-prerequest"
    jpy = httpx.post(url, json={"currency": "JPY", "amount": 50, "public_key": sandbox.public_key}).json()
    assert {k for k in jpy["data"]["services"] if k not in ("methods", "account")} == {"test_jpy"}
    big = httpx.post(url, json={"currency": "USD", "amount": 6000, "public_key": sandbox.public_key}).json()
    assert "card" not in big["data"]["services"]  # card's limit is 5000
    assert "test_usd" in big["data"]["services"]


def test_services_list_and_get_match_samples(api: httpx.Client, sample: Any, keys_missing: Any) -> None:
    listing = api.get("/api/payout-services")
    assert listing.status_code == 200
    assert keys_missing(sample("payout-services.list.response"), listing.json()) == []
    by_code = {item["attributes"]["service"]: item for item in listing.json()["data"]}
    assert {"test_usd", "card", "bank_transfer_zar", "swift_jpy", "test_jpy"} <= set(by_code)
    swift = by_code["swift_jpy"]
    assert swift["id"] == "comcpos_RHUGUgEnmmedR7h3"
    one = api.get(swift["links"]["self"])
    assert one.status_code == 200
    assert keys_missing(sample("payout-services.get.response"), one.json()) == []
    assert one.json()["data"]["attributes"]["service_currency"] == "JPY"
    assert api.get("/api/payout-services/swift_jpy").json()["data"]["id"] == swift["id"]


def test_services_pagination_walks_every_service_once(api: httpx.Client) -> None:
    total = api.get("/api/payout-services").json()["meta"]["total"]
    seen: list[str] = []
    url = "/api/payout-services?page[number]=1&page[size]=4"
    pages = 0
    while url:
        body = api.get(url).json()
        pages += 1
        assert body["meta"]["pages"] == -(-total // 4)
        assert body["links"]["first"] == "/api/payout-services?page[number]=1&page[size]=4"
        seen += [item["id"] for item in body["data"]]
        url = body["links"]["next"]
    assert pages == -(-total // 4)
    assert len(seen) == total == len(set(seen))


def test_create_process_get_match_samples(
    api: httpx.Client, sample: Any, keys_missing: Any, wait_status: Any, sandbox: Any
) -> None:
    request = sample("payout-invoices.create.request")
    created = api.post("/api/payout-invoices", json=request)
    assert created.status_code == 201, created.text
    assert keys_missing(sample("payout-invoices.create.response"), created.json()) == []
    invoice = created.json()["data"]
    attributes = invoice["attributes"]
    assert invoice["id"].startswith("cpoi_") and len(invoice["id"]) == 21
    assert attributes["status"] == "created"
    assert attributes["fields"] == {"card_number": "512381******0000"}
    assert "5123817234060000" not in created.text
    # card: fee = clamp(10 * 1.5% + 0.30, 0.50, 50) = 0.50; writeoff = 10.50
    assert (attributes["fee"], attributes["writeoff"]) == (0.5, 10.5)

    processed = api.post(f"/api/payout-invoices/{invoice['id']}/process")
    assert processed.status_code == 200, processed.text
    assert keys_missing(sample("payout-invoices.process.response"), processed.json()) == []
    assert processed.json()["data"]["attributes"]["status"] == "processing"

    final = wait_status(api, invoice["id"], lambda s: s != "processing")
    assert final["status"] == "processed"
    read = api.get(f"/api/payout-invoices/{invoice['id']}")
    assert keys_missing(sample("payout-invoices.get.private.response"), read.json()) == []
    assert final["processed_amount"] == 10 and final["processed_writeoff"] == 10.5
    assert final["processed"] is not None and final["updated"] >= final["created"]

    public = httpx.get(
        f"{sandbox.api_url}/public/payout-invoices/{invoice['id']}",
        headers={"X-Public-Key": sandbox.public_key},
    )
    assert public.status_code == 200
    assert keys_missing(sample("payout-invoices.get.public.response"), public.json()) == []
    assert public.json()["data"]["status"] == "processed"
    assert "fields" not in public.json()["data"]


def test_list_and_filter_by_reference_match_sample(
    api: httpx.Client, sample: Any, keys_missing: Any, new_body: Any, create_invoice: Any, sandbox: Any
) -> None:
    mine = create_invoice(
        new_body(
            "ref-list-1",
            customer={"reference_id": "c1"},
            metadata={"k": "v"},
            callback_url="http://127.0.0.1:9/x",
        )
    )
    create_invoice(
        new_body("ref-list-2", customer={"reference_id": "c2"}, callback_url="http://127.0.0.1:9/y")
    )
    listing = api.get("/api/payout-invoices")
    assert listing.status_code == 200
    assert keys_missing(sample("payout-invoices.list.response"), listing.json()) == []
    assert listing.json()["meta"]["count"] == 2

    found = api.get("/api/payout-invoices", params={"filter[reference_id]": "ref-list-1"}).json()
    assert [item["id"] for item in found["data"]] == [mine["id"]]
    assert set(found) == {"meta", "links", "data"}
    nothing = api.get("/api/payout-invoices", params={"filter[reference_id]": "ref-none"}).json()
    assert nothing["data"] == [] and nothing["meta"]["count"] == 0

    public = httpx.get(
        f"{sandbox.api_url}/public/payout-invoices",
        params={"filter[reference_id]": "ref-list-1"},
        headers={"X-Public-Key": sandbox.public_key},
    )
    assert public.status_code == 200
    assert [item["id"] for item in public.json()["data"]] == [mine["id"]]
    assert keys_missing(sample("payout-invoices.get.public.response")["data"], public.json()["data"][0]) == []


def test_amounts_are_exact_decimals(api: httpx.Client, new_body: Any, create_invoice: Any) -> None:
    """Amounts travel as exact JSON numbers in the currency's unit; conversions use Decimal."""
    body = new_body(
        service="bank_transfer_zar",
        amount=Decimal("0.10"),
        fields={"account_number": "12345678", "bank_code": "123456", "account_holder": "Ann Lee"},
    )
    attributes = create_invoice(body)["attributes"]
    assert attributes["amount"] == Decimal("0.10")
    assert attributes["service_amount"] == Decimal("1.83")  # 0.10 * 18.25 = 1.825 -> 1.83 ZAR
    assert attributes["fields"]["account_number"] == "******5678"
    jpy = create_invoice(
        new_body(
            service="swift_jpy",
            currency="GBP",
            amount=Decimal("3.33"),
            fields={"swift_bic": "DEUTDEFF500", "account_number": "GB12ABCD", "beneficiary_name": "Bo Li"},
        )
    )
    assert jpy["attributes"]["service_amount"] == 634  # 3.33 * 190.50 = 634.365 -> 634 JPY


def test_admin_clock_moves_time(api: httpx.Client, new_body: Any, create_invoice: Any) -> None:
    before = create_invoice(new_body())["attributes"]["created"]
    clock = api.post("/_sandbox/clock", json={"advance_seconds": 3600})
    assert clock.status_code == 200
    after = create_invoice(new_body())["attributes"]["created"]
    assert after - before >= 3600
    assert api.get("/_sandbox/clock").json()["offset_seconds"] >= 3600
    time.sleep(0)  # the reset fixture puts the clock back for the next test
