"""Four-eyes approval end to end: real Airflow, real answers through the api-server's REST API.

The DAG runs with ``dag.test()`` in the main thread (it uses signals); a second thread answers the
approval through Airflow's own api-server app (``create_app``, FastAPI ``TestClient``) on the same
metadata database, logged in as real simple-auth-manager users, exactly as the UI's Required
actions page does. ``dag.test()`` triggers as the user ``dag_test``: that is the maker here, and
it is a real user of the auth manager so that it can try to approve its own run.

The timeout is applied by the scheduler's own sweep (``SchedulerJobRunner.check_awaiting_input_
timeouts``, what a running scheduler calls every few seconds), since ``dag.test()`` never does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from payout_jobs import approval_api

BATCH = "payout_batch"
SINGLE = "payout_by_reference"
MAKER, CHECKER = "dag_test", "checker"  # dag.test() triggers as "dag_test"
PASSWORDS = {MAKER: "maker-password", CHECKER: "checker-password"}
ACCOUNT = "4000123456789"  # a recipient account: must never be shown in full


@pytest.fixture(scope="module")
def api(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Airflow's api-server app (all of it: REST API, auth, execution API) in this process, with
    two users (the maker ``dag_test`` and ``checker``) and ``simple_auth_manager_all_admins`` off,
    so that Airflow enforces ``assigned_users``."""
    import os

    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    settings = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{MAKER}:admin,{CHECKER}:op",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
    }
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        with TestClient(create_app()) as client:
            yield client
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def approval_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Approval as the issue's default: threshold 0, approvers the maker (left out) and checker."""
    monkeypatch.setenv("PAYOUT_APPROVAL_THRESHOLD", "0")
    monkeypatch.setenv("PAYOUT_APPROVERS", f"{MAKER},{CHECKER}")
    monkeypatch.setenv("PAYOUT_APPROVAL_TIMEOUT", "PT10M")


class Responder(threading.Thread):
    """In the background: wait for the approval request of ``task_id``, then run ``act`` on it."""

    def __init__(self, client: Any, dag_id: str, task_id: str, act: Callable[[dict], Any]) -> None:
        super().__init__(daemon=True)
        self.client, self.dag_id, self.task_id, self.act = client, dag_id, task_id, act
        self.detail: dict[str, Any] = {}
        self.results: list[Any] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            token = approval_api.login(self.client, CHECKER, PASSWORDS[CHECKER])
            self.detail = approval_api.wait_for_request(
                # dag.test() runs no executor, so there is no late report to settle for
                self.client,
                token,
                self.dag_id,
                None,
                self.task_id,
                timeout=240,
                settle=1.0,
            )
            self.results.append(self.act(self.detail))
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self) -> None:
        self.join(timeout=30)
        if self.error:
            raise self.error


def answer_as(client: Any, user: str, detail: dict[str, Any], option: str) -> int:
    token = approval_api.login(client, user, PASSWORDS[user])
    ti = detail["task_instance"]
    response = approval_api.answer(client, token, ti["dag_id"], ti["dag_run_id"], ti["task_id"], option)
    return response.status_code


def run_answered(
    run_dag: Callable[..., Any], api: Any, dag_id: str, conf: dict, task_id: str, act: Callable[[dict], Any]
) -> tuple[Any, Responder]:
    responder = Responder(api, dag_id, task_id, act)
    responder.start()
    result = run_dag(dag_id, conf)
    responder.finish()
    return result, responder


@dataclass
class BatchRun:
    """A ``payout_batch`` run answered by ``act``, and what a user checks afterwards."""

    result: Any
    responder: Responder
    rows: list[dict[str, str]]
    summary: dict[str, Any]


@pytest.fixture
def run_batch(
    gateway_conn: Any,
    approval_on: None,
    api: Any,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    write_batch: Callable[..., Path],
    valid_rows: Callable[..., list],
    read_report: Callable[..., Any],
) -> Callable[[Callable[[dict], Any]], BatchRun]:
    """Run a 4-row batch (3 valid, the largest 950.00 USD to ``ACCOUNT``; 1 rejected) with
    approval on; ``act`` gets the open approval request (from the api-server) and answers it."""
    rows = valid_rows(3, prefix="ap")
    rows[2]["fields_data"] = f"account:{ACCOUNT}"
    rows[2]["service_amount"] = "950.00"  # the largest payout
    rows.append({"service": "no_such_service", "service_amount": "1.00", "reference_id": "bad-1"})
    conf = {"batch_file": str(write_batch(tmp_path / "approval.csv", rows)), "output_dir": str(tmp_path)}

    def run(act: Callable[[dict], Any]) -> BatchRun:
        result, responder = run_answered(run_dag, api, BATCH, conf, "approve_batch", act)
        folders = [p for p in tmp_path.iterdir() if (p / "report.csv").exists()]
        assert len(folders) == 1, folders
        report_rows, summary = read_report(folders[0])
        return BatchRun(result, responder, report_rows, summary)

    return run


def test_batch_approved_by_checker_after_the_maker_is_refused_by_airflow(
    run_batch: Callable[..., BatchRun], api: Any, gateway_conn: Any
) -> None:
    def act(detail: dict) -> tuple[int, int, list[str]]:
        sent_before = list(gateway_conn.ledger()["references"])  # nothing may be sent before the answer
        return (
            answer_as(api, MAKER, detail, "Approve"),
            answer_as(api, CHECKER, detail, "Approve"),
            sent_before,
        )

    run = run_batch(act)

    maker_status, checker_status, sent_before = run.responder.results[0]
    assert maker_status == 403  # Airflow: the maker is not an assigned user
    assert checker_status == 200
    assert sent_before == []
    detail = run.responder.detail
    assert [u["name"] for u in detail["assigned_users"]] == [CHECKER]  # the maker left out
    assert detail["subject"].startswith("Approve payout batch approval-")
    assert "3 payout(s), 953.01 USD" in detail["subject"]  # 1.00 + 2.01 + 950.00
    body = detail["body"]
    assert "Rows to pay: **3**" in body and "Rows rejected (never sent): **1**" in body
    assert "| USD | 953.01 |" in body and "950.00 USD" in body
    assert "account \\*\\*\\*\\*\\*\\*6789" in body and ACCOUNT not in body  # masked recipient only
    assert "SHA-256: `" in body and "File: approval\\.csv" in body

    assert run.result.tasks["approve_batch"] == "success"
    assert run.result.mapped("chunk.execute") == ["success"]
    assert run.summary["approval"]["status"] == "approved" and run.summary["approval"]["by"] == CHECKER
    assert run.summary["approval"]["triggered_by"] == MAKER
    assert run.summary["counts"] == {"processed": 3, "rejected": 1}
    assert len(gateway_conn.ledger()["references"]) == 3


def assert_nothing_sent(run: BatchRun, gateway_conn: Any, reason: str) -> None:
    """The run is red, every valid row is ``not_approved`` with ``reason``, the gateway saw nothing."""
    assert run.result.state == "failed"
    assert run.result.tasks["report"] == "success" and run.result.tasks["verdict"] == "failed"
    assert run.summary["approval"]["status"] == "not approved"
    assert run.summary["counts"] == {"not_approved": 3, "rejected": 1}
    assert {r["reason"] for r in run.rows if r["status"] == "not_approved"} == {f"not approved: {reason}"}
    assert gateway_conn.ledger()["references"] == {}


def test_batch_rejected_sends_nothing_and_the_report_says_not_approved(
    run_batch: Callable[..., BatchRun], api: Any, gateway_conn: Any
) -> None:
    run = run_batch(lambda detail: answer_as(api, CHECKER, detail, "Reject"))

    assert run.responder.results == [200]
    assert run.result.tasks["approve_batch"] == "success"  # the question was answered
    assert run.result.mapped("chunk.execute") in (["skipped"], [])
    assert run.summary["approval"]["by"] == CHECKER
    assert_nothing_sent(run, gateway_conn, f"rejected by {CHECKER}")


def add_assigned_user(detail: dict[str, Any], user: str) -> None:
    """Widen the request's ``assigned_users`` in the metadata database (a misconfigured or
    tampered deployment): Airflow then lets ``user`` answer."""
    from uuid import UUID

    from airflow.models.hitl import HITLDetail
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.get(HITLDetail, UUID(detail["task_instance"]["id"]))
        row.assignees = [*(row.assignees or []), {"id": user, "name": user}]


def test_self_approval_is_refused_even_when_airflow_lets_it_through(
    run_batch: Callable[..., BatchRun], api: Any, gateway_conn: Any
) -> None:
    def approve_own_run(detail: dict) -> int:
        add_assigned_user(detail, MAKER)
        return answer_as(api, MAKER, detail, "Approve")

    run = run_batch(approve_own_run)

    assert run.responder.results == [200]  # Airflow took the maker's own "Approve"
    assert run.summary["approval"]["by"] == MAKER
    reason = f"approval refused: {MAKER} triggered this run and cannot approve it (four eyes)"
    assert_nothing_sent(run, gateway_conn, reason)


def test_no_answer_in_time_sends_nothing(
    run_batch: Callable[..., BatchRun], gateway_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    monkeypatch.setenv("PAYOUT_APPROVAL_TIMEOUT", "2")

    def let_it_time_out(detail: dict) -> bool:
        time.sleep(2.5)
        SchedulerJobRunner(job=Job()).check_awaiting_input_timeouts()  # the scheduler's sweep
        return True

    run = run_batch(let_it_time_out)

    assert run.summary["approval"]["by"] is None
    assert_nothing_sent(run, gateway_conn, "no answer within 0:00:02")


def single_conf(amount: str) -> dict[str, Any]:
    return {"service": "test_usd", "currency": "USD", "amount": amount, "fields": {"account": ACCOUNT}}


def test_payout_by_reference_asks_above_the_threshold_and_not_below(
    gateway_conn: Any,
    approval_on: None,
    api: Any,
    run_dag: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYOUT_APPROVAL_THRESHOLD", "100")

    below = run_dag(SINGLE, single_conf("99.99"))  # nobody answers: it must not wait
    assert below.state == "success" and below.tasks["approve_payout"] == "success"
    assert len(gateway_conn.ledger()["references"]) == 1

    above, responder = run_answered(
        run_dag,
        api,
        SINGLE,
        single_conf("100.00"),  # at the threshold: asks
        "approve_payout",
        lambda detail: answer_as(api, CHECKER, detail, "Approve"),
    )
    assert responder.results == [200]
    assert above.state == "success"
    assert responder.detail["subject"].endswith(": 100.00 USD")
    assert "account \\*\\*\\*\\*\\*\\*6789" in responder.detail["body"]
    assert ACCOUNT not in responder.detail["body"]
    assert len(gateway_conn.ledger()["references"]) == 2


def test_no_approver_left_fails_clearly_and_sends_nothing(
    gateway_conn: Any,
    approval_on: None,
    run_dag: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYOUT_APPROVERS", MAKER)  # only the maker: nobody may approve
    result = run_dag(SINGLE, single_conf("10.00"))

    assert result.state == "failed"
    assert result.tasks["approve_payout"] == "failed"
    assert result.tasks["create_invoice"] == "upstream_failed"
    assert gateway_conn.ledger()["references"] == {}


def test_empty_drop_folder_asks_nothing_and_skips(
    gateway_conn: Any,
    approval_on: None,
    run_dag: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An hourly run that finds no file has nothing to approve: no question, no failure."""
    drop = tmp_path / "incoming"
    drop.mkdir()
    monkeypatch.setenv("PAYOUT_BATCH_DROP_DIR", str(drop))
    result = run_dag(BATCH, {"output_dir": str(tmp_path / "out")})

    assert result.state == "success"
    assert result.tasks["approve_batch"] == "success"
    assert result.tasks["report"] == "skipped" and result.tasks["verdict"] == "skipped"
    assert gateway_conn.ledger()["references"] == {}
