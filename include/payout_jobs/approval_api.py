"""Answering a payout approval through Airflow's REST API (what the UI's Required actions page does).

Used by ``make demo`` (approves as a second user) and the
tests. ``client`` is any ``httpx.Client`` rooted at the api-server (a FastAPI ``TestClient`` too).

    token = login(client, "checker", "checker")
    detail = wait_for_request(client, token, "payout_batch", run_id, "approve_batch", timeout=300)
    answer(client, token, "payout_batch", run_id, "approve_batch", "Approve")   # or "Reject"
"""

from __future__ import annotations

import time
from typing import Any

import httpx

APPROVE, REJECT = "Approve", "Reject"


def login(client: httpx.Client, username: str, password: str) -> str:
    """A bearer token for ``username`` (``POST /auth/token``, simple auth manager)."""
    response = client.post("/auth/token", json={"username": username, "password": password})
    response.raise_for_status()
    return str(response.json()["access_token"])


def _path(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    return f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails"


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def pending_requests(client: httpx.Client, token: str, dag_id: str = "~") -> list[dict[str, Any]]:
    """The approvals waiting for an answer (``GET .../hitlDetails?response_received=false``) whose
    task is parked in ``awaiting_input``.

    The request is visible a moment before its task is parked; an answer given in that moment is
    recorded but does not resume the task (Airflow 3.3.2 resumes only parked tasks, and otherwise
    only at the timeout): a person never hits that window, a script must wait for the state.
    """
    response = client.get(
        f"/api/v2/dags/{dag_id}/dagRuns/~/hitlDetails",
        params={"response_received": "false", "limit": 100},
        headers=_headers(token),
    )
    response.raise_for_status()
    return [d for d in response.json()["hitl_details"] if d["task_instance"]["state"] == "awaiting_input"]


#: How long a request's task must have been parked before a script answers it. The task process
#: that parked it still has to be reported done by the executor; an answer that resumes the task
#: before the scheduler saw that report makes Airflow 3.3.2 fail the task ("finished with state
#: success, but the task instance's state attribute is queued"). A person never answers that fast.
SETTLE_SECONDS = 15.0  # seen here: the report came 6.6 s after the task parked


def wait_for_request(
    client: httpx.Client,
    token: str,
    dag_id: str,
    run_id: str | None,
    task_id: str,
    timeout: float,
    settle: float = SETTLE_SECONDS,
) -> dict[str, Any]:
    """The open approval request of ``task_id`` in ``run_id`` (any run when None), once its task
    has been parked in ``awaiting_input`` for ``settle`` seconds."""
    deadline = time.monotonic() + timeout
    first_seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        for detail in pending_requests(client, token, dag_id):
            ti = detail["task_instance"]
            if ti["task_id"] == task_id and run_id in (None, ti["dag_run_id"]):
                seen = first_seen.setdefault(ti["dag_run_id"], time.monotonic())
                if time.monotonic() - seen >= settle:
                    return detail
        time.sleep(0.5)
    raise TimeoutError(
        f"no approval request of {dag_id}.{task_id} in {run_id or 'any run'} after {timeout:.0f} s"
    )


def answer(
    client: httpx.Client, token: str, dag_id: str, run_id: str, task_id: str, option: str
) -> httpx.Response:
    """``PATCH .../hitlDetails`` with ``option`` ("Approve" or "Reject"); the response as is
    (200 answered, 403 not an assigned user, 409 already answered)."""
    return client.patch(
        _path(dag_id, run_id, task_id),
        json={"chosen_options": [option], "params_input": {}},
        headers=_headers(token),
    )
