"""``make cluster-check``: the Celery topology of docker-compose.yaml, without containers, proven.

Starts, on 127.0.0.1 only, each on a free port with its data in a temporary folder: PostgreSQL (the
metadata database and Celery's result backend) and Redis (the broker) from Debian's packages, the
sandbox gateway, and Airflow with the CeleryExecutor: one api-server, one scheduler, one
dag-processor, one triggerer and two Celery workers (``w1``, ``w2``; each records its own name as
the task instances' ``hostname``). The gateway pool is created before anything runs.

Then it runs ``payout_batch`` on a generated 1,000-row file and checks, while it runs and after:

- chunk tasks (``chunk.execute``) run on both workers, never more at once than the pool's slots;
- the waits (``chunk.wait``) are ``deferred`` to the triggerer (it writes their trigger logs) and
  hold no worker slot: no task instance that stays deferred across a ``celery inspect active``
  sample is among the workers' active tasks, except the run that deferred it while Airflow's task
  supervisor winds down (a few seconds; more than ``HANDOVER_LIMIT_S`` fails the check);
- one worker is SIGKILLed (its process group and its tasks' groups) while a chunk of its own is
  half paid; the chunk is retried on the other worker and re-attaches by reference;
- the run ends green, the sandbox's ledger has exactly one invoice and one processing for every
  row's reference, and the report agrees with the gateway, row by row.

It prints, last, ``cluster: 1000 rows, 2 workers, W chunks on worker 1, X on worker 2,
D duplicates, L lost`` and exits non-zero unless D and L are 0, both workers ran chunks and every
other check held. Every process it started is stopped by its process group at the end; the
temporary folder is removed on success and kept (logs inside) on failure.

Settings (environment): ``CLUSTER_ROWS`` (1000), ``CLUSTER_KEEP`` (1: keep the folder anyway).
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from base64 import urlsafe_b64encode
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster_procs import Proc, kill_tree, start, stop_all
from cluster_services import Postgres, Redis, ensure_packages, free_port, start_postgres, start_redis

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's bin (not resolved: its own entry points)
DAG_ID = "payout_batch"

ROWS = int(os.environ.get("CLUSTER_ROWS", "1000"))
WORKERS = ("w1", "w2")
WORKER_CONCURRENCY = 3  # Celery slots per worker
POOL_SLOTS = 3  # fewer than the workers' 6 slots: the pool, not the workers, bounds the chunks
CHUNK_SIZE = 50  # 1,000 rows -> 20 chunk tasks
CHUNK_CONCURRENCY = 2  # requests in flight inside one chunk
CREATE_DELAY_S = 0.15  # the sandbox answers each create this late: a chunk lasts seconds
PROCESSING_DELAY_S = 30  # seconds an invoice stays `processing`: the chunks' waits defer
KILL_AFTER = 3  # chunks each worker must have finished before one is killed
# The Celery task of a run that just deferred ends a few seconds later (Airflow's task supervisor
# winds down: ~5 s seen here); past this it would be a wait holding a worker slot.
HANDOVER_LIMIT_S = 10.0
RUN_TIMEOUT_S = 900.0
SANDBOX_LOGIN, SANDBOX_PUBLIC_KEY = "merchant", "pk_test_cluster"


def say(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    """Everything this check started, so that all of it is stopped whatever happens."""

    root: Path
    logs: Path
    postgres: Postgres | None = None
    redis: Redis | None = None
    procs: dict[str, Proc] = field(default_factory=dict)
    airflow_port: int = 0
    sandbox_port: int = 0
    sandbox_password: str = ""
    env: dict[str, str] = field(default_factory=dict)
    killed: set[str] = field(default_factory=set)

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow_port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    def stop_all(self) -> None:
        stop_all(list(self.procs.values()))
        for service in (self.redis, self.postgres):
            if service is not None:
                service.stop()


def airflow_env(cluster: Cluster, home: Path, input_dir: Path, output_dir: Path) -> dict[str, str]:
    """The environment of every Airflow process (each worker adds its own name)."""
    assert cluster.postgres and cluster.redis
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "PAYOUT_"))}
    connection = {
        "conn_type": "payout_gateway",
        "host": f"{cluster.sandbox_url}/api",
        "login": SANDBOX_LOGIN,
        "password": cluster.sandbox_password,
        "extra": {"public_key": SANDBOX_PUBLIC_KEY, "test_mode": True},
    }
    return {
        **base,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": cluster.postgres.sqlalchemy_url,
        "AIRFLOW__CELERY__BROKER_URL": cluster.redis.url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + cluster.postgres.sqlalchemy_url.replace("+psycopg2", ""),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__FERNET_KEY": urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{cluster.airflow_url}/execution/",
        # A throwaway cluster on loopback: every caller of the REST API is an admin.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": "fields,customer",  # as demo.SENSITIVE_CONF_KEYS
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(cluster.airflow_port),
        "AIRFLOW__API__BASE_URL": cluster.airflow_url,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        # A killed worker's running task is noticed after 20 s without heartbeat (default 300 s);
        # a task queued to it but never started is re-queued after 60 s (default 600 s).
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
        "AIRFLOW_CONN_PAYOUT_GATEWAY_DEFAULT": json.dumps(connection),
        "PAYOUT_INPUT_DIRS": str(input_dir),
        "PAYOUT_OUTPUT_DIRS": str(output_dir),
        "PAYOUT_REPORTS_DIR": str(output_dir),
        "PAYOUT_BATCH_DROP_DIR": str(input_dir / "incoming"),
        "PAYOUT_GATEWAY_POOL_SLOTS": str(POOL_SLOTS),
        "PAYOUT_APPROVAL_THRESHOLD": "off",  # a proof of the topology, not of approving
    }


def airflow(cluster: Cluster, *args: str, timeout: float = 600) -> str:
    """Run an ``airflow`` CLI command to its end; its output, or exit with it on failure."""
    import subprocess

    done = subprocess.run(  # noqa: S603 - our own argv
        [str(BIN / "airflow"), *args], env=cluster.env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise SystemExit(f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def start_cluster(cluster: Cluster) -> None:
    ensure_packages(say)
    say(f"Temporary folder {cluster.root}")
    cluster.postgres = start_postgres(cluster.root, cluster.logs)
    say(f"PostgreSQL on 127.0.0.1:{cluster.postgres.port} (pid {cluster.postgres.proc.pid})")
    cluster.redis = start_redis(cluster.root, cluster.logs)
    say(f"Redis on 127.0.0.1:{cluster.redis.port} (pid {cluster.redis.proc.pid})")

    cluster.sandbox_port, cluster.airflow_port = free_port(), free_port()
    cluster.sandbox_password = secrets.token_urlsafe(12)
    sandbox_env = {
        **os.environ,
        "PAYOUT_SANDBOX_LOGIN": SANDBOX_LOGIN,
        "PAYOUT_SANDBOX_PASSWORD": cluster.sandbox_password,
        "PAYOUT_SANDBOX_PUBLIC_KEY": SANDBOX_PUBLIC_KEY,
    }
    cluster.procs["sandbox"] = start(
        "sandbox",
        [
            str(BIN / "payout-sandbox"),
            *("--host", "127.0.0.1", "--port", str(cluster.sandbox_port)),
            *("--db", str(cluster.root / "sandbox.db"), "--processing-delay", str(PROCESSING_DELAY_S)),
            *("--log-level", "warning"),
        ],
        env=sandbox_env,
        log_dir=cluster.logs,
    )

    home = cluster.root / "airflow"
    (home / "config").mkdir(parents=True)
    modules = ("include/airflow/airflow_local_settings.py", "scripts/cluster_hostname.py")
    for module in modules:  # $AIRFLOW_HOME/config is on every Airflow process's sys.path
        shutil.copyfile(PROJECT / module, home / "config" / Path(module).name)
    input_dir, output_dir = cluster.root / "input", cluster.root / "reports"
    for folder in (input_dir / "incoming", output_dir):
        folder.mkdir(parents=True)
    cluster.env = airflow_env(cluster, home, input_dir, output_dir)

    say("airflow db migrate (PostgreSQL)")
    started = time.monotonic()
    airflow(cluster, "db", "migrate")
    from payout_jobs.gateway_pool import GATEWAY_POOL, POOL_DESCRIPTION

    say(f"Migrated in {time.monotonic() - started:.0f} s; pool {GATEWAY_POOL}: {POOL_SLOTS} slots")

    airflow(cluster, "pools", "set", GATEWAY_POOL, str(POOL_SLOTS), POOL_DESCRIPTION)

    components = {
        "api-server": [
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(cluster.airflow_port),
            "--workers",
            "1",
        ],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer", "--skip-serve-logs"],
    }
    for name, args in components.items():
        cluster.procs[name] = start(
            name, [str(BIN / "airflow"), *args], env=cluster.env, log_dir=cluster.logs
        )
    for worker in WORKERS:
        env = {
            **cluster.env,
            "PAYOUT_CLUSTER_WORKER": worker,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "cluster_hostname.worker_hostname",
        }
        argv = [
            *(str(BIN / "airflow"), "celery", "worker", "--celery-hostname", f"{worker}@%h"),
            *("--concurrency", str(WORKER_CONCURRENCY), "--skip-serve-logs"),
            *("--pid", str(cluster.root / f"{worker}.pid")),
        ]
        cluster.procs[worker] = start(worker, argv, env=env, log_dir=cluster.logs)
    say("Started api-server, scheduler, dag-processor, triggerer, workers " + ", ".join(WORKERS))


# --------------------------------------------------------------------------- clients


def wait_until(what: str, check: Any, cluster: Cluster, timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        dead = [p.name for p in cluster.procs.values() if not p.alive() and p.name not in cluster.killed]
        if dead:
            raise SystemExit(f"{', '.join(dead)} exited; logs in {cluster.logs}")
        try:
            if result := check():
                return result
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(interval)
    raise SystemExit(
        f"Timed out after {timeout:.0f} s waiting for {what} (last error: {last}); logs in {cluster.logs}"
    )


class Api:
    """Airflow's REST API v2 (every caller is an admin in this throwaway cluster)."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=f"{base}/api/v2", timeout=60)

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def healthy(self) -> bool:
        body = self.get("/monitor/health")
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((body.get(part) or {}).get("status") == "healthy" for part in parts)

    def task_instances(self, run_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]

    def tries(self, run_id: str, task_id: str, map_index: int) -> list[dict[str, Any]]:
        path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
        return self.get(path)["task_instances"]


def celery_active(broker_url: str) -> dict[str, list[str]] | None:
    """What each Celery worker is executing now (``celery inspect active``): node -> task args."""
    from celery import Celery

    app = Celery(broker=broker_url)
    try:
        replies = app.control.inspect(timeout=1.5).active() or {}
    finally:
        app.close()
    return {node: [json.dumps(task.get("args")) for task in tasks] for node, tasks in replies.items()}


def sandbox_client(cluster: Cluster) -> httpx.Client:
    return httpx.Client(
        base_url=cluster.sandbox_url, auth=(SANDBOX_LOGIN, cluster.sandbox_password), timeout=60
    )


# --------------------------------------------------------------------------- the batch


def generate_batch(path: Path, rows: int) -> list[str]:
    """A file of ``rows`` valid test_usd payouts; returns the rows' reference ids in order."""
    references = [f"r{i:05d}" for i in range(1, rows + 1)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["service", "service_amount", "fields_data", "reference_id", "description"])
        for i, reference in enumerate(references):
            amount = f"{1 + i % 500}.{i % 100:02d}"
            writer.writerow(["test_usd", amount, f"account:{4000000000 + i}", reference, "cluster-check"])
    return references


@dataclass
class Observed:
    """What the check saw while the batch ran."""

    max_execute_running: int = 0
    deferred_samples: int = 0
    max_deferred: int = 0
    max_active_during_deferral: int = 0
    deferred_holding_slot: set[str] = field(default_factory=set)
    max_handover: float = 0.0
    killed: dict[str, Any] = field(default_factory=dict)
    state: str = ""


def hostnames_of_successes(tis: list[dict[str, Any]]) -> dict[str, str]:
    """chunk map index -> hostname of its successful execute try."""
    return {
        str(ti["map_index"]): ti.get("hostname") or ""
        for ti in tis
        if ti["task_id"] == "chunk.execute" and ti["state"] == "success"
    }


def deferrals(tis: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """Task instance id -> (trigger id, seconds since the trigger was made), for deferred ones."""
    now = datetime.now(UTC)
    return {
        ti["id"]: (
            ti["trigger"]["id"],
            (now - datetime.fromisoformat(ti["trigger"]["created_date"])).total_seconds(),
        )
        for ti in tis
        if ti["state"] == "deferred" and ti.get("trigger")
    }


def trigger_logs(cluster: Cluster, run_id: str) -> int:
    """How many waits have a log written by the triggerer (``attempt=N.log.trigger.<job>.log``)."""
    folder = Path(cluster.env["AIRFLOW_HOME"]) / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
    return len({p.parent for p in folder.glob("task_id=chunk.wait/map_index=*/attempt=*.log.trigger.*.log")})


def worker_of(hostname: str) -> str | None:
    return next((w for w in WORKERS if hostname.startswith(f"{w}@")), None)


def watch_run(cluster: Cluster, api: Api, run_id: str, batch_id: str, references: list[str]) -> Observed:
    """Poll the run until it ends; sample deferrals and Celery slots; kill a worker mid-chunk."""
    assert cluster.redis
    seen = Observed()
    chunks = [references[i : i + CHUNK_SIZE] for i in range(0, len(references), CHUNK_SIZE)]
    sandbox = sandbox_client(cluster)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    last_celery = 0.0
    while time.monotonic() < deadline:
        run = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}")
        tis = api.task_instances(run_id)
        if run["state"] in ("success", "failed"):
            seen.state = run["state"]
            return seen
        running = [t for t in tis if t["task_id"] == "chunk.execute" and t["state"] == "running"]
        seen.max_execute_running = max(seen.max_execute_running, len(running))
        deferred = deferrals(tis)
        if deferred and time.monotonic() - last_celery > 2:
            # Deferred before and after `celery inspect active` (same trigger): deferred throughout.
            last_celery = time.monotonic()
            active = celery_active(cluster.redis.url) or {}
            after = deferrals(api.task_instances(run_id))
            deferred = {i: after[i] for i, (t, _) in deferred.items() if i in after and after[i][0] == t}
            payloads = [args for tasks in active.values() for args in tasks]
            seen.deferred_samples += bool(deferred)
            seen.max_deferred = max(seen.max_deferred, len(deferred))
            seen.max_active_during_deferral = max(seen.max_active_during_deferral, len(payloads))
            for ti_id, (_, age) in deferred.items():
                if any(ti_id in p for p in payloads):  # the run that deferred is still winding down
                    seen.max_handover = max(seen.max_handover, age)
                    if age > HANDOVER_LIMIT_S:
                        seen.deferred_holding_slot.add(ti_id)
        if not seen.killed:
            maybe_kill(cluster, tis, running, chunks, batch_id, sandbox, seen)
        time.sleep(1.0)
    raise SystemExit(f"The run did not end within {RUN_TIMEOUT_S:.0f} s; logs in {cluster.logs}")


def maybe_kill(
    cluster: Cluster,
    tis: list[dict[str, Any]],
    running: list[dict[str, Any]],
    chunks: list[list[str]],
    batch_id: str,
    sandbox: httpx.Client,
    seen: Observed,
) -> None:
    """SIGKILL a worker that has finished a chunk and is half way through another (both workers
    having finished one), so that the line can still say both workers ran chunks."""
    done = [worker_of(h) for h in hostnames_of_successes(tis).values()]
    if any(done.count(w) < KILL_AFTER for w in WORKERS) or not running:
        return
    ledger = sandbox.get("/_sandbox/ledger").json()["references"]
    for ti in running:
        victim = worker_of(ti.get("hostname") or "")
        if victim is None:
            continue
        rows = chunks[ti["map_index"]]
        paid = sum(1 for r in rows if ledger.get(f"{batch_id}:{r}", {}).get("invoices"))
        if 0 < paid < len(rows):
            hit = kill_tree(cluster.procs[victim])
            cluster.killed.add(victim)
            seen.killed = {
                "worker": victim,
                "chunk": ti["map_index"],
                "paid": paid,
                "rows": len(rows),
                "processes": hit,
                "try": ti["try_number"],
            }
            say(
                f"SIGKILLed worker {victim} ({hit} processes in its groups) during chunk "
                f"{ti['map_index']} try {ti['try_number']}: {paid} of {len(rows)} rows had an invoice"
            )
            return


# --------------------------------------------------------------------------- verdicts


def gateway_invoices(sandbox: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every invoice at the gateway by reference (the cursor list, walked to its end)."""
    found: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"page[size]": 100}
    while True:
        body = sandbox.get("/api/payout-invoices", params=params).json()
        for item in body["data"]:
            attributes = item["attributes"]
            found.setdefault(attributes["reference_id"], {"id": item["id"], **attributes})
        after = (body.get("meta") or {}).get("after")
        if not body["data"] or not after or not (body.get("links") or {}).get("next"):
            return found
        params = {"page[size]": 100, "page[after]": after}


def compare_report(report_csv: Path, gateway: dict[str, dict[str, Any]]) -> list[str]:
    """Rows of the report that disagree with the gateway (invoice id or status)."""
    problems = []
    with report_csv.open(encoding="utf-8") as handle:
        for line in csv.DictReader(handle):
            invoice = gateway.get(line["reference_id"])
            if invoice is None:
                problems.append(f"row {line['row']}: no invoice at the gateway")
            elif (line["invoice_id"], line["status"]) != (invoice["id"], invoice["status"]):
                problems.append(f"row {line['row']}: report {line['status']}, gateway {invoice['status']}")
    return problems


def main() -> int:
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="payout-cluster-"))
    cluster = Cluster(root=root, logs=root / "logs")
    cluster.logs.mkdir()
    ok, line = False, ""
    try:
        start_cluster(cluster)
        api = Api(cluster.airflow_url)
        wait_until("Airflow to report healthy", api.healthy, cluster, timeout=240)
        broker = cluster.redis.url if cluster.redis else ""
        nodes = lambda: {node.split("@")[0] for node in celery_active(broker) or {}} >= set(WORKERS)  # noqa: E731
        wait_until("both Celery workers", nodes, cluster, timeout=180, interval=2)
        wait_until(f"DAG {DAG_ID} to be parsed", lambda: api.get(f"/dags/{DAG_ID}"), cluster, timeout=180)
        say("Airflow healthy, both workers answer, the DAG is parsed")

        batch_file = root / "input" / f"cluster_{ROWS}.csv"
        references = generate_batch(batch_file, ROWS)
        batch_id = f"cluster-{secrets.token_hex(4)}"
        with sandbox_client(cluster) as sandbox:
            rule = {"endpoint": "create_invoice", "kind": "delay", "rate": 1.0, "seconds": CREATE_DELAY_S}
            sandbox.put("/_sandbox/faults", json={"seed": 1, "rules": [rule]}).raise_for_status()
        run_id = f"cluster__{secrets.token_hex(4)}"
        conf = {
            "batch_file": str(batch_file),
            "batch_id": batch_id,
            "output_dir": str(root / "reports"),
            "chunk_size": CHUNK_SIZE,
            "chunk_concurrency": CHUNK_CONCURRENCY,
        }
        response = api.client.post(
            f"/dags/{DAG_ID}/dagRuns", json={"dag_run_id": run_id, "logical_date": None, "conf": conf}
        )
        response.raise_for_status()
        chunks = -(-ROWS // CHUNK_SIZE)
        say(f"Triggered {DAG_ID} run {run_id}: {ROWS} rows in {chunks} chunks, batch {batch_id}")
        seen = watch_run(cluster, api, run_id, batch_id, references)
        ok, line = report(cluster, api, run_id, batch_id, references, seen)
    finally:
        say("Stopping everything this check started")
        cluster.stop_all()
        if ok and os.environ.get("CLUSTER_KEEP") != "1":
            shutil.rmtree(root, ignore_errors=True)
        else:
            say(f"Kept {root} (logs in {cluster.logs})")
    say(f"cluster-check took {time.monotonic() - started:.0f} s")
    if line:
        print(line, flush=True)
    return 0 if ok else 1


def report(
    cluster: Cluster,
    api: Api,
    run_id: str,
    batch_id: str,
    references: list[str],
    seen: Observed,
) -> tuple[bool, str]:
    """Print what was seen; (every check held, the verdict line)."""
    tis = api.task_instances(run_id)
    by_chunk = hostnames_of_successes(tis)
    counts = {w: sum(1 for h in by_chunk.values() if worker_of(h) == w) for w in WORKERS}
    with sandbox_client(cluster) as sandbox:
        ledger = sandbox.get("/_sandbox/ledger").json()["references"]
        gateway = gateway_invoices(sandbox)
    expected = [f"{batch_id}:{r}" for r in references]
    duplicates = sum(
        1
        for r in expected
        if ledger.get(r, {}).get("invoices", 0) > 1 or ledger.get(r, {}).get("process_calls", 0) > 1
    )
    lost = sum(
        1
        for r in expected
        if not ledger.get(r, {}).get("invoices") or not ledger.get(r, {}).get("process_calls")
    )
    report_csv = Path(cluster.env["PAYOUT_REPORTS_DIR"]) / batch_id / "report.csv"
    problems = compare_report(report_csv, gateway) if report_csv.is_file() else ["no report.csv"]

    failures = []
    say(f"Run {run_id}: {seen.state}")
    if seen.state != "success":
        failures.append(f"the run is {seen.state}")
    say(f"Chunks per worker (successful tries): {counts}")
    say(f"Chunks running at once: at most {seen.max_execute_running} (pool: {POOL_SLOTS} slots)")
    if seen.max_execute_running > POOL_SLOTS:
        failures.append("more chunks ran at once than the pool has slots")
    if seen.killed:
        k = seen.killed
        retried = api.tries(run_id, "chunk.execute", k["chunk"])
        story = ", ".join(f"try {t['try_number']} on {t.get('hostname')}: {t['state']}" for t in retried)
        say(f"Killed {k['worker']} in chunk {k['chunk']} ({k['paid']}/{k['rows']} rows paid); {story}")
    else:
        failures.append("no worker was killed mid-chunk (no chunk was seen half paid)")
    say(
        f"Waits deferred: up to {seen.max_deferred} at once ({seen.deferred_samples} samples); Celery "
        f"workers ran at most {seen.max_active_during_deferral} tasks meanwhile; a run that deferred "
        f"was still winding down on its worker {seen.max_handover:.1f} s after at most; waits holding a "
        f"worker slot past {HANDOVER_LIMIT_S:.0f} s: {len(seen.deferred_holding_slot)}"
    )
    in_triggerer = trigger_logs(cluster, run_id)
    say(f"Waits run by the triggerer (a trigger log written): {in_triggerer} of {len(by_chunk)} chunks")
    if not seen.deferred_samples or not in_triggerer:
        failures.append("no wait was seen deferred to the triggerer")
    if seen.deferred_holding_slot:
        failures.append("a deferred wait held a worker slot")
    say(f"Report {report_csv.name}: {'equal to the gateway' if not problems else '; '.join(problems[:5])}")
    if problems:
        failures.append(f"{len(problems)} report rows disagree with the gateway")
    if not all(counts.values()):
        failures.append("a worker ran no chunk")
    if duplicates or lost:
        failures.append(f"{duplicates} duplicates, {lost} lost")
    for failure in failures:
        say(f"FAILED: {failure}")
    line = (
        f"cluster: {len(references)} rows, {len(WORKERS)} workers, {counts[WORKERS[0]]} chunks on worker 1, "
        f"{counts[WORKERS[1]]} on worker 2, {duplicates} duplicates, {lost} lost"
    )
    return not failures, line


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
