"""No password, public key, Basic-auth token or full card/account number in any log line or error text,
across a full create/process/wait/read cycle with faults (hook, trigger, operators in a real DAG run).

``dag.test()`` does not mask secrets on the console (measured), so this checks our own code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from datetime import datetime
from typing import Any

import pytest
from airflow.sdk import DAG
from payout_gateway.exceptions import PayoutGatewayError
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.operators import CreatePayoutInvoiceOperator, ProcessPayoutInvoiceOperator
from payout_gateway.sensors import PayoutInvoiceSensor
from payout_gateway.triggers import PayoutInvoiceTrigger

from .conftest import CARD, FAST, card_request
from .test_operators import run_dag

ACCOUNT = "00123456789012"  # a bank_transfer_zar account number (12 digits + 2: too long on purpose below)
ZAR_ACCOUNT = "123456789012"


async def wait_for(ids: list[str]) -> list[dict[str, Any]]:
    return [e.payload async for e in PayoutInvoiceTrigger(ids, poll_interval=0.1, hook_params=FAST).run()]


def forbidden(sandbox: Any) -> list[str]:
    token = base64.b64encode(f"{sandbox.login}:{sandbox.password}".encode()).decode()
    return [sandbox.password, sandbox.public_key, token, CARD, CARD[:12], ZAR_ACCOUNT, ACCOUNT]


def test_nothing_secret_is_printed(
    sandbox: Any,
    airflow_db: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", sandbox.airflow_connection())
    errors: list[str] = []
    hook = PayoutGatewayHook(**{**FAST, "timeout": 0.5})

    hook.prerequest("USD", "10")
    for kind in ("error_after_commit", "reset", "delay", "rate_limit", "error_before"):
        sandbox.set_faults(
            [
                {"endpoint": "create_invoice", "kind": kind, "rate": 0.5, "seconds": 1},
                {"endpoint": "process_invoice", "kind": kind, "rate": 0.5, "seconds": 1},
            ],
            seed=5,
        )
        try:
            invoice = hook.create_and_process(
                card_request(f"ref-secret-{kind}", fields={"card_holder": "Jane Roe"})
            )
        except PayoutGatewayError as exc:
            errors.append(str(exc))
        else:
            hook.get_invoice(invoice.id)
            hook.get_public_invoice(invoice.id)
    sandbox.clear_faults()
    zar = {
        "service": "bank_transfer_zar",
        "currency": "USD",
        "amount": "15.00",
        "reference_id": "ref-secret-zar",
        "fields": {"account_number": ZAR_ACCOUNT, "bank_code": "123456", "account_holder": "Jane Roe"},
    }
    zar_invoice = hook.create_and_process(zar)
    for bad in (
        card_request("ref-secret-zar", amount="99.00"),  # reference reused for another payout
        {**zar, "reference_id": "ref-secret-bad", "fields": {**zar["fields"], "account_number": ACCOUNT}},
        card_request("ref-secret-bad2", card=CARD + "0"),
    ):
        try:
            hook.create_invoice(bad)
        except Exception as exc:
            errors.append(str(exc))
    (event,) = asyncio.run(wait_for([zar_invoice.id]))
    assert event["status"] == "success"

    conn = json.loads(sandbox.airflow_connection())
    monkeypatch.setenv(
        "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", json.dumps({**conn, "password": "wrong-" + sandbox.password})
    )
    with contextlib.suppress(Exception):
        PayoutGatewayHook(**FAST).get_invoice(zar_invoice.id)
    _, message = PayoutGatewayHook(**FAST).test_connection()
    errors.append(message)
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", sandbox.airflow_connection())

    sandbox.set_faults([{"endpoint": "create_invoice", "kind": "error_after_commit", "rate": 1.0}])
    with DAG("payout_secrets", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        create = CreatePayoutInvoiceOperator(
            task_id="create",
            service="card",
            currency="USD",
            amount="12.00",
            fields={"card_number": CARD, "card_holder": "Jane Roe"},
            hook_params=FAST,
        )
        process = ProcessPayoutInvoiceOperator(task_id="process", invoice_id=create.output, hook_params=FAST)
        wait = PayoutInvoiceSensor(
            task_id="wait", invoice_id=create.output, poke_interval=0.1, hook_params=FAST
        )
        process >> wait
    run = run_dag(dag)
    assert {ti.state for ti in run.get_task_instances()} == {"success"}

    captured = capsys.readouterr()
    text = "\n".join([captured.out, captured.err, caplog.text, *errors])
    assert "POST create reference_id=" in text  # the audit lines are there
    assert "outcome=unknown:" in text
    for secret in forbidden(sandbox):
        assert secret not in text, f"a secret of length {len(secret)} was printed"
