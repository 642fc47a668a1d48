"""``payout_by_reference`` end to end: real Airflow (``dag.test()``) against the real sandbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

DAG_ID = "payout_by_reference"


def payout_conf(**overrides: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "service": "test_usd",
        "currency": "USD",
        "amount": "42.10",
        "fields": {"account": "4000123412"},
        "description": "test payout",
        "test_mode": True,
    }
    return {**conf, **overrides}


def the_invoice(sandbox: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The one reference in the ledger, its ledger entry and its invoice as the gateway shows it."""
    references = sandbox.ledger()["references"]
    assert len(references) == 1, references
    reference, entry = next(iter(references.items()))
    with sandbox.client() as client:
        invoice = client.get(f"/api/payout-invoices/{entry['invoice_ids'][0]}").json()["data"]["attributes"]
    return reference, entry, invoice


def test_single_payout_succeeds_and_is_processed_once(gateway_conn: Any, run_dag: Callable[..., Any]) -> None:
    result = run_dag(DAG_ID, payout_conf())

    assert result.state == "success"
    assert set(result.tasks.values()) == {"success"}
    reference, entry, invoice = the_invoice(gateway_conn)
    assert entry["invoices"] == 1 and entry["process_calls"] == 1
    assert invoice["status"] == "processed"
    assert invoice["amount"] == 42.10 and invoice["currency"] == "USD"
    assert reference.startswith("af-")


def test_given_reference_is_used(gateway_conn: Any, run_dag: Callable[..., Any]) -> None:
    result = run_dag(DAG_ID, payout_conf(reference_id="order-77-payout"))

    assert result.state == "success"
    assert list(gateway_conn.ledger()["references"]) == ["order-77-payout"]


def test_rerun_of_the_same_run_creates_nothing_new(gateway_conn: Any, run_dag: Callable[..., Any]) -> None:
    """Running the same run again (same run id, no stored task state) re-attaches by reference."""
    when = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    first = run_dag(DAG_ID, payout_conf(), logical_date=when)
    ledger_after_first = gateway_conn.ledger()
    second = run_dag(DAG_ID, payout_conf(), logical_date=when)

    assert first.run_id == second.run_id
    assert first.state == second.state == "success"
    assert gateway_conn.ledger() == ledger_after_first
    (entry,) = ledger_after_first["references"].values()
    assert entry["invoices"] == 1 and entry["process_calls"] == 1


def test_failing_payout_fails_the_run(
    gateway_conn: Any, run_dag: Callable[..., Any], capfd: pytest.CaptureFixture[str]
) -> None:
    fields = {
        "account": "4000123412",
        "test_details_payout_status": "process-failed",
        "test_details_payout_resolution": "insufficient-funds",
    }
    result = run_dag(DAG_ID, payout_conf(fields=fields))

    assert result.state == "failed"
    assert result.tasks["wait_for_final_status"] == "success"  # the wait ends; the summary judges
    assert result.tasks["summary"] == "failed"
    _, entry, invoice = the_invoice(gateway_conn)
    assert entry["invoices"] == 1 and entry["process_calls"] == 1
    assert invoice["status"] == "process_failed"
    assert invoice["resolution"] == "insufficient_funds"
    assert "resolution insufficient_funds (insufficient funds; failed)" in capfd.readouterr().out


def test_bad_field_fails_validation_and_sends_nothing(gateway_conn: Any, run_dag: Callable[..., Any]) -> None:
    result = run_dag(DAG_ID, payout_conf(fields={"account": "12AB"}))

    assert result.state == "failed"
    assert result.tasks["discover_services"] == "success"
    assert result.tasks["validate_request"] == "failed"
    assert result.tasks["create_invoice"] == "upstream_failed"
    assert gateway_conn.ledger()["references"] == {}


def test_validation_error_names_the_field(gateway_conn: Any) -> None:
    """The validate task's error (what the task log shows) names the field and the reason, not the value."""
    import pytest
    from payout_gateway.exceptions import PayoutValidationError
    from payout_gateway.hooks import PayoutGatewayHook
    from payout_jobs.single_payout import discover_services, validate_params

    params = payout_conf(fields={"account": "12AB"}, amount="0.001")
    with pytest.raises(PayoutValidationError) as caught:
        validate_params({"currency": "USD", "services": {}}, params, DAG_ID, "manual__x")
    assert "amount" in str(caught.value) and "12AB" not in str(caught.value)

    prerequest = PayoutGatewayHook().prerequest("USD", "10.00")
    assert "test_usd" in discover_services(prerequest)
    params = payout_conf(fields={"account": "12AB"})
    with pytest.raises(PayoutValidationError) as caught:
        validate_params(prerequest.model_dump(mode="json"), params, DAG_ID, "manual__x")
    assert caught.value.field == "fields.account"
    assert "does not match" in str(caught.value) and "12AB" not in str(caught.value)
