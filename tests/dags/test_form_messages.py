"""The trigger forms as a person meets them: the currencies the money module supports, help text
from the money module, service suggestions from a cached services file, and a bad amount refused
with a message that names the field and says how to write it, never the value typed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from payout_gateway.money import SUPPORTED_CURRENCIES, amount_rule
from payout_jobs.offered_services import cached_service_codes, remember_offered

PROJECT = Path(__file__).resolve().parents[2]
BAD_AMOUNT = "7.31415"  # a value that appears nowhere else in a run's output


def valid_conf(**overrides: Any) -> dict[str, Any]:
    conf = {"service": "test_usd", "currency": "USD", "amount": "10.00", "fields": {"account": "4000123412"}}
    return {**conf, **overrides}


@pytest.fixture
def api_client(dagbag: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Airflow's own api-server app (the REST API the UI's trigger form posts to), in process,
    with the project's DAGs serialized into the metadata DB as the dag-processor would."""
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    from airflow.api_fastapi.app import create_app
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import sync_bag_to_db
    from fastapi.testclient import TestClient

    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(dagbag, "dags-folder", None)
    with TestClient(create_app()) as client:
        yield client


def test_both_forms_offer_the_money_modules_currencies(dagbag: Any) -> None:
    for dag_id in ("payout_by_reference", "payout_batch"):
        schema = dagbag.get_dag(dag_id).params.get_param("currency").schema
        assert schema["enum"] == list(SUPPORTED_CURRENCIES)
        assert {"CLP", "KRW", "JPY", "USD"} <= set(schema["enum"])
        assert schema["values_display"]["KRW"] == "KRW (no decimals)"
        assert schema["values_display"]["USD"] == "USD (at most 2 decimals)"


def test_the_amount_help_comes_from_the_money_module_and_no_free_text_has_a_pattern(dagbag: Any) -> None:
    params = dagbag.get_dag("payout_by_reference").params
    help_text = params.get_param("amount").description
    assert "at most 2 decimals for EUR, GBP, USD, ZAR (e.g. 125.50)" in help_text
    assert "no decimals for CLP, JPY, KRW, PYG, VND (e.g. 12550)" in help_text
    for name in ("service", "amount", "reference_id"):  # a pattern refusal echoes raw schema text
        assert "pattern" not in params.get_param(name).schema, name


def test_a_rest_trigger_with_a_bad_amount_is_refused_naming_the_field_and_the_fix(
    api_client: Any,
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The form no longer answers with JSON-schema text: the run is accepted, and its first task
    refuses the amount before any request, with the message a person reads in its log."""
    conf = valid_conf(amount=BAD_AMOUNT)
    answer = api_client.post(
        "/api/v2/dags/payout_by_reference/dagRuns", json={"logical_date": None, "conf": conf}
    )
    assert answer.status_code == 200, answer.text
    assert "Failed validating" not in answer.text
    api_client.delete(f"/api/v2/dags/payout_by_reference/dagRuns/{answer.json()['dag_run_id']}")

    capfd.readouterr()
    result = run_dag("payout_by_reference", conf)  # the same conf, run by Airflow's dag.test()
    output = capfd.readouterr()
    log = output.out + output.err

    assert result.tasks["discover_services"] == "failed"
    assert result.tasks["create_invoice"] == "upstream_failed"
    assert gateway_conn.ledger()["references"] == {}
    rule = amount_rule("USD")
    assert rule == "use digits and at most 2 decimals for USD, e.g. 125.50"
    assert f"amount: has 5 decimal places: {rule}" in log
    assert BAD_AMOUNT not in log


def test_a_json_number_is_refused_by_the_form_naming_the_field(api_client: Any) -> None:
    """The one refusal left to the form is the type: the UI always sends text; a REST client that
    sends a number gets Airflow's answer naming the param (its own value back, nothing logged)."""
    answer = api_client.post(
        "/api/v2/dags/payout_by_reference/dagRuns",
        json={"logical_date": None, "conf": valid_conf(amount=12.5)},
    )
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("Invalid input for param amount:")


def test_service_suggestions_come_from_the_cache_file_read_at_parse_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    cache = tmp_path / "services.json"
    monkeypatch.setenv("PAYOUT_SERVICES_FILE", str(cache))

    def service_schema() -> dict[str, Any]:
        bag = DagBag(dag_folder=str(PROJECT / "dags" / "payout_by_reference.py"))
        assert not bag.import_errors
        return bag.get_dag("payout_by_reference").params.get_param("service").schema

    assert "examples" not in service_schema()  # no cache yet: a plain text field, no parse error
    cache.write_text("{not json")
    assert "examples" not in service_schema()

    remember_offered(cache, "USD", ["test_usd", "card", "bank_transfer_zar"])
    remember_offered(cache, "KRW", ["test_krw", "4111 1111 1111 1111", "=cmd|x"])  # not codes: dropped
    assert cached_service_codes(cache) == ["bank_transfer_zar", "card", "test_krw", "test_usd"]
    assert service_schema()["examples"] == ["bank_transfer_zar", "card", "test_krw", "test_usd"]
    assert json.loads(cache.read_text())["services"]["test_usd"] == ["USD"]


def test_a_validated_payout_refreshes_the_services_cache(
    session_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``validate_request`` records what the gateway offered (from the prerequest it already has)."""
    from payout_gateway.hooks import PayoutGatewayHook
    from payout_jobs.single_payout import validate_params

    cache = tmp_path / "services.json"
    monkeypatch.setenv("PAYOUT_SERVICES_FILE", str(cache))
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", session_sandbox.airflow_connection())
    prerequest = PayoutGatewayHook().prerequest("USD", "10.00")
    validate_params(prerequest.model_dump(mode="json"), valid_conf(), "payout_by_reference", "manual__x")
    assert set(cached_service_codes(cache)) == set(prerequest.services) and "test_usd" in prerequest.services


def test_the_audit_log_of_a_rest_trigger_hides_the_payout_fields(api_client: Any) -> None:
    """Airflow records every trigger's conf in its audit log (``log`` table, "Audit Log" in the
    UI); with ``[core] sensitive_var_conn_names = fields,customer`` (as deployed) the account
    number and the customer are stored as ***."""
    from airflow.models.log import Log
    from airflow.utils.session import create_session

    account, email = "4000987654321098", "payee@example.test"
    conf = valid_conf(fields={"account": account}, customer={"reference_id": "c-1", "email": email})
    answer = api_client.post(
        "/api/v2/dags/payout_by_reference/dagRuns", json={"logical_date": None, "conf": conf}
    )
    assert answer.status_code == 200, answer.text
    run_id = answer.json()["dag_run_id"]
    api_client.delete(f"/api/v2/dags/payout_by_reference/dagRuns/{run_id}")

    with create_session() as session:
        extras = [
            row.extra or "" for row in session.query(Log).filter(Log.dag_id == "payout_by_reference").all()
        ]
    assert any("***" in extra and "test_usd" in extra for extra in extras), extras
    assert not any(account in extra or email in extra for extra in extras)
