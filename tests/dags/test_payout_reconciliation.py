"""``payout_reconciliation`` against the real sandbox, with invoices planted through its APIs."""

from __future__ import annotations

import csv
import json
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DAG_ID = "payout_reconciliation"


def create(sandbox: Any, reference: str, *, status: str | None = None, resolution: str | None = None) -> str:
    """Create and process an invoice through the public API; the test_details fields pick its outcome."""
    fields = {"account": "4000123412"}
    if status:
        fields["test_details_payout_status"] = status
    if resolution:
        fields["test_details_payout_resolution"] = resolution
    document = {
        "data": {
            "type": "payout-invoice",
            "attributes": {
                "service": "test_usd",
                "currency": "USD",
                "amount": 15,
                "reference_id": reference,
                "fields": fields,
                "options": {"auto_process": True},
            },
        }
    }
    with sandbox.client() as client:
        response = client.post("/api/payout-invoices", json=document)
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def wait_settled(sandbox: Any, invoice_ids: list[str]) -> None:
    """Wait until no invoice is still 'processing' (the sandbox's processing delay)."""
    deadline = time.monotonic() + 15
    with sandbox.client() as client:
        while time.monotonic() < deadline:
            statuses = [
                client.get(f"/api/payout-invoices/{i}").json()["data"]["attributes"]["status"]
                for i in invoice_ids
            ]
            if "processing" not in statuses:
                return
            time.sleep(0.2)
    raise AssertionError(f"invoices still processing: {statuses}")


def findings(folder: Path) -> dict[str, set[str]]:
    """reference_id -> categories found, from reconciliation.csv."""
    found: dict[str, set[str]] = defaultdict(set)
    with (folder / "reconciliation.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            found[row["reference_id"]].add(row["category"])
    return dict(found)


def tomorrow() -> datetime:
    """A logical date whose daily interval is today (UTC): the invoices made now are in it."""
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, 0, 0, 1, tzinfo=UTC) + timedelta(days=1)


def test_reconciliation_finds_stuck_duplicate_reversal_and_moderation(
    gateway_conn: Any, run_dag: Callable[..., Any], tmp_path: Path
) -> None:
    sandbox = gateway_conn
    healthy = create(sandbox, "rec-healthy")
    stuck = create(sandbox, "rec-stuck", status="process-pending")
    person = create(sandbox, "rec-person", resolution="connection-error", status="process-error")
    reversed_ = create(sandbox, "rec-reversed")
    duplicated = create(sandbox, "rec-duplicate")
    wait_settled(sandbox, [healthy, stuck, person, reversed_, duplicated])
    sandbox.admin("PATCH", f"invoices/{reversed_}", json={"status": "canceled"})  # a late reversal
    planted = sandbox.admin(  # a second invoice for one reference (the gateway's uniqueness bypassed)
        "POST",
        "invoices",
        json={
            "service": "test_usd",
            "currency": "USD",
            "amount": 15,
            "reference_id": "rec-duplicate",
            "fields": {"account": "4000123412"},
            "status": "processed",
        },
    ).json()["data"]["id"]
    sandbox.admin("POST", "clock", json={"advance_seconds": 2 * 3600})  # two hours pass at the gateway
    fresh = create(sandbox, "rec-fresh-pending", status="process-pending")  # pending, but only just
    wait_settled(sandbox, [fresh])
    gateway_now = datetime.fromtimestamp(sandbox.admin("GET", "clock").json()["now"], tz=UTC)

    result = run_dag(
        DAG_ID,
        {
            "output_dir": str(tmp_path),
            "stuck_after_minutes": 60,
            "lookback_days": 1,
            "as_of": gateway_now.isoformat(),
        },
        logical_date=tomorrow() + timedelta(days=1),  # interval: tomorrow; looking back: today too
    )

    assert result.state == "failed"
    assert result.tasks == {"reconcile": "success", "needs_person": "failed"}
    (folder,) = (tmp_path / "reconciliation").iterdir()
    found = findings(folder)
    assert "rec-healthy" not in found and "rec-fresh-pending" not in found
    assert "stuck" in found["rec-stuck"]
    assert "needs_person" in found["rec-person"]
    assert found["rec-reversed"] == {"reversal"}
    assert found["rec-duplicate"] == {"duplicate_reference"}
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["invoices_scanned"] == 7
    assert summary["findings"]["duplicate_reference"] == 2
    assert summary["needs_person"] >= 5
    with (folder / "reconciliation.csv").open(newline="") as handle:
        ids = {
            row["invoice_id"] for row in csv.DictReader(handle) if row["category"] == "duplicate_reference"
        }
    assert ids == {duplicated, planted}


def test_clean_day_is_green_and_recent_pending_is_not_stuck(
    gateway_conn: Any, run_dag: Callable[..., Any], tmp_path: Path
) -> None:
    ids = [create(gateway_conn, f"clean-{i}") for i in range(3)]
    ids.append(create(gateway_conn, "clean-pending", status="process-pending"))
    wait_settled(gateway_conn, ids)

    result = run_dag(
        DAG_ID,
        {"output_dir": str(tmp_path), "stuck_after_minutes": 60, "lookback_days": 0},
        logical_date=tomorrow(),
    )

    assert result.state == "success"
    (folder,) = (tmp_path / "reconciliation").iterdir()
    assert findings(folder) == {}
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["invoices_scanned"] == 4 and summary["needs_person"] == 0
    assert summary["by_status"] == {"process_pending": 1, "processed": 3}


def test_invoices_outside_the_interval_are_not_scanned(
    gateway_conn: Any, run_dag: Callable[..., Any], tmp_path: Path
) -> None:
    """The walk is bounded by the data interval: yesterday's run does not see today's invoices."""
    create(gateway_conn, "today-1")
    result = run_dag(
        DAG_ID, {"output_dir": str(tmp_path), "lookback_days": 0}, logical_date=tomorrow() - timedelta(days=1)
    )

    assert result.state == "success"
    (folder,) = (tmp_path / "reconciliation").iterdir()
    assert json.loads((folder / "summary.json").read_text())["invoices_scanned"] == 0
