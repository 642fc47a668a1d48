"""Shared fixtures: a real sandbox gateway on a free loopback port, and a throwaway Airflow home.

The Airflow environment is set at import time, before anything imports airflow.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

PROJECT = Path(__file__).resolve().parent.parent
SPEC_SAMPLES = PROJECT / "tests" / "spec_samples"

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="payout_test_airflow_"))
os.environ.update(
    AIRFLOW_HOME=str(_AIRFLOW_HOME),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT / "dags"),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(PROJECT / "plugins"),
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
    AIRFLOW__CORE__UNIT_TEST_MODE="False",
    # One JWT secret for every in-process api-server app the tests build (the approval, view and
    # form tests); without it the app refuses to sign tokens.
    AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(64),
    # Four-eyes approval is off for the tests that are not about it (tests/dags/test_approval.py
    # turns it on for its own runs).
    PAYOUT_APPROVAL_THRESHOLD="off",
    # as the demo and compose deploy it: the audit log and task logs hide trigger-conf card fields
    AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES="fields,customer",
)

SANDBOX_LOGIN = "merchant"
SANDBOX_PASSWORD = "sandbox-secret-for-tests"
SANDBOX_PUBLIC_KEY = "pk_test_for_tests"
SANDBOX_CALLBACK_SECRET = "callback-secret-for-tests"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Sandbox:
    """A running `payout-sandbox` process and a small admin client for it."""

    port: int
    db: Path
    process: subprocess.Popen
    args: list[str] = field(default_factory=list)
    login: str = SANDBOX_LOGIN
    password: str = SANDBOX_PASSWORD
    public_key: str = SANDBOX_PUBLIC_KEY
    callback_secret: str = SANDBOX_CALLBACK_SECRET

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.login, self.password)

    def client(self, **kwargs: Any) -> httpx.Client:
        """A plain HTTP client with Basic auth, rooted at the server."""
        return httpx.Client(base_url=self.url, auth=self.auth, timeout=30, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as c:
            response = c.request(method, f"/_sandbox/{path.lstrip('/')}", **kwargs)
        response.raise_for_status()
        return response

    def reset(self) -> None:
        self.clear_faults()
        self.admin("POST", "reset")

    def set_faults(self, rules: list[dict[str, Any]], seed: int = 1) -> None:
        self.admin("PUT", "faults", json={"seed": seed, "rules": rules})

    def clear_faults(self) -> None:
        self.admin("DELETE", "faults")

    def ledger(self) -> dict[str, Any]:
        return self.admin("GET", "ledger").json()

    def airflow_connection(self, **extra: Any) -> str:
        """The JSON form of an Airflow connection to this sandbox (for AIRFLOW_CONN_*)."""
        return json.dumps(
            {
                "conn_type": "payout_gateway",
                "host": self.api_url,
                "login": self.login,
                "password": self.password,
                "extra": {"public_key": self.public_key, "test_mode": True, **extra},
            }
        )

    def stop(self) -> None:
        """Stop exactly this process."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_sandbox(
    db: Path, *extra_args: str, port: int | None = None, env: dict[str, str] | None = None
) -> Sandbox:
    """Start `payout-sandbox` on 127.0.0.1 and wait until it answers."""
    port = port or free_port()
    args = [
        str(Path(sys.executable).with_name("payout-sandbox")),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        str(db),
        *extra_args,
    ]
    proc_env = {
        **os.environ,
        "PAYOUT_SANDBOX_LOGIN": SANDBOX_LOGIN,
        "PAYOUT_SANDBOX_PASSWORD": SANDBOX_PASSWORD,
        "PAYOUT_SANDBOX_PUBLIC_KEY": SANDBOX_PUBLIC_KEY,
        "PAYOUT_SANDBOX_CALLBACK_SECRET": SANDBOX_CALLBACK_SECRET,
        **(env or {}),
    }
    log = open(db.with_suffix(".log"), "ab")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(args, env=proc_env, stdout=log, stderr=subprocess.STDOUT)
    sandbox = Sandbox(port=port, db=db, process=process, args=list(extra_args))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = db.with_suffix(".log").read_text()
            raise RuntimeError(f"sandbox exited with {process.returncode}: {output}")
        try:
            if httpx.get(f"{sandbox.url}/openapi.json", timeout=1).status_code == 200:
                return sandbox
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    sandbox.stop()
    raise RuntimeError("sandbox did not start within 30 s")


@pytest.fixture(scope="session")
def sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Start extra sandboxes with their own options; all are stopped at the end of the session."""
    started: list[Sandbox] = []

    def factory(*extra_args: str, db: Path | None = None, port: int | None = None, **kw: Any) -> Sandbox:
        path = db or tmp_path_factory.mktemp("sandbox") / "sandbox.db"
        sandbox = start_sandbox(path, *extra_args, port=port, **kw)
        started.append(sandbox)
        return sandbox

    yield factory
    for sandbox in started:
        sandbox.stop()


@pytest.fixture(scope="session")
def session_sandbox(sandbox_factory: Any) -> Sandbox:
    """One sandbox for the session: seed 7, invoices final 0.3 s after processing starts."""
    return sandbox_factory("--seed", "7", "--processing-delay", "0.3")


@pytest.fixture
def sandbox(session_sandbox: Sandbox) -> Sandbox:
    """The session sandbox, emptied and with no faults, for one test."""
    session_sandbox.reset()
    return session_sandbox


@pytest.fixture
def gateway_conn(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """`payout_gateway_default` points at the sandbox (as an AIRFLOW_CONN_ environment variable)."""
    monkeypatch.setenv("AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT", sandbox.airflow_connection())
    return sandbox


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the throwaway Airflow metadata database once per session."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _AIRFLOW_HOME


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
