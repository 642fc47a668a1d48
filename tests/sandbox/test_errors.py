"""Every error class, in the documented shapes: 401, 404, 405, 409 (both cases), 422 per rule, 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


def assert_list_error(response: httpx.Response, code: int, sample: Any, keys_missing: Any) -> dict[str, Any]:
    assert response.status_code == code, response.text
    body = response.json()
    assert isinstance(body["errors"], list)
    error = body["errors"][0]
    assert error["code"] == str(code)
    if code in (401, 404, 405, 500):
        assert keys_missing(sample(f"error.{code}"), body) == []
        assert error["status"] == sample(f"error.{code}")["errors"][0]["status"]
    return error


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/payout-services"),
        ("GET", "/api/payout-services/swift_jpy"),
        ("POST", "/api/payout-invoices"),
        ("GET", "/api/payout-invoices"),
        ("GET", "/api/payout-invoices/cpoi_0000000000000000"),
        ("POST", "/api/payout-invoices/cpoi_0000000000000000/process"),
        ("GET", "/_sandbox/ledger"),
    ],
)
@pytest.mark.parametrize(
    "auth", [None, ("merchant", "wrong-password"), ("someone", "sandbox-secret-for-tests")]
)
def test_401_without_valid_basic_auth(
    sandbox: Any, sample: Any, keys_missing: Any, method: str, path: str, auth: Any
) -> None:
    response = httpx.request(method, sandbox.url + path, auth=auth, json={})
    assert_list_error(response, 401, sample, keys_missing)
    assert sandbox.ledger()["references"] == {}


def test_401_public_endpoints(sandbox: Any, sample: Any, keys_missing: Any) -> None:
    prerequest = httpx.post(
        f"{sandbox.api_url}/payout-prerequest",
        json={"currency": "USD", "amount": 10, "public_key": "pk_test_x"},
    )
    assert_list_error(prerequest, 401, sample, keys_missing)
    missing = httpx.post(f"{sandbox.api_url}/payout-prerequest", json={"currency": "USD", "amount": 10})
    assert_list_error(missing, 401, sample, keys_missing)
    for headers in ({}, {"X-Public-Key": "pk_test_wrong"}):
        by_id = httpx.get(f"{sandbox.api_url}/public/payout-invoices/cpoi_0000000000000000", headers=headers)
        assert_list_error(by_id, 401, sample, keys_missing)
    # the private credentials do not open the public read, nor the public key the private API
    basic = httpx.get(f"{sandbox.api_url}/public/payout-invoices/cpoi_0000000000000000", auth=sandbox.auth)
    assert_list_error(basic, 401, sample, keys_missing)
    keyed = httpx.get(f"{sandbox.api_url}/payout-invoices", headers={"X-Public-Key": sandbox.public_key})
    assert_list_error(keyed, 401, sample, keys_missing)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/payout-invoices/cpoi_doesnotexist0000"),
        ("POST", "/api/payout-invoices/cpoi_doesnotexist0000/process"),
        ("GET", "/api/payout-services/comcpos_doesnotexist0000"),
        ("GET", "/api/no-such-endpoint"),
        ("PATCH", "/_sandbox/invoices/cpoi_doesnotexist0000"),
    ],
)
def test_404_unknown_id_or_path(
    api: httpx.Client, sample: Any, keys_missing: Any, method: str, path: str
) -> None:
    assert_list_error(api.request(method, path, json={}), 404, sample, keys_missing)


def test_404_public_unknown_id(sandbox: Any, sample: Any, keys_missing: Any) -> None:
    response = httpx.get(
        f"{sandbox.api_url}/public/payout-invoices/cpoi_doesnotexist0000",
        headers={"X-Public-Key": sandbox.public_key},
    )
    assert_list_error(response, 404, sample, keys_missing)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/payout-invoices"),
        ("PUT", "/api/payout-invoices/cpoi_0000000000000000"),
        ("GET", "/api/payout-invoices/cpoi_0000000000000000/process"),
        ("GET", "/api/payout-prerequest"),
        ("POST", "/api/payout-services"),
    ],
)
def test_405_wrong_method_on_known_path(
    api: httpx.Client, sample: Any, keys_missing: Any, method: str, path: str
) -> None:
    assert_list_error(api.request(method, path), 405, sample, keys_missing)


def test_409_second_create_with_same_reference(
    api: httpx.Client, new_body: Any, create_invoice: Any, sandbox: Any
) -> None:
    first = create_invoice(new_body("ref-dup"))
    again = api.post("/api/payout-invoices", json=new_body("ref-dup", amount=99))
    assert again.status_code == 409
    error = again.json()["errors"][0]
    assert error["title"] == "duplicate_reference_id"
    assert error["meta"]["invoice_id"] == first["id"]
    assert "ref-dup" in error["detail"]
    assert sandbox.ledger()["references"]["ref-dup"]["invoices"] == 1


def test_409_process_twice_changes_nothing(
    api: httpx.Client, new_body: Any, create_invoice: Any, sandbox: Any, wait_status: Any
) -> None:
    invoice = create_invoice(new_body("ref-twice"))
    assert api.post(f"/api/payout-invoices/{invoice['id']}/process").status_code == 200
    again = api.post(f"/api/payout-invoices/{invoice['id']}/process")
    assert again.status_code == 409
    error = again.json()["errors"][0]
    assert error["title"] == "invoice_not_processable"
    assert error["meta"] == {"invoice_id": invoice["id"], "invoice_status": "processing"}
    wait_status(api, invoice["id"], lambda s: s == "processed")
    final = api.post(f"/api/payout-invoices/{invoice['id']}/process")
    assert final.status_code == 409
    assert final.json()["errors"][0]["meta"]["invoice_status"] == "processed"
    assert sandbox.ledger()["references"]["ref-twice"]["process_calls"] == 1


CARD = {"card_number": "5123817234060000"}


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": "10"}, "amount"),
        ({"amount": None}, "amount"),
        ({"amount": 10.001}, "amount"),  # too many decimals for USD
        ({"amount": 2.9e27}, "amount"),  # beyond any limit (and beyond exact Decimal arithmetic)
        ({"service": "test_jpy", "currency": "JPY", "amount": 10.5}, "amount"),  # JPY has no decimals
        ({"service": "card", "amount": 5000.01, "fields": CARD}, "amount"),  # above the service's limit
        ({"service": "card", "amount": 0.99, "fields": CARD}, "amount"),  # below the service's limit
        ({"service": "no_such_service"}, "service"),
        ({"currency": "EUR"}, "currency"),  # test_usd takes USD invoices
        ({"currency": "usd"}, "currency"),
        ({"fields": {}}, "fields.account"),  # missing required field
        ({"fields": {"account": "12ab"}}, "fields.account"),  # fails its regexp
        ({"fields": {"account": 123}}, "fields.account"),
        ({"fields": {"account": "1", "iban": "DE00"}}, "fields.iban"),  # not a field of the service
        ({"service": "card", "fields": {"card_number": "51238172340600"}}, "fields.card_number"),
        (
            {"fields": {"account": "1", "test_details_payout_status": "process_failed"}},
            "fields.test_details_payout_status",
        ),
        (
            {"fields": {"account": "1", "test_details_payout_status": "Nonsense"}},
            "fields.test_details_payout_status",
        ),
        (
            {"fields": {"account": "1", "test_details_success_rate": "101"}},
            "fields.test_details_success_rate",
        ),
        ({"reference_id": ""}, "reference_id"),
        ({"reference_id": "r" * 256}, "reference_id"),
        ({"options": {"auto_process": "yes"}}, "options.auto_process"),
        ({"callback_url": "ftp://example.org/x"}, "callback_url"),
        ({"customer": {"name": "no reference"}}, "customer.reference_id"),
    ],
)
def test_422_names_the_bad_field(
    api: httpx.Client, new_body: Any, sandbox: Any, attributes: dict[str, Any], field: str
) -> None:
    body = new_body("ref-422")
    body["data"]["attributes"].update(attributes)
    response = api.post("/api/payout-invoices", json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert isinstance(errors, dict)
    assert field in errors, errors
    assert errors[field].endswith(".")
    assert "5123817234060000" not in response.text and "51238172340600" not in response.text
    assert sandbox.ledger()["references"] == {}


def test_422_sample_shape_for_amount(api: httpx.Client, new_body: Any, sample: Any) -> None:
    response = api.post("/api/payout-invoices", json=new_body(amount=0))
    assert response.json() == sample("error.422")


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b"[1, 2]", "body"),
        (b'{"data": {"type": "payout-invoices", "attributes": {}}}', "data.type"),
        (b'{"data": {"attributes": {}}}', "data.type"),
        (b'{"data": "x"}', "data"),
        (b'{"amount": NaN}', "body"),
    ],
)
def test_422_malformed_json_or_wrong_type(api: httpx.Client, content: bytes, field: str) -> None:
    response = api.post("/api/payout-invoices", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert field in response.json()["errors"]


@pytest.mark.parametrize(
    "params",
    [
        {"page[size]": "0"},
        {"page[size]": "abc"},
        {"page[size]": "101"},
        {"page[after]": "cpoi_unknown0000000000"},
        {"filter[status]": "paid"},
        {"filter[created][gte]": "yesterday"},
    ],
)
def test_422_bad_list_parameters(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/api/payout-invoices", params=params)
    assert response.status_code == 422, response.text
    assert set(response.json()["errors"]) == set(params)


def test_422_prerequest(sandbox: Any) -> None:
    url = f"{sandbox.api_url}/payout-prerequest"
    key = sandbox.public_key
    bad = httpx.post(url, json={"currency": "US", "amount": 0, "public_key": key})
    assert bad.status_code == 422
    assert set(bad.json()["errors"]) == {"currency", "amount"}
    scale = httpx.post(url, json={"currency": "JPY", "amount": 1.5, "public_key": key})
    assert set(scale.json()["errors"]) == {"amount"}


def test_500_in_documented_shape(api: httpx.Client, sandbox: Any, sample: Any, keys_missing: Any) -> None:
    sandbox.set_faults([{"endpoint": "list_services", "kind": "error_before"}])
    response = api.get("/api/payout-services")
    assert response.status_code == 500
    assert response.json() == sample("error.500")


@pytest.mark.parametrize(
    "authorization", ["Basic !!!not-base64", "Bearer sandbox-secret", "Basic", "Basic bWVyY2hhbnQ="]
)
def test_401_malformed_authorization_header(
    sandbox: Any, sample: Any, keys_missing: Any, authorization: str
) -> None:
    response = httpx.get(f"{sandbox.api_url}/payout-invoices", headers={"Authorization": authorization})
    assert_list_error(response, 401, sample, keys_missing)
    assert response.headers["WWW-Authenticate"].startswith("Basic")
