"""What a chunk sends, counted by the gateway (the sandbox's per-endpoint counters): on the first
try of a fresh batch one create and one process a row, no lookup and no read; its retry looks each
reference up, adopts, and sends nothing again (issue 11).

Real parts: ``run_chunk`` with the real hook against the real sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from payout_gateway.hooks import PayoutGatewayHook
from payout_jobs.batch_file import file_digest
from payout_jobs.chunks import lookup_before_create, plan_chunks, run_chunk


def calls(sandbox: Any) -> dict[str, int]:
    counts = sandbox.admin("GET", "/faults/counts").json()["requests"]
    sandbox.admin("DELETE", "/faults/counts")
    return counts


def test_fresh_first_try_creates_and_processes_only_and_its_retry_adopts(
    gateway_conn: Any,
    tmp_path: Path,
    write_batch: Callable[..., Path],
    valid_rows: Callable[..., list[dict[str, str]]],
) -> None:
    batch = write_batch(tmp_path / "fresh.csv", valid_rows(6, prefix="fresh"))
    (spec,) = plan_chunks(
        list(range(1, 7)),
        10,
        batch_id="fresh",
        batch_file=str(batch),
        digest=file_digest(batch),
        currency="USD",
    )
    manual_run = {"batch_file": str(batch), "batch_id": ""}
    calls(gateway_conn)

    first = run_chunk(
        spec, PayoutGatewayHook, max_workers=3, lookup_first=lookup_before_create(manual_run, 1)
    )

    assert calls(gateway_conn) == {"create_invoice": 6, "process_invoice": 6}
    retry = run_chunk(
        spec, PayoutGatewayHook, max_workers=3, lookup_first=lookup_before_create(manual_run, 2)
    )
    assert retry["invoices"] == first["invoices"] and retry["errors"] == []
    assert calls(gateway_conn) == {"list_invoices": 6}  # one lookup a row; nothing created or processed
    ledger = gateway_conn.ledger()["references"]
    assert {(e["invoices"], e["process_calls"]) for e in ledger.values()} == {(1, 1)} and len(ledger) == 6


def test_resumed_or_drop_folder_batches_look_up_first() -> None:
    assert lookup_before_create({"batch_file": "/in/a.csv", "batch_id": "earlier-batch"}, 1)
    assert lookup_before_create({"batch_file": "", "batch_id": ""}, 1)  # drop folder: id is the file name
    assert lookup_before_create({"batch_file": "/in/a.csv", "batch_id": ""}, 2)
    assert not lookup_before_create({"batch_file": "/in/a.csv", "batch_id": None}, 1)


def test_a_drop_folder_file_given_by_name_looks_up_first(monkeypatch: Any, tmp_path: Path) -> None:
    """Its batch id is its name whatever run picks it up: an earlier run may have paid some rows."""
    drop = tmp_path / "incoming"
    drop.mkdir()
    monkeypatch.setenv("PAYOUT_BATCH_DROP_DIR", str(drop))
    assert lookup_before_create({"batch_file": str(drop / "a.csv"), "batch_id": ""}, 1)
    assert not lookup_before_create({"batch_file": str(tmp_path / "a.csv"), "batch_id": ""}, 1)


def test_a_gateway_without_unique_references_is_always_looked_up_first(
    gateway_conn: Any, monkeypatch: Any
) -> None:
    """The connection setting ``unique_references`` off: every create looks its reference up."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", gateway_conn.airflow_connection(unique_references=False)
    )
    hook = PayoutGatewayHook()
    assert hook.settings.unique_references is False
    calls(gateway_conn)
    hook.create_and_process(card("no-unique-1"), lookup_first=False)
    assert calls(gateway_conn) == {"list_invoices": 1, "create_invoice": 1, "process_invoice": 1}


def test_create_first_on_an_existing_reference_adopts_on_the_409(gateway_conn: Any) -> None:
    """A create-first (no lookup) for a reference already paid: the gateway's 409 adopts the
    invoice, nothing is created or processed again."""
    hook = PayoutGatewayHook()
    first = hook.create_and_process(card("create-first-1"), lookup_first=False)
    again = hook.create_and_process(card("create-first-1"), lookup_first=False)
    assert again.id == first.id
    ledger = gateway_conn.ledger()["references"]["create-first-1"]
    assert (ledger["invoices"], ledger["process_calls"]) == (1, 1)
    assert calls(gateway_conn).get("process_invoice") == 1  # only the first one processed


def card(reference_id: str) -> dict[str, Any]:
    return {
        "service": "card",
        "currency": "USD",
        "amount": "10.00",
        "reference_id": reference_id,
        "fields": {"card_number": "4111111111111111"},
    }
