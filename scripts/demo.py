"""The main job (``make demo``): a local Airflow with the payout DAGs, talking to the sandbox gateway.

What it does, in order:

1. Prepares a local Airflow home in ``var/airflow`` (SQLite, LocalExecutor, no examples, a known admin
   password, loopback only, a SQLite busy timeout) and the folders for batch files and reports.
2. Starts the sandbox gateway and the Airflow components (api-server, scheduler, dag-processor,
   triggerer), each in its own process group, and records the groups in ``var/demo/state.json``.
   If a previous ``make demo`` is still running and healthy, it is reused; if it is half dead, the
   recorded groups are stopped first (``scripts/stop.py``) and everything starts again.
3. Creates (or updates) the ``payout_gateway_default`` connection through the REST API.
4. Triggers ``payout_by_reference`` and ``payout_batch`` (on ``include/samples/batch_demo.csv``)
   through the REST API as ``admin``, approves both (four eyes: ``approve_payout`` and
   ``approve_batch``) through the REST API as the second user ``checker`` and says so, waits for
   both, prints their states, the summary and the report paths.
5. Leaves everything running and prints the UI address and login. ``make stop`` stops it.

Users (simple auth manager, ``simple_auth_manager_all_admins`` off so that Airflow enforces who may
answer an approval): ``admin``/``admin`` (triggers the demo's runs), ``maker``/``maker`` (may
trigger DAGs), ``checker``/``checker`` (may approve). Approval: ``PAYOUT_APPROVERS=checker,admin``,
``PAYOUT_APPROVAL_THRESHOLD=0`` (everything needs a second person).

Settings (environment): ``DEMO_AIRFLOW_PORT`` (8080), ``DEMO_SANDBOX_PORT`` (8765),
``DEMO_PARALLELISM`` (8), ``DEMO_VAR_DIR`` (``var/``: Airflow home, state, logs, reports).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from base64 import urlsafe_b64encode
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stop import STATE_FILE, VAR, group_alive, load_state, process_start_time, stop_recorded

PROJECT = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = VAR / "airflow"
DEMO_DIR = STATE_FILE.parent
LOG_DIR = DEMO_DIR / "logs"
REPORTS_DIR = VAR / "reports"
DROP_DIR = VAR / "batches" / "incoming"
BENCH_DIR = VAR / "bench"  # scripts/bench.py puts its batch files and reports here
SANDBOX_DB = DEMO_DIR / "sandbox.db"
BIN = Path(sys.executable).parent  # the venv's bin (not resolved: the venv's own entry points)

AIRFLOW_PORT = int(os.environ.get("DEMO_AIRFLOW_PORT", "8080"))
SANDBOX_PORT = int(os.environ.get("DEMO_SANDBOX_PORT", "8765"))
PARALLELISM = int(os.environ.get("DEMO_PARALLELISM", "8"))
AIRFLOW_URL = f"http://127.0.0.1:{AIRFLOW_PORT}"
SANDBOX_URL = f"http://127.0.0.1:{SANDBOX_PORT}"

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"  # noqa: S105 - the demo's documented local login
CHECKER_USER = "checker"
#: The demo's users: name -> (role, password). The documented local logins.
USERS = {
    ADMIN_USER: ("admin", ADMIN_PASSWORD),
    "maker": ("user", "maker"),
    CHECKER_USER: ("op", "checker"),
}
APPROVERS = f"{CHECKER_USER},{ADMIN_USER}"
#: Each DAG's approval task (answered by ``checker`` through the REST API).
APPROVAL_TASKS = {"payout_by_reference": "approve_payout", "payout_batch": "approve_batch"}
SANDBOX_LOGIN = "merchant"
SANDBOX_PASSWORD = "sandbox-secret"  # noqa: S105 - the sandbox's documented default
SANDBOX_PUBLIC_KEY = "pk_test_sandbox"
SANDBOX_CALLBACK_SECRET = "sandbox-callback-secret"  # noqa: S105 - the sandbox's documented default
#: Where the sandbox sends its signed callbacks (the account's callback URL): the Payouts view plugin.
CALLBACK_URL = f"{AIRFLOW_URL}/payouts/callbacks"
CONN_ID = "payout_gateway_default"

AIRFLOW_COMPONENTS: dict[str, list[str]] = {
    "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(AIRFLOW_PORT), "--workers", "1"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
DEMO_DAGS = ("payout_by_reference", "payout_batch")
RUN_TIMEOUT_S = 600.0


def say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- Airflow home and env


def local_secrets() -> dict[str, str]:
    """Fernet and JWT keys, made once and kept in var/ so that every component and restart agrees."""
    path = DEMO_DIR / "secrets.json"
    if path.exists():
        values = json.loads(path.read_text())
        if len(values.get("jwt_secret", "")) >= 64:
            return values
    values = {
        "fernet_key": urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "jwt_secret": secrets.token_urlsafe(64),  # >= 64 bytes for HS512
    }
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def prepare_home() -> None:
    """Create var/ folders, the admin password file and the local settings module."""
    for folder in (AIRFLOW_HOME / "config", LOG_DIR, REPORTS_DIR, DROP_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    passwords = AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"
    passwords.write_text(json.dumps({name: password for name, (_role, password) in USERS.items()}))
    shutil.copyfile(
        PROJECT / "include" / "airflow" / "airflow_local_settings.py",
        AIRFLOW_HOME / "config" / "airflow_local_settings.py",
    )


#: Trigger-conf keys whose values Airflow's secrets masker hides (audit log, task logs, rendered
#: fields): "fields" also covers "fields_data", "customer" also "customer_metadata".
SENSITIVE_CONF_KEYS = "fields,customer"


def airflow_env() -> dict[str, str]:
    """The environment of every Airflow process the demo starts."""
    keys = local_secrets()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    env.update(
        AIRFLOW_HOME=str(AIRFLOW_HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PROJECT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM=str(PARALLELISM),
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__FERNET_KEY=keys["fernet_key"],
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{AIRFLOW_URL}/execution/",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=",".join(f"{n}:{role}" for n, (role, _p) in USERS.items()),
        # Airflow enforces an approval's assigned users only without all-admins mode
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
        # Airflow's audit log keeps every trigger's conf; values under these keys (a payout's
        # card/account fields, the customer) are stored and shown as *** there and in task logs
        AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES=SENSITIVE_CONF_KEYS,
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(
            AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"
        ),
        AIRFLOW__API_AUTH__JWT_SECRET=keys["jwt_secret"],
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(AIRFLOW_PORT),
        AIRFLOW__API__BASE_URL=AIRFLOW_URL,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS="airflow_local_settings.connect_args",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="5",
        PAYOUT_REPORTS_DIR=str(REPORTS_DIR),
        PAYOUT_BATCH_DROP_DIR=str(DROP_DIR),
        # what a trigger may read and write: the demo's own folders (scripts/bench.py
        # uses var/bench/) and the samples
        PAYOUT_INPUT_DIRS=os.pathsep.join(map(str, (DROP_DIR, PROJECT / "include" / "samples", BENCH_DIR))),
        PAYOUT_OUTPUT_DIRS=os.pathsep.join(map(str, (REPORTS_DIR, BENCH_DIR / "reports"))),
        # four eyes: everything needs approval by checker (or admin, when admin did not trigger)
        PAYOUT_APPROVERS=APPROVERS,
        PAYOUT_APPROVAL_THRESHOLD="0",
    )
    return env


def sandbox_env() -> dict[str, str]:
    return {
        **os.environ,
        "PAYOUT_SANDBOX_LOGIN": SANDBOX_LOGIN,
        "PAYOUT_SANDBOX_PASSWORD": SANDBOX_PASSWORD,
        "PAYOUT_SANDBOX_PUBLIC_KEY": SANDBOX_PUBLIC_KEY,
        "PAYOUT_SANDBOX_CALLBACK_SECRET": SANDBOX_CALLBACK_SECRET,
    }


# --------------------------------------------------------------------------- processes


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_group(name: str, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Start ``argv`` as the leader of a new session and process group; return its record."""
    log = (LOG_DIR / f"{name}.log").open("ab")
    process = subprocess.Popen(  # noqa: S603 - our own argv, no shell
        argv,
        env=env,
        cwd=PROJECT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return {
        "pid": process.pid,
        "pgid": os.getpgid(process.pid),
        "start_time": process_start_time(process.pid),
        "argv": argv,
        "log": str(LOG_DIR / f"{name}.log"),
    }


def wait_until(what: str, check: Any, timeout: float, interval: float = 0.5) -> Any:
    """Call ``check`` until it returns something truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, OSError) as exc:
            last_error = exc
        time.sleep(interval)
    raise SystemExit(f"Timed out after {timeout:.0f} s waiting for {what} (last error: {last_error}).")


def sandbox_healthy() -> bool:
    return httpx.get(f"{SANDBOX_URL}/openapi.json", timeout=2).status_code == 200


def airflow_healthy() -> bool:
    """True when the api-server answers and scheduler, triggerer and dag-processor report healthy."""
    body = httpx.get(f"{AIRFLOW_URL}/api/v2/monitor/health", timeout=2).json()
    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return all((body.get(part) or {}).get("status") == "healthy" for part in parts)


def users_configured() -> bool:
    """True when the running api-server knows the demo's approver (an older demo did not)."""
    user = CHECKER_USER
    response = httpx.post(
        f"{AIRFLOW_URL}/auth/token", json={"username": user, "password": USERS[user][1]}, timeout=10
    )
    return response.status_code in (200, 201)


def recorded_groups_alive(state: dict[str, Any]) -> bool:
    processes = state.get("processes", {})
    expected = {"sandbox", *AIRFLOW_COMPONENTS}
    return set(processes) == expected and all(
        group_alive(int(r["pgid"])) and process_start_time(int(r["pid"])) == r["start_time"]
        for r in processes.values()
    )


def reuse_running_demo() -> bool:
    """True if a previous ``make demo`` is still running and healthy (then nothing is restarted)."""
    state = load_state()
    if not state:
        return False
    same_ports = state.get("airflow_port") == AIRFLOW_PORT and state.get("sandbox_port") == SANDBOX_PORT
    try:
        healthy = (
            same_ports
            and recorded_groups_alive(state)
            and sandbox_healthy()
            and airflow_healthy()
            and users_configured()
        )
    except (httpx.HTTPError, ValueError):
        healthy = False
    if healthy:
        say("A previous demo is running and healthy: reusing it.")
        return True
    say("A previous demo is recorded but not healthy: stopping its process groups first.")
    stop_recorded()
    return False


def start_everything(extra_env: dict[str, str] | None = None, processing_delay: float = 1.0) -> None:
    """Start the sandbox and Airflow from scratch and record their process groups.

    ``extra_env`` is added to the Airflow processes' environment (``scripts/chaos.py`` uses it);
    ``processing_delay`` is the sandbox's seconds from process to a final status.
    """
    for port, variable in ((AIRFLOW_PORT, "DEMO_AIRFLOW_PORT"), (SANDBOX_PORT, "DEMO_SANDBOX_PORT")):
        if port_in_use(port):
            raise SystemExit(
                f"Port {port} on 127.0.0.1 is taken by a process this demo did not start. "
                f"Free it or choose another port: {variable}=NNNN make demo"
            )
    env = {**airflow_env(), **(extra_env or {})}
    processes: dict[str, Any] = {}
    state = {"airflow_port": AIRFLOW_PORT, "sandbox_port": SANDBOX_PORT, "processes": processes}

    def record() -> None:
        STATE_FILE.write_text(json.dumps(state, indent=2))

    say(f"Starting the sandbox gateway on {SANDBOX_URL} (db {SANDBOX_DB})")
    sandbox_argv = [
        str(BIN / "payout-sandbox"),
        *("--host", "127.0.0.1", "--port", str(SANDBOX_PORT), "--db", str(SANDBOX_DB)),
        *("--processing-delay", str(processing_delay)),
        *("--callback-url", CALLBACK_URL),
    ]
    processes["sandbox"] = start_group("sandbox", sandbox_argv, sandbox_env())
    record()

    say("Migrating the Airflow metadata database (SQLite)")
    migrate = subprocess.run(  # noqa: S603 - our own argv, no shell
        [str(BIN / "airflow"), "db", "migrate"], env=env, cwd=PROJECT, capture_output=True, text=True
    )
    if migrate.returncode != 0:
        raise SystemExit(f"airflow db migrate failed:\n{migrate.stdout}\n{migrate.stderr}")

    for name, args in AIRFLOW_COMPONENTS.items():
        say(f"Starting airflow {name}")
        processes[name] = start_group(name, [str(BIN / "airflow"), *args], env)
        record()

    wait_until("the sandbox", sandbox_healthy, timeout=60)
    say("Waiting for Airflow to report healthy")
    wait_until(f"Airflow at {AIRFLOW_URL} (logs in {LOG_DIR})", airflow_healthy, timeout=180)


# --------------------------------------------------------------------------- REST API


class AirflowApi:
    """A small client for Airflow's REST API v2 with a bearer token from /auth/token.

    Every call is retried on timeouts, connection errors and 5xx: on SQLite the api-server can
    wait for the database while the scheduler and the first scheduled runs write. Each call is
    safe to repeat (the trigger names its run, so a repeat answers 409 instead of a second run).
    """

    ATTEMPTS = 5

    def __init__(self) -> None:
        response = self._retry(
            lambda: httpx.post(
                f"{AIRFLOW_URL}/auth/token",
                json={"username": ADMIN_USER, "password": ADMIN_PASSWORD},
                timeout=60,
            )
        )
        response.raise_for_status()
        token = response.json()["access_token"]
        self.client = httpx.Client(
            base_url=f"{AIRFLOW_URL}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def _retry(self, call: Any) -> httpx.Response:
        for attempt in range(1, self.ATTEMPTS + 1):
            try:
                response = call()
            except httpx.TransportError as exc:
                if attempt == self.ATTEMPTS:
                    raise
                say(f"Airflow API call failed ({type(exc).__name__}); retrying")
            else:
                if response.status_code < 500 or attempt == self.ATTEMPTS:
                    return response
                say(f"Airflow API answered {response.status_code}; retrying")
            time.sleep(2 * attempt)
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._retry(lambda: self.client.request(method, path, **kwargs))

    def upsert_connection(self, extra: dict[str, Any] | None = None) -> None:
        """Create ``payout_gateway_default`` pointing at the sandbox, or update it in place
        (``extra``: more connection extras, e.g. client limits)."""
        body = {
            "connection_id": CONN_ID,
            "conn_type": "payout_gateway",
            "description": "The local sandbox gateway started by make demo",
            "host": f"{SANDBOX_URL}/api",
            "login": SANDBOX_LOGIN,
            "password": SANDBOX_PASSWORD,
            "extra": json.dumps(
                {
                    "public_key": SANDBOX_PUBLIC_KEY,
                    "test_mode": True,
                    # The sandbox has no dashboard: the task's "Payout invoice" link opens the
                    # Payouts view (/payouts/invoices/<id>). Its test-mode callbacks are signed so:
                    "test_callback_secret": SANDBOX_CALLBACK_SECRET,
                    **(extra or {}),
                }
            ),
        }
        response = self.request("POST", "/connections", json=body)
        if response.status_code == 409:
            response = self.request("PATCH", f"/connections/{CONN_ID}", json=body)
        response.raise_for_status()

    def upsert_pool(self) -> None:
        """Create the gateway pool that payout_batch's chunk tasks run in (else they never start)."""
        from payout_jobs.gateway_pool import GATEWAY_POOL, POOL_DESCRIPTION, pool_slots

        body = {"slots": pool_slots(), "description": POOL_DESCRIPTION, "include_deferred": False}
        response = self.request("POST", "/pools", json={"name": GATEWAY_POOL, **body})
        if response.status_code == 409:  # exists: update it (3.3.2's PATCH wants every field, "pool")
            patch = {"pool": GATEWAY_POOL, **body}
            response = self.request("PATCH", f"/pools/{GATEWAY_POOL}", json=patch)
        response.raise_for_status()

    def dag_ready(self, dag_id: str) -> bool:
        response = self.request("GET", f"/dags/{dag_id}")
        if response.status_code == 404:
            errors = self.request("GET", "/importErrors").json().get("import_errors", [])
            if errors:
                details = "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors)
                raise SystemExit(f"The DAG folder has import errors:\n{details}")
            return False
        response.raise_for_status()
        return True

    def unpause(self, dag_id: str) -> None:
        """Unpause the DAG if it is paused (new DAGs are not: dags_are_paused_at_creation=False)."""
        if self.request("GET", f"/dags/{dag_id}").json().get("is_paused"):
            self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        """Trigger a run named before the first attempt, so that a retried call cannot make two."""
        run_id = f"demo__{time.strftime('%Y-%m-%dT%H-%M-%S')}__{secrets.token_hex(3)}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf, "note": "make demo"}
        response = self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)
        if response.status_code not in (200, 409):
            raise SystemExit(f"Triggering {dag_id} failed: HTTP {response.status_code} {response.text}")
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str:
        response = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        response.raise_for_status()
        return response.json()["state"]

    def task_states(self, dag_id: str, run_id: str) -> list[tuple[str, int, str]]:
        response = self.request(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}
        )
        response.raise_for_status()
        return [
            (ti["task_id"], ti.get("map_index", -1), ti.get("state") or "none")
            for ti in response.json()["task_instances"]
        ]

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        response = self.request(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        )
        return response.json().get("value") if response.status_code == 200 else None


class Approver:
    """The second person: answers approvals through the REST API as ``checker`` (what the
    run's Required actions page does in the UI)."""

    def __init__(self, user: str = CHECKER_USER) -> None:
        from payout_jobs import approval_api  # the venv's project package

        self.user, self.rest = user, approval_api
        self.client = httpx.Client(base_url=AIRFLOW_URL, timeout=60)
        self.token = approval_api.login(self.client, user, USERS[user][1])
        self.first_seen: dict[tuple[str, str], float] = {}  # when each request was first seen parked

    def approve_if_asked(self, dag_id: str, run_id: str) -> bool:
        """Approve the run's open approval request, if there is one; True when it did."""
        task_id = APPROVAL_TASKS.get(dag_id)
        if not task_id:
            return False
        pending = [
            d
            for d in self.rest.pending_requests(self.client, self.token, dag_id)
            if d["task_instance"]["dag_run_id"] == run_id and d["task_instance"]["task_id"] == task_id
        ]
        if not pending:
            return False
        # answer once the parked task has settled (approval_api.SETTLE_SECONDS says why)
        seen = self.first_seen.setdefault((dag_id, run_id), time.monotonic())
        if time.monotonic() - seen < self.rest.SETTLE_SECONDS:
            return False
        response = self.rest.answer(self.client, self.token, dag_id, run_id, task_id, self.rest.APPROVE)
        if response.status_code == 409:  # answered meanwhile (in the UI, by another approver)
            say(f"{dag_id} run {run_id} was already answered")
            return True
        if response.status_code >= 500:  # e.g. SQLite busy: not recorded, so ask again next round
            say(f"approving {dag_id} run {run_id} got HTTP {response.status_code}; trying again")
            return False
        if response.status_code != 200:
            raise SystemExit(
                f"Approving {dag_id} run {run_id} as {self.user} failed: HTTP {response.status_code}"
            )
        say(f"approved {dag_id} run {run_id} as {self.user} ({pending[0]['subject']})")
        return True


def wait_for_run(
    api: AirflowApi, dag_id: str, run_id: str, approve: Callable[[], object] | None = None
) -> str:
    """Wait until the run ends; ``approve`` is called while waiting (to answer approval requests:
    of this run, and of the other runs waited for next, so that none waits for its turn)."""

    def finished() -> str | None:
        state = api.run_state(dag_id, run_id)
        if state in ("success", "failed"):
            return state
        if approve is not None:
            approve()
        return None

    return wait_until(f"{dag_id} run {run_id}", finished, timeout=RUN_TIMEOUT_S, interval=1.0)


# --------------------------------------------------------------------------- the demo runs


def single_payout_conf() -> dict[str, Any]:
    return {
        "service": "test_usd",
        "currency": "USD",
        "amount": "125.50",
        "fields": {"account": "4000123412"},
        "description": "make demo: one payout by reference",
        "customer": {"reference_id": "demo-customer-1", "name": "Demo Customer"},
        "test_mode": True,
    }


def batch_conf() -> dict[str, Any]:
    return {
        "batch_file": str(PROJECT / "include" / "samples" / "batch_demo.csv"),
        "currency": "USD",
        "output_dir": str(REPORTS_DIR),
    }


def print_run(api: AirflowApi, dag_id: str, run_id: str, state: str) -> None:
    print(f"\n=== {dag_id}  run {run_id}: {state.upper()}")
    for task_id, map_index, task_state in sorted(api.task_states(dag_id, run_id)):
        name = f"{task_id}[{map_index}]" if map_index >= 0 else task_id
        print(f"    {name:<28} {task_state}")


def main() -> int:
    started = time.monotonic()
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    prepare_home()
    if not reuse_running_demo():
        start_everything()

    api = AirflowApi()
    api.upsert_connection()
    api.upsert_pool()
    say(f"Connection {CONN_ID} -> {SANDBOX_URL}/api")
    for dag_id in DEMO_DAGS:
        wait_until(f"DAG {dag_id} to be parsed", lambda d=dag_id: api.dag_ready(d), timeout=120)
        api.unpause(dag_id)

    runs = {
        "payout_by_reference": api.trigger("payout_by_reference", single_payout_conf()),
        "payout_batch": api.trigger("payout_batch", batch_conf()),
    }
    say("Triggered " + ", ".join(f"{dag} ({run})" for dag, run in runs.items()))
    approver = Approver()

    def approve_all() -> None:
        for dag_id, run_id in runs.items():
            approver.approve_if_asked(dag_id, run_id)

    states = {dag_id: wait_for_run(api, dag_id, run_id, approve_all) for dag_id, run_id in runs.items()}

    for dag_id, run_id in runs.items():
        print_run(api, dag_id, run_id, states[dag_id])
    from payout_jobs.batch_report import summary_table  # the venv's project package
    from payout_jobs.single_payout import summary_block

    summary = api.xcom("payout_by_reference", runs["payout_by_reference"], "summary")
    if summary:
        print(summary_block(summary))
    report = api.xcom("payout_batch", runs["payout_batch"], "report")
    if report:
        print()
        print(summary_table(report))
        print(f"summary:  {report['summary_json']}")

    print(
        f"\nAirflow UI:   {AIRFLOW_URL}   (login {ADMIN_USER} / {ADMIN_PASSWORD})"
        f'\nPayouts view: {AIRFLOW_URL}/payouts/   (also "Payouts" in the UI\'s menu)'
        f"\nApprovals:    maker / maker may trigger; checker / checker (or admin) approves on the run's "
        "Required actions page"
        f"\nSandbox:      {SANDBOX_URL}/api   (login {SANDBOX_LOGIN}; docs at {SANDBOX_URL}/docs)"
        f"\nCallbacks:    sandbox -> {CALLBACK_URL}   (signed; checked with test_callback_secret)"
        f"\nReports:      {REPORTS_DIR}"
        f"\nDrop folder:  {DROP_DIR}   (payout_batch picks CSV files up from here every hour)"
        f"\nLogs:         {LOG_DIR}"
        f"\nEverything keeps running; `make stop` stops it."
        f"\nDemo took {time.monotonic() - started:.1f} s."
    )
    return 0 if all(state == "success" for state in states.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
