"""The Payouts view on the real api-server app (``airflow.api_fastapi.app.create_app``, which loads
the plugin from ``plugins/``), behind Airflow's own login, over reports that real ``dag.test()``
runs wrote."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from payout_jobs.batch_report import ReportLine, write_report

from .conftest import SAMPLES

#: Every card and account number of include/samples/batch_demo.csv.
DEMO_NUMBERS = (
    "5123817234060000",
    "4111111111111111",
    "4000123401",
    "4000123402",
    "4000123404",
    "4000123406",
)


@pytest.fixture(scope="module")
def api(airflow_db: Path) -> Iterator[Any]:
    """The api-server app (plugins included) behind a TestClient."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app()) as client:
        yield client


def bearer(role: str | None = "viewer", name: str = "viewer-1") -> dict[str, str]:
    """An Authorization header with a JWT that Airflow's auth manager issued for ``name``."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=name, role=role))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def reports_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "reports"
    folder.mkdir()
    monkeypatch.setenv("PAYOUT_REPORTS_DIR", str(folder))
    monkeypatch.setenv("PAYOUT_CALLBACK_STORE", str(tmp_path / "callbacks.sqlite"))
    monkeypatch.setenv("PAYOUT_APPROVAL_THRESHOLD", "off")  # this test is not about approval
    return folder


def assert_masked_only(text: str) -> None:
    for number in DEMO_NUMBERS:
        assert number not in text, f"…{number[-4:]} appears unmasked"


def test_view_lists_a_real_batch_behind_airflow_login(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    reports_dir: Path,
    read_report: Callable[..., Any],
    api: Any,
) -> None:
    result = run_dag(
        "payout_batch", {"batch_file": str(SAMPLES / "batch_demo.csv"), "output_dir": str(reports_dir)}
    )
    assert result.state == "success"
    (folder,) = [p for p in reports_dir.iterdir() if (p / "summary.json").exists()]
    rows, summary = read_report(folder)
    batch_id = summary["batch_id"]

    # Airflow's login guards every page and download
    for path in ("/payouts/", f"/payouts/batches/{batch_id}", f"/payouts/batches/{batch_id}/report.csv"):
        assert api.get(path).status_code == 401, path
    assert api.get("/payouts/", headers={"Authorization": "Bearer forged.token.value"}).status_code in (
        401,
        403,
    )
    assert api.get("/payouts/", headers=bearer(role=None, name="nobody")).status_code == 403
    login_page = api.get("/payouts/", headers={"Accept": "text/html"})
    assert login_page.status_code == 401 and "/auth/login" in login_page.text

    auth = bearer()
    page = api.get("/payouts/", headers=auth)
    assert page.status_code == 200
    run_link = f"/dags/payout_batch/runs/{quote(result.run_id, safe='')}"
    for row in rows:
        line = re.search(rf"<td>{re.escape(row['reference_id'])}</td>.*?</tr>", page.text, re.S)
        assert line, row["reference_id"]
        assert row["invoice_id"] in line.group(0) and ">processed<" in line.group(0)
        assert row["amount"] in line.group(0) and run_link in line.group(0)
    assert_masked_only(page.text)

    # the UI's own cookie works as well as a Bearer token
    from fastapi.testclient import TestClient

    with TestClient(api.app, cookies={"_token": auth["Authorization"].split()[1]}) as browser:
        assert browser.get("/payouts/").status_code == 200

    # filters: by batch and status
    none_failed = api.get(
        "/payouts/", params={"batch_id": batch_id, "status": "process_failed"}, headers=auth
    )
    assert none_failed.status_code == 200 and not any(r["reference_id"] in none_failed.text for r in rows)
    processed = api.get("/payouts/", params={"batch_id": batch_id, "status": "processed"}, headers=auth)
    assert all(r["reference_id"] in processed.text for r in rows)

    # the batch page: totals and downloads of the very files
    batch_page = api.get(f"/payouts/batches/{batch_id}", headers=auth)
    assert batch_page.status_code == 200
    assert summary["totals"]["processed"]["USD"]["amount"] in batch_page.text  # 1712.74
    assert_masked_only(batch_page.text)
    csv_file = api.get(f"/payouts/batches/{batch_id}/report.csv", headers=auth)
    assert csv_file.status_code == 200 and csv_file.content == (folder / "report.csv").read_bytes()
    assert "attachment" in csv_file.headers["content-disposition"]
    summary_file = api.get(f"/payouts/batches/{batch_id}/summary.json", headers=auth)
    assert summary_file.json() == json.loads((folder / "summary.json").read_text())

    # the invoice page reads the gateway live: masked card, never the number
    card_row = next(r for r in rows if r["amount"] == "120.00")
    invoice_page = api.get(f"/payouts/invoices/{card_row['invoice_id']}", headers=auth)
    assert invoice_page.status_code == 200
    assert "processed" in invoice_page.text and "120.00 USD" in invoice_page.text
    assert "512381******0000" in invoice_page.text
    assert_masked_only(invoice_page.text)
    assert api.get("/payouts/invoices/cpoi_doesnotexist", headers=auth).status_code == 404


def test_a_batch_id_that_leaves_the_reports_folder_is_refused(
    reports_dir: Path, tmp_path: Path, api: Any
) -> None:
    outside = tmp_path / "outside" / "secret-batch"
    line = ReportLine(
        1, "secret-batch:r1", "cpoi_secret", "processed", "", "1.00", "1.00", "", "USD", "succeeded"
    )
    write_report(outside, [line], {"batch_id": "secret-batch", "run_id": "r"})
    (reports_dir / "evil").symlink_to(outside, target_is_directory=True)
    (reports_dir / "reconciliation").mkdir()
    auth = bearer()

    for path in (
        "/payouts/batches/%2E%2E/summary.json",
        "/payouts/batches/%2E%2E",
        "/payouts/batches/evil/summary.json",
        "/payouts/batches/evil/report.csv",
        "/payouts/batches/evil",
        "/payouts/batches/reconciliation",
        "/payouts/batches/..%2Foutside%2Fsecret-batch/report.csv",
        "/payouts/batches/%2E%2E%2F%2E%2E%2Fetc/summary.json",
    ):
        answer = api.get(path, headers=auth)
        assert answer.status_code in (400, 404), path
        assert "cpoi_secret" not in answer.text, path
    assert api.get("/payouts/", params={"batch_id": "evil"}, headers=auth).status_code == 400
    index = api.get("/payouts/", headers=auth)
    assert index.status_code == 200 and "cpoi_secret" not in index.text and "evil" not in index.text


def test_single_payout_is_listed_and_its_task_link_opens_the_view(
    gateway_conn: Any, run_dag: Callable[..., Any], reports_dir: Path, api: Any
) -> None:
    conf = {
        "service": "card",
        "currency": "USD",
        "amount": "42.10",
        "fields": {"card_number": "5123817234060000"},
        "test_mode": True,
    }
    result = run_dag("payout_by_reference", conf)
    assert result.state == "success"
    (record_file,) = (reports_dir / "single_payouts").glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["run_id"] == result.run_id and record["status"] == "processed"
    assert "5123817234060000" not in record_file.read_text()

    auth = bearer()
    page = api.get("/payouts/", params={"batch_id": "-"}, headers=auth)
    assert page.status_code == 200
    assert record["invoice_id"] in page.text and record["reference_id"] in page.text
    assert f"/dags/payout_by_reference/runs/{quote(result.run_id, safe='')}" in page.text
    assert_masked_only(page.text)

    # the task's "Payout invoice" extra link, as the UI asks for it: the view's page, not the API
    links = api.get(
        f"/api/v2/dags/payout_by_reference/dagRuns/{result.run_id}/taskInstances/create_invoice/links",
        headers=bearer(role="admin", name="admin"),
    )
    assert links.status_code == 200
    link = links.json()["extra_links"]["Payout invoice"]
    assert link.endswith(f"/payouts/invoices/{record['invoice_id']}")
    assert "/api/" not in link
    invoice_page = api.get(link[link.index("/payouts/") :], headers=auth)
    assert invoice_page.status_code == 200 and "42.10 USD" in invoice_page.text
    assert_masked_only(invoice_page.text)
