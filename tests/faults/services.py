"""A private PostgreSQL cluster and a private Redis for the fault matrix, on free ports in
a scratch folder: the matrix stops, restarts and flushes them, which must never touch the
shared servers other engineers' tests use at the same time.

PostgreSQL runs as the `postgres` user (initdb refuses root) from the PostgreSQL 15
binaries; Redis keeps nothing on disk (`--save ""`, no AOF), like a broker whose data a
restart loses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import redis

from tests.harness import free_port

PG_BIN = Path(os.environ.get("DG_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(*command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True,
                          timeout=timeout, text=True)


class PrivatePostgres:
    """initdb + pg_ctl in `folder`; `url` is the gateway's database on it."""

    def __init__(self, folder: Path, database: str = "gateway") -> None:
        self.folder = folder
        self.data = folder / "pgdata"
        self.port = free_port()
        self.database = database
        self.log = folder / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def create(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.folder, "postgres", "postgres")
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                     "--no-sync")
        self.start()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def _ctl(self, *args: str, timeout: float = 120) -> None:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args, timeout=timeout)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                   "-c shared_buffers=32MB")
        self._ctl("-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-w", "-m", mode, "stop")

    def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart -m fast` (clean) or `-m immediate` (like a crash: recovery at start)."""
        if mode == "immediate":
            self.stop("immediate")
            self.start()
        else:
            self._ctl("-w", "-m", mode, "restart")

    def running(self) -> bool:
        try:
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status")
            return True
        except subprocess.CalledProcessError:
            return False

    def destroy(self) -> None:
        if self.running():
            try:
                self.stop("immediate")
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.data, ignore_errors=True)


class PrivateRedis:
    """redis-server on a free port, nothing persisted."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "redis.log", "ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def flushall(self) -> None:
        self.client().flushall()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
