"""Operators and the sensor in real Airflow DAG runs (``dag.test()``) against the sandbox."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG
from payout_gateway.operators import (
    CreatePayoutInvoiceOperator,
    GetPayoutInvoiceOperator,
    GetPayoutServiceOperator,
    ListPayoutInvoicesOperator,
    ListPayoutServicesOperator,
    PayoutPrerequestOperator,
    ProcessPayoutInvoiceOperator,
)
from payout_gateway.references import derive_reference_id
from payout_gateway.sensors import PayoutInvoiceSensor

from .conftest import CARD, FAST, ledger_entry

START = datetime(2026, 1, 1)
DASHBOARD = "https://dashboard.example.com/payout-invoices/{invoice_id}"


@pytest.fixture
def airflow_conn(sandbox: Any, airflow_db: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``payout_gateway_default`` -> the sandbox, with a dashboard URL template; a migrated Airflow DB."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", sandbox.airflow_connection(dashboard_url_template=DASHBOARD)
    )
    return sandbox


@pytest.fixture(scope="module")
def slow_sandbox(sandbox_factory: Any) -> Any:
    """A sandbox whose invoices take 2 s to become final, so that a sensor surely has to wait."""
    return sandbox_factory("--seed", "7", "--processing-delay", "2")


@pytest.fixture
def slow_conn(slow_sandbox: Any, airflow_db: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    slow_sandbox.reset()
    monkeypatch.setenv(
        "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT",
        slow_sandbox.airflow_connection(dashboard_url_template=DASHBOARD),
    )
    return slow_sandbox


def run_dag(dag: DAG) -> Any:
    """Register ``dag`` (defined here, not in the dags folder) with Airflow, then ``dag.test()`` it."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder="/dev/null", collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test()


def xcoms(dag_id: str, run_id: str) -> dict[tuple[str, int, str], Any]:
    """Every XCom of a run: (task_id, map_index, key) -> value."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
        ).all()
        return {(r.task_id, r.map_index, r.key): XComModel.deserialize_value(r) for r in rows}


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def card_payout(**overrides: Any) -> dict[str, Any]:
    values = {"service": "card", "currency": "USD", "amount": "25.50", "fields": {"card_number": CARD}}
    values.update(overrides)
    return values


def test_full_payout_chain(slow_conn: Any, caplog: pytest.LogCaptureFixture) -> None:
    with DAG("payout_chain", schedule=None, start_date=START, catchup=False) as dag:
        prerequest = PayoutPrerequestOperator(
            task_id="prerequest", currency="USD", amount="25.50", hook_params=FAST
        )
        create = CreatePayoutInvoiceOperator(
            task_id="create", service_definition=prerequest.output, hook_params=FAST, **card_payout()
        )
        process = ProcessPayoutInvoiceOperator(task_id="process", invoice_id=create.output, hook_params=FAST)
        wait = PayoutInvoiceSensor(
            task_id="wait", invoice_id=create.output, poke_interval=0.2, timeout=60, hook_params=FAST
        )
        read = GetPayoutInvoiceOperator(task_id="read", invoice_id=create.output, hook_params=FAST)
        by_reference = GetPayoutInvoiceOperator(
            task_id="by_reference",
            reference_id="{{ ti.xcom_pull(task_ids='create', key='reference_id') }}",
            hook_params=FAST,
        )
        public = GetPayoutInvoiceOperator(
            task_id="public", invoice_id=create.output, public=True, hook_params=FAST
        )
        listing = ListPayoutInvoicesOperator(task_id="list", page_size=1, hook_params=FAST)
        services = ListPayoutServicesOperator(task_id="services", page_size=3, hook_params=FAST)
        service = GetPayoutServiceOperator(
            task_id="service", service_id="{{ ti.xcom_pull(task_ids='services')[0]['id'] }}", hook_params=FAST
        )
        process >> wait >> [read, by_reference, public, listing]
        services >> service

    run = run_dag(dag)
    assert states(run) == dict.fromkeys(
        [
            "prerequest",
            "create",
            "process",
            "wait",
            "read",
            "by_reference",
            "public",
            "list",
            "services",
            "service",
        ],
        "success",
    )
    values = xcoms("payout_chain", run.run_id)
    invoice_id = values[("create", -1, "return_value")]
    assert isinstance(invoice_id, str) and invoice_id.startswith("cpoi_")
    reference_id = values[("create", -1, "reference_id")]
    identity = f"logical_date={run.logical_date.isoformat()}" if run.logical_date else f"run_id={run.run_id}"
    assert reference_id == derive_reference_id("payout_chain", "create", "-1", identity)
    assert ledger_entry(slow_conn, reference_id) == {
        "invoices": 1,
        "process_calls": 1,
        "invoice_ids": [invoice_id],
    }
    assert values[("process", -1, "return_value")]["id"] == invoice_id
    (waited,) = values[("wait", -1, "return_value")]
    assert (waited["id"], waited["status"], waited["processed_amount"]) == (invoice_id, "processed", "25.50")
    assert values[("read", -1, "return_value")]["status"] == "processed"
    assert values[("by_reference", -1, "return_value")]["id"] == invoice_id
    assert values[("public", -1, "return_value")]["status"] == "processed"
    assert [i["id"] for i in values[("list", -1, "return_value")]] == [invoice_id]
    assert values[("service", -1, "return_value")]["id"] == values[("services", -1, "return_value")][0]["id"]
    url = DASHBOARD.format(invoice_id=invoice_id)
    assert values[("create", -1, "payout_invoice_url")] == url
    assert values[("create", -1, "_link_PayoutInvoiceDashboardLink")] == url
    assert values[("wait", -1, "_link_PayoutInvoiceDashboardLink")] == url
    everything = json.dumps(list(values.values()), default=str)
    assert CARD not in everything and CARD[:12] not in everything
    assert "[DAG TEST] Trigger completed" in caplog.text  # the sensor really deferred


class CrashAfterCreate(CreatePayoutInvoiceOperator):
    """Dies on its first try right after the invoice was created and its id stored (a worker crash)."""

    def execute(self, context: Any) -> str:
        invoice_id = super().execute(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("simulated worker crash after the create")
        return invoice_id


class CrashBeforeStore(CreatePayoutInvoiceOperator):
    """Dies on its first try after the gateway created the invoice but before its id was stored."""

    def execute(self, context: Any) -> str:
        if context["ti"].try_number == 1:
            self.hook.create_invoice(self.build_request(self.derive_reference(context)))
            raise RuntimeError("simulated worker crash before the invoice id was stored")
        return super().execute(context)


@pytest.mark.parametrize(
    ("operator", "evidence"),
    [
        (CrashAfterCreate, "Re-attached to invoice"),
        (CrashBeforeStore, "found before create"),
    ],
)
def test_retry_after_a_crash_reattaches(
    airflow_conn: Any, capsys: pytest.CaptureFixture[str], operator: type, evidence: str
) -> None:
    dag_id = f"payout_retry_{operator.__name__}"
    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        operator(
            task_id="create",
            retries=2,
            retry_delay=timedelta(seconds=0),
            hook_params=FAST,
            validate=False,
            **card_payout(),
        )
    run = run_dag(dag)
    (ti,) = run.get_task_instances()
    assert (ti.state, ti.try_number) == ("success", 2)
    values = xcoms(dag_id, run.run_id)
    entry = ledger_entry(airflow_conn, values[("create", -1, "reference_id")])
    assert entry == {
        "invoices": 1,
        "process_calls": 0,
        "invoice_ids": [values[("create", -1, "return_value")]],
    }
    assert evidence in capsys.readouterr().out


def test_invalid_request_fails_before_sending(airflow_conn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with DAG("payout_invalid", schedule=None, start_date=START, catchup=False) as dag:
        CreatePayoutInvoiceOperator(
            task_id="create",
            retries=3,
            retry_delay=timedelta(seconds=0),
            hook_params=FAST,
            **card_payout(fields={"card_number": "5123-8172-3406-0000"}),
        )
    run = run_dag(dag)
    (ti,) = run.get_task_instances()
    assert (ti.state, ti.try_number) == ("failed", 1)  # no retry: the input will not get better
    assert airflow_conn.ledger()["references"] == {}
    out = capsys.readouterr().out
    assert "fields.card_number: does not match" in out
    assert "5123-8172-3406-0000" not in out and CARD not in out


def test_mapped_creates_get_distinct_references(airflow_conn: Any) -> None:
    with DAG("payout_mapped", schedule=None, start_date=START, catchup=False) as dag:
        CreatePayoutInvoiceOperator.partial(
            task_id="create", service="card", currency="USD", hook_params=FAST
        ).expand(amount=["10.00", "20.00", "30.00"], fields=[{"card_number": CARD}] * 3)
    run = run_dag(dag)
    assert {ti.state for ti in run.get_task_instances()} == {"success"}
    values = xcoms("payout_mapped", run.run_id)
    references = [values[("create", i, "reference_id")] for i in range(3)]
    assert len(set(references)) == 3
    for index, reference in enumerate(references):
        assert ledger_entry(airflow_conn, reference)["invoice_ids"] == [
            values[("create", index, "return_value")]
        ]


@pytest.mark.parametrize("deferrable", [True, False])
def test_sensor_fails_a_failed_payout_without_retry(airflow_conn: Any, deferrable: bool) -> None:
    dag_id = f"payout_failed_{deferrable}"
    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag:
        create = CreatePayoutInvoiceOperator(
            task_id="create",
            hook_params=FAST,
            payout_key="order-77",
            **card_payout(fields={"card_number": CARD, "test_details_payout_status": "process failed"}),
        )
        process = ProcessPayoutInvoiceOperator(task_id="process", invoice_id=create.output, hook_params=FAST)
        wait = PayoutInvoiceSensor(
            task_id="wait",
            invoice_ids=[create.output],
            deferrable=deferrable,
            poke_interval=0.2,
            timeout=60,
            retries=2,
            retry_delay=timedelta(seconds=0),
            hook_params=FAST,
        )
        process >> wait
    run = run_dag(dag)
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    assert (tis["wait"].state, tis["wait"].try_number) == ("failed", 1)
    reference = xcoms(dag_id, run.run_id)[("create", -1, "reference_id")]
    assert reference == derive_reference_id(dag_id, "create", "-1", "payout_key=order-77")


def test_sensor_returns_the_list_when_failures_are_allowed(airflow_conn: Any) -> None:
    with DAG("payout_chunk", schedule=None, start_date=START, catchup=False) as dag:
        ok = CreatePayoutInvoiceOperator(task_id="ok", hook_params=FAST, **card_payout())
        bad = CreatePayoutInvoiceOperator(
            task_id="bad",
            hook_params=FAST,
            **card_payout(fields={"card_number": CARD, "test_details_payout_status": "expired"}),
        )
        processes = [
            ProcessPayoutInvoiceOperator(
                task_id=f"process_{t.task_id}", invoice_id=t.output, hook_params=FAST
            )
            for t in (ok, bad)
        ]
        wait = PayoutInvoiceSensor(
            task_id="wait",
            invoice_ids=[ok.output, bad.output],  # a list, not a template rendered to its text
            fail_on_payout_failure=False,
            poke_interval=0.2,
            timeout=60,
            hook_params=FAST,
        )
        processes >> wait
    run = run_dag(dag)
    assert states(run)["wait"] == "success"
    result = xcoms("payout_chunk", run.run_id)[("wait", -1, "return_value")]
    assert sorted(i["status"] for i in result) == ["expired", "processed"]
