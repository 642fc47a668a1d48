"""Issue 7 item 14: any move away from success and any unknown status need a person (the run is
red), and a manual run can cover today up to now. Statuses are forced with the sandbox's admin
``PATCH /_sandbox/invoices/{id}``; the DAG runs with ``dag.test()``."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from payout_gateway.models import PayoutInvoice
from payout_jobs.reconciliation import REVERSAL, STUCK, UNKNOWN_STATUS, classify

from .test_payout_reconciliation import create, wait_settled

DAG_ID = "payout_reconciliation"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def invoice(status: str, **attributes: Any) -> PayoutInvoice:
    return PayoutInvoice.model_validate(
        {
            "id": "cpoi_1",
            "reference_id": "r-1",
            "status": status,
            "amount": "15.00",
            "currency": "USD",
            "created": int((NOW - timedelta(days=3)).timestamp()),
            "updated": int((NOW - timedelta(days=3)).timestamp()),
            **attributes,
        }
    )


@pytest.mark.parametrize(
    ("status", "attributes", "expected"),
    [
        ("process_failed", {"processed_amount": "15.00"}, {REVERSAL}),  # paid, then "failed"
        ("canceled", {"processed_amount": "15.00"}, {REVERSAL}),
        ("processing", {"processed_amount": "15.00"}, {REVERSAL, STUCK}),  # pending again after a payment
        ("refunded", {"processed_amount": "15.00"}, {REVERSAL, UNKNOWN_STATUS}),  # never only "stuck"
        ("on_hold", {}, {UNKNOWN_STATUS}),  # unknown, never paid: still a person's job, not "stuck"
        ("process_failed", {"processed_amount": "0"}, {"failed"}),  # a plain failure: for the record
        ("processed", {"processed_amount": "15.00"}, set()),
        ("partially_processed", {"processed_amount": "5.00"}, {"partially_processed"}),
    ],
)
def test_classify_moves_away_from_success_and_unknown_statuses(
    status: str, attributes: dict[str, Any], expected: set[str]
) -> None:
    found = {category for category, _ in classify(invoice(status, **attributes), NOW, timedelta(hours=1))}
    assert found == expected


def findings(folder: Path) -> dict[str, dict[str, dict[str, str]]]:
    """reference_id -> category -> CSV row."""
    found: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    with (folder / "reconciliation.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            found[row["reference_id"]][row["category"]] = row
    return dict(found)


def test_reversals_and_unknown_statuses_make_the_run_red_and_a_manual_run_covers_today(
    gateway_conn: Any, run_dag: Callable[..., Any], tmp_path: Path
) -> None:
    sandbox = gateway_conn
    healthy = create(sandbox, "rv-healthy")
    failed_after_paid = create(sandbox, "rv-failed-after-paid")
    refunded = create(sandbox, "rv-refunded")
    plain_failure = create(
        sandbox, "rv-plain-failure", status="process-failed", resolution="insufficient-funds"
    )
    wait_settled(sandbox, [healthy, failed_after_paid, refunded, plain_failure])
    patched = sandbox.admin(
        "PATCH", f"invoices/{failed_after_paid}", json={"status": "process_failed"}
    ).json()
    assert patched["data"]["attributes"]["processed_amount"] == 15  # the processed amount is kept
    patched = sandbox.admin("PATCH", f"invoices/{refunded}", json={"status": "refunded"}).json()
    assert patched["data"]["attributes"]["status"] == "refunded"  # the sandbox serves unknown statuses

    result = run_dag(DAG_ID, {"output_dir": str(tmp_path), "lookback_days": 0, "through_now": True})

    assert result.state == "failed"
    assert result.tasks == {"reconcile": "success", "needs_person": "failed"}
    (folder,) = (tmp_path / "reconciliation").iterdir()
    found = findings(folder)
    assert "rv-healthy" not in found
    assert set(found["rv-failed-after-paid"]) == {REVERSAL}
    assert found["rv-failed-after-paid"]["reversal"]["processed_amount"] == "15.00"
    assert set(found["rv-refunded"]) == {REVERSAL, UNKNOWN_STATUS}
    assert set(found["rv-plain-failure"]) == {"failed"}
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["invoices_scanned"] == 4  # today's invoices: the window reaches now
    assert summary["needs_person"] == 3
    assert datetime.fromisoformat(summary["window_end"]) > datetime.now(UTC) - timedelta(minutes=5)
    assert Decimal(found["rv-refunded"]["reversal"]["amount"]) == Decimal("15.00")
