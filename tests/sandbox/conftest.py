"""Helpers for the sandbox tests: spec samples, request bodies, key comparison, waiting for a status."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "spec_samples"
# Keys whose values are the merchant's own data (their sub-keys are examples, not API shape).
USER_DATA_KEYS = frozenset({"fields", "metadata"})


def load_sample(name: str) -> Any:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def missing_keys(sample: Any, actual: Any, path: str = "$") -> list[str]:
    """Every key path that the sample shows and the actual JSON lacks (recursively, lists item by item)."""
    missing: list[str] = []
    if isinstance(sample, dict):
        if not isinstance(actual, dict):
            return [f"{path} (expected an object)"]
        for key, value in sample.items():
            if key not in actual:
                missing.append(f"{path}.{key}")
            elif key not in USER_DATA_KEYS:
                missing.extend(missing_keys(value, actual[key], f"{path}.{key}"))
    elif isinstance(sample, list) and sample and isinstance(sample[0], dict):
        if not isinstance(actual, list) or not actual:
            return [f"{path} (expected a non-empty list)"]
        for item in actual:
            for i, sample_item in enumerate(sample):
                missing.extend(missing_keys(sample_item, item, f"{path}[{i}]"))
    return sorted(set(missing))


def invoice_body(
    reference_id: str | None = None,
    service: str = "test_usd",
    currency: str = "USD",
    amount: Any = 10,
    fields: dict[str, str] | None = None,
    **attributes: Any,
) -> dict[str, Any]:
    """A create request in the vendor's envelope."""
    return {
        "data": {
            "type": "payout-invoice",
            "attributes": {
                "service": service,
                "currency": currency,
                "amount": amount,
                "reference_id": reference_id or f"ref-{uuid.uuid4()}",
                "test_mode": True,
                "fields": {"account": "4000123"} if fields is None else fields,
                **attributes,
            },
        }
    }


@pytest.fixture
def api(sandbox: Any) -> Iterator[httpx.Client]:
    """A plain httpx client with Basic auth, rooted at the sandbox."""
    with sandbox.client() as client:
        yield client


def wait_for_status(
    client: httpx.Client, invoice_id: str, done: Callable[[str], bool], timeout: float = 10
) -> dict[str, Any]:
    """Read the invoice until ``done(status)``; returns its attributes."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/payout-invoices/{invoice_id}")
        assert response.status_code == 200, response.text
        attributes = json.loads(response.content, parse_float=Decimal)["data"]["attributes"]
        if done(attributes["status"]) or time.monotonic() > deadline:
            return attributes
        time.sleep(0.05)


def to_json(value: Any) -> str:
    """JSON text with Decimals written as exact numbers (as a careful client sends money)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


def create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/api/payout-invoices", content=to_json(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    return json.loads(response.content, parse_float=Decimal)["data"]


@pytest.fixture
def sample() -> Callable[[str], Any]:
    """Load a spec sample by name (``payout-invoices.create.response``)."""
    return load_sample


@pytest.fixture
def new_body() -> Callable[..., dict[str, Any]]:
    """Build a create request body (see :func:`invoice_body`)."""
    return invoice_body


@pytest.fixture
def keys_missing() -> Callable[[Any, Any], list[str]]:
    """Key paths shown by a sample and missing from a response."""
    return missing_keys


@pytest.fixture
def wait_status() -> Callable[..., dict[str, Any]]:
    return wait_for_status


@pytest.fixture
def create_invoice(api: httpx.Client) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """POST a create body, assert 201, return the resource."""
    return lambda body: create(api, body)
