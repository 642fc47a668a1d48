"""Property-based calls generated from the sandbox's own OpenAPI schema: no unexpected 5xx, and the
answers conform to the documented status codes, content types and response schemas."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_api_conforms_to_its_schema(session_sandbox: Any) -> None:
    """Schemathesis cases for every /api operation (bounded: a few dozen examples each)."""
    session_sandbox.reset()
    schema = schemathesis.openapi.from_url(f"{session_sandbox.url}/openapi.json").include(path_regex="^/api/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 9

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: Any) -> None:
            if case.path == "/api/payout-prerequest" and isinstance(case.body, dict):
                case.body["public_key"] = session_sandbox.public_key  # reach past the public-key check
            headers = (
                {"X-Public-Key": session_sandbox.public_key} if case.path.startswith("/api/public/") else None
            )
            case.call_and_validate(
                base_url=session_sandbox.url, auth=session_sandbox.auth, headers=headers, checks=CHECKS
            )

        call()


def test_schema_documents_every_endpoint(session_sandbox: Any) -> None:
    import httpx

    paths = httpx.get(f"{session_sandbox.url}/openapi.json").json()["paths"]
    assert {
        "/api/payout-prerequest": {"post"},
        "/api/payout-services": {"get"},
        "/api/payout-services/{service_id}": {"get"},
        "/api/payout-invoices": {"get", "post"},
        "/api/payout-invoices/{invoice_id}": {"get"},
        "/api/payout-invoices/{invoice_id}/process": {"post"},
        "/api/public/payout-invoices": {"get"},
        "/api/public/payout-invoices/{invoice_id}": {"get"},
    } == {p: set(ops) for p, ops in paths.items() if p.startswith("/api/")}
    create = paths["/api/payout-invoices"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create == {"$ref": "#/components/schemas/CreateInvoiceRequest"}
