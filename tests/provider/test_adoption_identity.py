"""Adoption proves a payout's identity: test_mode and the keyed fingerprint (issue 7, items 1, 2, 11).

Every test runs against the real sandbox; its ledger shows that nothing new was created.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG
from payout_gateway.exceptions import PayoutReferenceConflictError
from payout_gateway.hooks import PayoutGatewayHook
from payout_gateway.models import PayoutInvoice
from payout_gateway.operators import CreatePayoutInvoiceOperator

from .conftest import CARD, FAST, ledger_entry
from .test_operators import run_dag

ACCOUNT = "4000100010"
SAME_TAIL = "9999900010"  # another account with the same last 4 digits (masked alike: ******0010)
BATCH_REFERENCE = "payouts-2026-01-01:row-7"
SAMPLES = Path(__file__).resolve().parents[1] / "spec_samples"


def account_request(reference_id: str, account: str = ACCOUNT, **extra: Any) -> dict[str, Any]:
    """A test_usd payout to ``account`` with batch-style metadata (as payout_jobs sends it)."""
    return {
        "service": "test_usd",
        "currency": "USD",
        "amount": "10.00",
        "reference_id": reference_id,
        "fields": {"account": account},
        "metadata": {"batch_id": "payouts-2026-01-01", "row": 7},
        **extra,
    }


def assert_conflict_names_no_value(err: pytest.ExceptionInfo[PayoutReferenceConflictError]) -> None:
    text = str(err.value)
    for value in (ACCOUNT, SAME_TAIL, ACCOUNT[-6:], SAME_TAIL[:6]):
        assert value not in text
    assert not re.search(r"v1:[0-9a-f]{8}", text)  # the fingerprint itself is never shown


def test_live_create_never_adopts_a_test_invoice(hook: PayoutGatewayHook, sandbox: Any) -> None:
    """Issue 7 item 1: ``reference_id=tm-1`` with test_mode=true, then again with test_mode=false."""
    test_invoice = hook.create_invoice(account_request("tm-1", test_mode=True))
    assert test_invoice.test_mode is True
    with pytest.raises(PayoutReferenceConflictError) as err:
        hook.create_invoice(account_request("tm-1", test_mode=False))
    assert "test_mode" in err.value.differences
    assert "fingerprint" in err.value.differences
    assert err.value.invoice_id == test_invoice.id
    assert_conflict_names_no_value(err)
    assert ledger_entry(sandbox, "tm-1")["invoices"] == 1


def test_test_create_never_adopts_a_live_invoice_without_fingerprint(hook: PayoutGatewayHook) -> None:
    """The other way round, on an invoice of another tool (no fingerprint): the sandbox serves test
    mode only, so the live invoice is the vendor's documented sample with ``test_mode`` false."""
    document = json.loads((SAMPLES / "payout-invoices.get.private.response.json").read_text())
    document["data"]["attributes"]["test_mode"] = False
    live = PayoutInvoice.model_validate(document)
    request = {
        "service": live.service,
        "currency": live.currency,
        "amount": str(live.amount),
        "reference_id": live.reference_id,
        "fields": {"card_number": CARD},  # the sample shows it as 512381******0000
        "test_mode": True,
    }
    with pytest.raises(PayoutReferenceConflictError) as err:
        hook.adopt_invoice(request, live, "found by the caller")
    assert err.value.differences == ["test_mode"]


@pytest.mark.parametrize(
    ("path", "evidence"),
    [
        ("lookup_first", "found before create"),
        ("conflict_409", "gateway answered 409"),
        ("unknown_outcome", "found after an unknown outcome"),
    ],
)
def test_changed_account_with_the_same_tail_is_a_conflict(
    hook: PayoutGatewayHook, sandbox: Any, path: str, evidence: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 7 item 2: a batch rerun in which a row's account changed, last 4 digits equal."""
    first = hook.create_and_process(account_request(BATCH_REFERENCE))
    assert first.fields["account"].endswith("0010") and "*" in first.fields["account"]
    if path == "unknown_outcome":
        sandbox.set_faults([{"endpoint": "create_invoice", "kind": "error_before", "rate": 1.0}])
    capsys.readouterr()
    with pytest.raises(PayoutReferenceConflictError) as err:
        hook.create_invoice(account_request(BATCH_REFERENCE, SAME_TAIL), lookup_first=path == "lookup_first")
    sandbox.clear_faults()
    assert err.value.differences == ["fingerprint"]
    assert "fingerprint" in str(err.value)
    assert_conflict_names_no_value(err)
    entry = ledger_entry(sandbox, BATCH_REFERENCE)
    assert (entry["invoices"], entry["invoice_ids"], entry["process_calls"]) == (1, [first.id], 1)
    logged = capsys.readouterr().out
    assert "Adopted invoice" not in logged
    assert SAME_TAIL not in logged and ACCOUNT not in logged
    # the unchanged row still adopts its own invoice on every path
    if path == "unknown_outcome":
        sandbox.set_faults([{"endpoint": "create_invoice", "kind": "error_before", "rate": 1.0}])
    again = hook.create_invoice(account_request(BATCH_REFERENCE), lookup_first=path == "lookup_first")
    sandbox.clear_faults()
    assert again.id == first.id
    assert evidence in capsys.readouterr().out


def test_conflict_carries_the_existing_invoice(hook: PayoutGatewayHook, sandbox: Any) -> None:
    """Issue 7 item 11, provider side: the conflict names the invoice, its status and what differs."""
    first = hook.create_and_process(account_request("ref-conflict-status"))
    deadline = time.monotonic() + 10
    while not (current := hook.get_invoice(first.id)).is_final and time.monotonic() < deadline:
        time.sleep(0.1)
    assert current.status.value == "processed"
    with pytest.raises(PayoutReferenceConflictError) as err:
        hook.create_invoice(account_request("ref-conflict-status", amount="12.00"))
    exc = err.value
    assert (exc.reference_id, exc.invoice_id) == ("ref-conflict-status", first.id)
    assert exc.invoice_status == current.status.value
    assert exc.invoice_resolution == current.resolution
    assert (exc.invoice_amount, exc.invoice_currency) == (Decimal("10.00"), "USD")
    assert exc.differences == ["amount", "fingerprint"]
    text = str(exc)
    assert first.id in text and f"status {current.status.value}" in text
    assert "differs in: amount, fingerprint" in text
    assert "12.00" not in text and "10.00" not in text
    assert ledger_entry(sandbox, "ref-conflict-status")["invoices"] == 1


def test_fingerprint_travels_in_metadata_beside_the_callers(hook: PayoutGatewayHook) -> None:
    invoice = hook.create_invoice(account_request("ref-metadata"))
    for read in (invoice, hook.get_invoice(invoice.id), hook.find_invoice_by_reference("ref-metadata")):
        assert read is not None and read.metadata is not None
        assert read.metadata["batch_id"] == "payouts-2026-01-01" and read.metadata["row"] == 7
        assert re.fullmatch(r"v1:[0-9a-f]{64}", read.metadata["payout_fingerprint"])


def test_invoice_of_another_tool_is_adopted_by_the_old_comparison(
    hook: PayoutGatewayHook, sandbox: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invoice without a fingerprint (planted through the sandbox admin API) falls back to
    comparing the visible fields, and the log says so (naming the invoice, no values)."""
    attributes = {**account_request("ref-other-tool"), "amount": 10}  # a JSON number, no metadata
    del attributes["metadata"]
    planted = sandbox.admin("POST", "invoices", json=attributes).json()["data"]
    assert planted["attributes"]["metadata"] is None
    capsys.readouterr()
    adopted = hook.create_invoice(account_request("ref-other-tool"))
    assert adopted.id == planted["id"]
    logged = capsys.readouterr().out
    assert f"Invoice {planted['id']} has no payout fingerprint" in logged
    assert "visible" in logged and ACCOUNT not in logged
    assert ledger_entry(sandbox, "ref-other-tool")["invoices"] == 1
    # the fallback still refuses what it can see
    with pytest.raises(PayoutReferenceConflictError) as err:
        hook.create_invoice(account_request("ref-other-tool", amount="11.00"))
    assert err.value.differences == ["amount"]


def test_another_fingerprint_key_fails_closed(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch, hook: PayoutGatewayHook
) -> None:
    """Invoices made under one key (derived from the API key here) do not verify under another:
    rotating the key without keeping ``fingerprint_key`` turns them into conflicts, never adoptions."""
    invoice = hook.create_invoice(account_request("ref-keys"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", sandbox.airflow_connection(fingerprint_key="another-key")
    )
    other = PayoutGatewayHook(**FAST)
    with pytest.raises(PayoutReferenceConflictError) as err:
        other.create_invoice(account_request("ref-keys"))
    assert err.value.differences == ["fingerprint"]
    assert "another-key" not in str(err.value) and "another-key" not in repr(other.settings)
    made = other.create_invoice(account_request("ref-keys-2"))
    assert made.metadata["payout_fingerprint"] != invoice.metadata["payout_fingerprint"]
    assert ledger_entry(sandbox, "ref-keys")["invoices"] == 1


class ChangesAccountOnRetry(CreatePayoutInvoiceOperator):
    """Try 1 creates (its invoice id goes to task_state_store) and crashes; try 2 has another account
    with the same last 4 digits (the row was edited between the tries)."""

    def execute(self, context: Any) -> str:
        if context["ti"].try_number == 1:
            super().execute(context)
            raise RuntimeError("simulated worker crash after the create")
        self.fields = {"account": SAME_TAIL}
        return super().execute(context)


def test_retry_reattach_checks_the_fingerprint(
    sandbox: Any, airflow_db: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", sandbox.airflow_connection())
    with DAG("payout_identity_retry", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        ChangesAccountOnRetry(
            task_id="create",
            retries=2,
            retry_delay=timedelta(seconds=0),
            hook_params=FAST,
            validate=False,
            reference_id="ref-identity-retry",
            service="test_usd",
            currency="USD",
            amount="10.00",
            fields={"account": ACCOUNT},
        )
    run = run_dag(dag)
    (ti,) = run.get_task_instances()
    assert (ti.state, ti.try_number) == ("failed", 2)  # no third try: a conflict is final
    out = capsys.readouterr().out
    assert "PayoutReferenceConflictError" in out and "differs in: fingerprint" in out
    assert "Re-attached to invoice" not in out
    assert ledger_entry(sandbox, "ref-identity-retry")["invoices"] == 1
