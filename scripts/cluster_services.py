"""PostgreSQL and Redis for ``make cluster-check``: Debian's packages, throwaway, loopback only.

Each server gets a free port on 127.0.0.1 and its data in the check's temporary folder, and is
stopped by its pid at the end. Missing packages are installed with ``apt-get`` when running as
root. PostgreSQL's ``initdb`` refuses root, so as root the server runs as the ``postgres`` system
user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cluster_procs import Proc, start, stop

APT_PACKAGES = {"postgres": "postgresql", "redis": "redis-server"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bin(name: str) -> str | None:
    """Debian keeps the server binaries in /usr/lib/postgresql/<major>/bin, off the PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


def ensure_packages(say: callable) -> None:  # type: ignore[valid-type]
    """apt-get install what is missing (postgresql, redis-server); root only."""
    missing = []
    if not _postgres_bin("initdb"):
        missing.append(APT_PACKAGES["postgres"])
    if not shutil.which("redis-server"):
        missing.append(APT_PACKAGES["redis"])
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(
            f"Missing {', '.join(missing)}: install them (sudo apt-get install -y {' '.join(missing)})"
        )
    say(f"Installing {', '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)  # noqa: S607
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)  # noqa: S603,S607


@dataclass
class Postgres:
    proc: Proc
    port: int
    user: str
    password: str
    database: str

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def stop(self) -> None:
        stop(self.proc, signal.SIGINT, grace=30)  # SIGINT = PostgreSQL's "fast" shutdown


def start_postgres(root: Path, log_dir: Path) -> Postgres:
    """initdb + postgres on a free loopback port; database ``airflow`` owned by user ``airflow``."""
    folder = root / "postgres"
    data, sockets = folder / "data", folder / "sockets"
    for path in (folder, sockets):
        path.mkdir(parents=True)
    password = secrets.token_urlsafe(16)
    (folder / "pwfile").write_text(password + "\n")
    run_as: dict[str, object] = {}
    if os.geteuid() == 0:
        import pwd

        account = pwd.getpwnam("postgres")
        root.chmod(0o711)  # the postgres user must reach its folder inside ours
        for path in (folder, sockets, folder / "pwfile"):
            os.chown(path, account.pw_uid, account.pw_gid)
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    subprocess.run(  # noqa: S603 - our own argv
        [
            str(_postgres_bin("initdb")),
            *("-D", str(data), "-U", "airflow", "--auth=scram-sha-256"),
            *(f"--pwfile={folder / 'pwfile'}", "--encoding=UTF8", "--no-instructions"),
        ],
        check=True,
        capture_output=True,
        cwd=folder,
        **run_as,  # type: ignore[arg-type]
    )
    port = free_port()
    argv = [
        str(_postgres_bin("postgres")),
        *("-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(sockets)),
        # A throwaway database: durability off, enough connections for two workers' task processes.
        *("-c", "max_connections=300", "-c", "fsync=off", "-c", "synchronous_commit=off"),
        *("-c", "full_page_writes=off", "-c", "shared_buffers=128MB"),
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    proc = start("postgres", argv, env=env, log_dir=log_dir, cwd=folder, **run_as)
    pg = Postgres(proc, port, "airflow", password, "airflow")
    _wait_postgres(pg)
    return pg


def _wait_postgres(pg: Postgres, timeout: float = 60) -> None:
    import psycopg2  # from the [cluster] extra (apache-airflow-providers-postgres)

    deadline = time.monotonic() + timeout
    while True:
        if not pg.proc.alive():
            raise SystemExit(f"PostgreSQL exited at start; see {pg.proc.log}")
        try:
            conn = psycopg2.connect(
                host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password, dbname="postgres"
            )
            break
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {pg.database}")
    conn.close()


@dataclass
class Redis:
    proc: Proc
    port: int
    password: str

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        stop(self.proc, signal.SIGTERM, grace=20)


def start_redis(root: Path, log_dir: Path) -> Redis:
    """redis-server on a free loopback port, password set, nothing persisted."""
    folder = root / "redis"
    folder.mkdir()
    port, password = free_port(), secrets.token_urlsafe(16)
    config = folder / "redis.conf"
    config.write_text(
        f"bind 127.0.0.1\nport {port}\nprotected-mode yes\nrequirepass {password}\n"
        f'dir {folder}\nsave ""\nappendonly no\ndaemonize no\n'
    )
    config.chmod(0o600)
    proc = start(
        "redis", [str(shutil.which("redis-server")), str(config)], env=dict(os.environ), log_dir=log_dir
    )
    redis = Redis(proc, port, password)
    deadline = time.monotonic() + 30
    while True:
        if not proc.alive():
            raise SystemExit(f"Redis exited at start; see {proc.log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
                answer = b""
                while b"PONG" not in answer and len(answer) < 200 and (chunk := sock.recv(100)):
                    answer += chunk
                if b"PONG" in answer:
                    return redis
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"Redis did not answer on port {port}; see {proc.log}")
        time.sleep(0.2)
