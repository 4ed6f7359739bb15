"""A production-shaped gateway for the fault matrix: `serve-smtp`, two `worker`s and a
`scheduler` as separate processes of the real command line, on a private PostgreSQL and
Redis, sending to the fault smarthost, on the real clock (data dated from it too).

Killed workers are started again after `restart_delay` seconds, as systemd's
Restart=on-failure does; a process that exits unasked is recorded in `crashes`.
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

from gateway.db import Database
from gateway.models import Inbound, Outbox, ProcessHeartbeat
from tests.faults.services import PrivatePostgres, PrivateRedis
from tests.harness import DOMAIN, KEYS, STAFF, free_port

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("worker-1", "worker-2")
MERCHANTS = {"shop": "support@shop.test", "refuses": "gone@refuses.test"}  # the second one's address gets 550


@dataclass
class Message:
    sender: str
    recipient: str
    raw: bytes
    accepted_at: float | None = None


@dataclass
class Settings:
    """The knobs a fault run uses; the defaults are the CI run's."""

    smtp_timeout: float = 3
    lease_seconds: int = 10
    heartbeat_seconds: int = 1
    sweep_interval_seconds: int = 1
    uncertain_retry_seconds: int = 4
    delivery_threads: int = 3
    inbound_threads: int = 2
    restart_delay: float = 1.0
    extra: dict = field(default_factory=dict)


def config_text(folder: Path, pg: PrivatePostgres, redis_url: str, *, smtp_port: int, metrics_port: int,
                smarthost_port: int, s: Settings) -> str:
    return f"""
[gateway]
domain = "{DOMAIN}"
secret_keys = {json.dumps(list(KEYS))}
staff_addresses = {json.dumps(list(STAFF))}

[database]
url = "{pg.url}"

[broker]
url = "{redis_url}"

[ingress.smtp]
host = "127.0.0.1"
port = {smtp_port}
hostname = "gw.test"
max_message_bytes = 2000000

[outbound]
journal_dir = "{folder / 'sent-journal'}"
retry_base_seconds = 1
retry_max_seconds = 2
max_attempts = 1000
uncertain_retry_seconds = {s.uncertain_retry_seconds}

[outbound.smtp]
host = "127.0.0.1"
port = {smarthost_port}
timeout_seconds = {s.smtp_timeout}

[workers]
threads = {s.inbound_threads}
delivery_threads = {s.delivery_threads}
timer_threads = 1
heartbeat_seconds = {s.heartbeat_seconds}
lease_seconds = {s.lease_seconds}
sweep_interval_seconds = {s.sweep_interval_seconds}

[hygiene]
freeze_after_messages = 100000
notices_per_address_per_hour = 100000
notices_per_address_per_day = 100000

[metrics]
port = {metrics_port}

[health]
delivery_retry_seconds = 10
worker_stale_seconds = 10
inbound_wait_seconds = 30
scheduler_stale_seconds = 10
"""


class GatewayCluster:
    def __init__(self, folder: Path, smarthost_port: int, settings: Settings | None = None) -> None:
        self.folder = folder
        self.settings = settings or Settings()
        self.pg = PrivatePostgres(folder / "pg")
        self.redis = PrivateRedis(folder / "redis")
        self.smtp_port = free_port()
        self.metrics_port = free_port()
        self.smarthost_port = smarthost_port
        self.config = folder / "gateway.toml"
        self.processes: dict[str, subprocess.Popen] = {}
        self.killed: dict[str, float] = {}  # name -> when the test killed it
        self.crashes: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self.database: Database | None = None

    # --- life ---------------------------------------------------------------------------

    def start(self, transactions: list[tuple[str, str, str]]) -> None:
        """Create the services, the schema and the data, then start the processes.
        `transactions`: (reference, merchant_id, customer address)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)  # the postgres user reaches its folder through it
        self.pg.create()
        self.redis.start()
        self.config.write_text(config_text(self.folder, self.pg, self.redis.url, smtp_port=self.smtp_port,
                                           metrics_port=self.metrics_port, smarthost_port=self.smarthost_port,
                                           s=self.settings))
        self.cli("db", "upgrade")
        merchants = self.folder / "merchants.csv"
        merchants.write_text("merchant_id,name,support_email,locale\n"
                             + "".join(f"{m},Merchant {m},{address},en\n" for m, address in MERCHANTS.items()))
        self.cli("import", "merchants", str(merchants))
        self.add_transactions(transactions)
        self.database = Database(self.pg.url)
        self.spawn("serve-smtp", "serve-smtp")
        self.spawn("scheduler", "scheduler")
        for name in WORKERS:
            self.spawn(name, "worker")
        self._supervisor.start()
        self.wait_ready()

    def add_transactions(self, transactions: list[tuple[str, str, str]]) -> None:
        day = (datetime.now(timezone.utc) - timedelta(days=10)).date()  # the real clock: real processes
        path = self.folder / f"transactions-{time.monotonic_ns()}.csv"
        path.write_text("reference,merchant_id,customer_email,customer_name,amount,currency,transaction_date\n"
                        + "".join(f"{ref},{merchant},{customer},Customer {ref},25.00,EUR,{day}\n"
                                  for ref, merchant, customer in transactions))
        self.cli("import", "transactions", str(path))

    def cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "gateway.cli", "--config", str(self.config), *args],
                              cwd=self.folder, capture_output=True, text=True, timeout=120, env=self._env())
        if done.returncode != 0:
            raise RuntimeError(f"dispute-gateway {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}

    def spawn(self, name: str, *command: str) -> None:
        log = open(self.folder / f"{name}.log", "ab")
        process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--config", str(self.config), *command],
                                   cwd=self.folder, stdout=log, stderr=subprocess.STDOUT, env=self._env())
        with self._lock:
            self.processes[name] = process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(self.log(name) for name in self.processes)

    def wait_ready(self, timeout: float = 60) -> None:
        """SMTP answers and every worker has a heartbeat."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=5) as client:
                    client.noop()
                with self.database.unit_of_work() as db:
                    alive = db.scalar(select(func.count()).select_from(ProcessHeartbeat).where(
                        ProcessHeartbeat.role == "worker", ProcessHeartbeat.stopped_at.is_(None)))
                if alive >= len(WORKERS):
                    return
            except (OSError, smtplib.SMTPException, Exception):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the gateway did not start:\n{self.logs()[-4000:]}")

    def kill(self, name: str) -> int:
        """kill -9 one process; a worker comes back after `restart_delay` (systemd)."""
        with self._lock:
            process = self.processes[name]
            self.killed[name] = time.monotonic()
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        return process.pid

    def pid_of(self, name: str) -> int:
        with self._lock:
            return self.processes[name].pid

    def worker_named(self, pid: int) -> str | None:
        with self._lock:
            return next((name for name, p in self.processes.items() if p.pid == pid), None)

    def _supervise(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                items = list(self.processes.items())
            for name, process in items:
                if process.poll() is None:
                    continue
                killed_at = self.killed.get(name)
                if killed_at is None:
                    self.crashes.append(f"{name} exited with {process.returncode}")
                    killed_at = self.killed[name] = time.monotonic()
                if time.monotonic() - killed_at >= self.settings.restart_delay:
                    with self._lock:
                        del self.killed[name]
                    self.spawn(name, *(("worker",) if name in WORKERS else (name,)))

    def stop(self) -> None:
        self._stop.set()
        if self._supervisor.is_alive():
            self._supervisor.join(5)
        with self._lock:
            processes = list(self.processes.values())
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self.database is not None:
            self.database.dispose()
        self.redis.stop()
        self.pg.destroy()

    # --- mail in, state out -------------------------------------------------------------

    def hand_over(self, messages: list[Message], *, threads: int = 4, deadline: float = 120) -> int:
        """Deliver like an MTA: each message until it is answered 250, trying again every
        half second after a 4xx or a broken connection. Returns how many were accepted."""
        queue = list(messages)
        lock = threading.Lock()
        stop_at = time.monotonic() + deadline

        def run() -> None:
            client = None
            while True:
                with lock:
                    if not queue:
                        break
                    message = queue.pop(0)
                while message.accepted_at is None and time.monotonic() < stop_at:
                    try:
                        if client is None:
                            client = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30)
                        client.sendmail(message.sender, [message.recipient], message.raw)
                        message.accepted_at = time.monotonic()
                    except (smtplib.SMTPException, OSError):
                        try:
                            if client is not None:
                                client.close()
                        except OSError:
                            pass
                        client = None
                        time.sleep(0.5)
            if client is not None:
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    pass

        workers = [threading.Thread(target=run) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return sum(1 for m in messages if m.accepted_at is not None)

    def high_water(self) -> tuple[int, int]:
        """The newest inbound and outbox ids (what a run adds comes after)."""
        with self.database.unit_of_work() as db:
            return (db.scalar(select(func.max(Inbound.id))) or 0, db.scalar(select(func.max(Outbox.id))) or 0)

    def state(self, since: tuple[int, int]) -> dict:
        with self.database.unit_of_work() as db:
            inbound = db.execute(select(Inbound.status, func.count()).where(Inbound.id > since[0])
                                 .group_by(Inbound.status)).all()
            outbox = db.execute(select(Outbox.id, Outbox.message_id, Outbox.recipient, Outbox.status)
                                .where(Outbox.id > since[1])).all()
        return {"inbound": dict(inbound), "outbox": [tuple(row) for row in outbox]}

    def healthz(self) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=20) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def journal_entries(self) -> list[tuple[str, int]]:
        """(process id, outbox id) of every entry in the sent journals not yet recorded."""
        from gateway import sent_journal

        folder = self.folder / "sent-journal"
        return [(owner, entry.outbox_id) for sub in (folder.iterdir() if folder.is_dir() else []) if sub.is_dir()
                for owner, entry in sent_journal.waiting(sub)]
