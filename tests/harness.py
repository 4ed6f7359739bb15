"""Test harness: a real gateway (SMTP ingress, Dramatiq workers, database) wired to a real
aiosmtpd sink standing in for the smarthost. Nothing here is mocked: mail goes over sockets."""

from __future__ import annotations

import email
import os
import smtplib
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage, Message
from email.policy import SMTP, compat32
from pathlib import Path
from typing import Callable

from aiosmtpd.controller import Controller

from gateway import config, db as dbmod, importer
from gateway.clock import Clock
from gateway.ingress import smtp as smtp_ingress
from workers import scheduler
from workers.runtime import Runtime

DOMAIN = "disputes.test"
STAFF = ("staff@ops.test", "lead@ops.test")
KEYS = ("test-secret-key-number-one-0001", "older-secret-key-number-two-02")
CUSTOMER = "carol@customer.test"
MERCHANT = "support@shop.test"


CLOCK_OFFSET_ENV = "DG_TEST_CLOCK_OFFSET_DAYS"


def clock_offset() -> timedelta:
    """The shift CI gives the tests' clock (`DG_TEST_CLOCK_OFFSET_DAYS`, default 0), so a
    test that depends on today's date fails today instead of next week."""
    return timedelta(days=float(os.environ.get(CLOCK_OFFSET_ENV) or 0))


class TestClock:
    """The one clock of a test: every component the test starts (ingress, workers,
    scheduler, CLI) is given this object. It runs with real time shifted by
    `clock_offset()` until a test sets it; then it says what it was told. Tests move it
    (`set`, `advance`), never replace it."""

    __test__ = False  # not a test class

    def __init__(self, offset: timedelta | None = None) -> None:
        self.offset = clock_offset() if offset is None else offset
        self._at: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._at if self._at is not None else datetime.now(timezone.utc) + self.offset

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("TestClock needs a timezone-aware datetime")
        with self._lock:
            self._at = at

    def advance(self, delta: timedelta) -> datetime:
        at = self.now() + delta
        self.set(at)
        return at


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `predicate` every 50 ms until it is true; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> Message:
        return email.message_from_bytes(self.raw, policy=compat32)

    def header(self, name: str) -> str:
        return str(self.message.get(name) or "").replace("\r\n", "").replace("\n", "")

    def text(self) -> str:
        for part in self.message.walk():
            if part.get_content_type() == "text/plain" and not part.get_filename():
                payload = part.get_payload(decode=True)
                return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
        return ""

    def html(self) -> str:
        for part in self.message.walk():
            if part.get_content_type() == "text/html":
                payload = part.get_payload(decode=True)
                return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
        return ""

    @property
    def to(self) -> str:
        return self.rcpt_tos[0]


class SinkHandler:
    """The smarthost: records every message; answers per recipient as told."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.rcpt_answers: dict[str, list[str]] = {}  # address -> answers to give in order, then 250
        # (test on the message bytes, answer): the first rule that matches refuses the DATA,
        # as a smarthost's virus or size filter does
        self.data_answers: list[tuple[Callable[[bytes], bool], str]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answers = self.rcpt_answers.get(address.lower())
        answer = (answers.pop(0) if len(answers) > 1 else answers[0]) if answers else "250 OK"
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        for test, answer in self.data_answers:
            if test(content):
                return answer
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 OK queued"


class Sink:
    def __init__(self) -> None:
        self.port = free_port()
        self.handler = SinkHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, server_hostname="sink.test",
                                     decode_data=False)
        self.controller.start()

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address.lower() in [a.lower() for a in r.rcpt_tos]]

    def wait(self, predicate: Callable[[list[Received]], bool], timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received
            if predicate(got):
                return got
            time.sleep(0.05)
        raise AssertionError(f"timed out; sink has {[(r.rcpt_tos, r.header('Subject')) for r in self.received]}")

    def wait_count(self, count: int, timeout: float = 15.0) -> list[Received]:
        return self.wait(lambda got: len(got) >= count, timeout)

    def stop(self) -> None:
        self.controller.stop()


def build_mail(
    *,
    sender: str,
    to: str,
    subject: str = "My order never arrived",
    body: str = "Hello",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
    headers: dict[str, str] | None = None,
    from_name: str = "",
) -> bytes:
    message = EmailMessage()
    message["From"] = f"{from_name} <{sender}>" if from_name else sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@{sender.split('@')[1]}>"
    message["Date"] = "Thu, 26 Nov 2026 10:00:00 +0100"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    for filename, mime, data in attachments or []:
        maintype, subtype = mime.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=SMTP)


@dataclass
class Backend:
    name: str
    database_url: str
    broker_url: str
    cleanup: Callable[[], None] = field(default=lambda: None)


def settings_for(tmp_path: Path, backend: Backend, sink_port: int | None, **overrides) -> config.Settings:
    data = {
        "gateway": {"domain": DOMAIN, "secret_keys": list(KEYS), "staff_addresses": list(STAFF),
                    "default_locale": "en", **overrides.pop("gateway", {})},
        "database": {"url": backend.database_url},
        "broker": {"url": backend.broker_url},
        "ingress": {"smtp": {"host": "127.0.0.1", "port": free_port(), "hostname": "gw.test",
                             "max_message_bytes": overrides.pop("max_message_bytes", 1_000_000)}},
        "outbound": ({"smtp": {"host": "127.0.0.1", "port": sink_port, "timeout_seconds": 5},
                      "retry_base_seconds": 1, "retry_max_seconds": 2, "max_attempts": 3}
                     if sink_port else {"maildir": str(tmp_path / "maildir")}),
        "workers": {"threads": 2, "lease_seconds": 60, "sweep_interval_seconds": 3600},
    }
    data["workers"].update(overrides.pop("worker_settings", {}))  # the [workers] keys a test changes
    for key, value in overrides.items():
        data[key] = value
    data["outbound"].setdefault("journal_dir", str(tmp_path / "sent-journal"))  # this test's own
    return config.from_dict(data, source="test-config.toml")


MERCHANTS_CSV = """merchant_id,name,support_email,locale
shop1,Shop One,support@shop.test,en
shop2,Boutique Deux,sav@boutique.test,fr
"""
TRANSACTIONS_HEADER = "reference,merchant_id,customer_email,customer_name,amount,currency,transaction_date\n"
TX_AGE_DAYS = 13  # how long before "now" TX-1001 was paid; TX-1002 and TX-2001 a day later each


def tx_date(now: datetime, days_before: int = TX_AGE_DAYS) -> datetime:
    """The transaction date of the test data, `days_before` days before `now` (midnight UTC)."""
    day = (now - timedelta(days=days_before)).date()
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def transactions_csv(now: datetime) -> str:
    """The test transactions, dated relative to the test clock's `now`."""
    first, second, third = (tx_date(now, TX_AGE_DAYS - n) for n in range(3))
    return (TRANSACTIONS_HEADER
            + f"TX-1001,shop1,carol@customer.test,Carol Client,49.90,EUR,{first.date()}\n"
            + f"TX-1002,shop2,Carol@Customer.test,Carol Client,120,EUR,{second.date()}T10:00:00+01:00\n"
            + f"TX-2001,shop1,dave@other.test,Dave Other,15,EUR,{third.date()}\n")


class Gateway:
    """A running gateway: ingress + workers; the scheduler is driven by the test (`sweep`)."""

    def __init__(self, settings: config.Settings, *, clock: Clock, workers: bool = True,
                 namespace: str | None = None, threads: int = 2, resolver=None) -> None:
        self.settings = settings
        self.clock = clock
        if settings.database.url.startswith("sqlite") or "postgresql" in settings.database.url:
            dbmod.upgrade(settings.database.url)
        self.runtime = Runtime(settings, clock=clock, resolver=resolver,
                               broker_namespace=namespace or f"dg-test-{uuid.uuid4().hex[:8]}")
        self.worker = self.runtime.start_worker(threads) if workers else None
        self.controller = smtp_ingress.start(settings, self.runtime.database, self.runtime.clock,
                                             self.runtime.enqueue_inbound)
        self.port = settings.smtp_ingress.port

    def load(self, tmp_path: Path, merchants: str = MERCHANTS_CSV, transactions: str | None = None) -> None:
        now = self.runtime.now()
        (tmp_path / "m.csv").write_text(merchants)
        (tmp_path / "t.csv").write_text(transactions if transactions is not None else transactions_csv(now))
        with self.runtime.database.unit_of_work() as db:
            importer.import_merchants(db, tmp_path / "m.csv", now=now)
        with self.runtime.database.unit_of_work() as db:
            importer.import_transactions(db, tmp_path / "t.csv", now=now)

    def send(self, raw: bytes, *, to: list[str] | str, sender: str = CUSTOMER) -> dict:
        to = [to] if isinstance(to, str) else to
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
            return client.sendmail(sender, to, raw)

    def sweep(self):
        return scheduler.sweep(self.runtime)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every inbound message is processed and every due delivery attempted."""
        from sqlalchemy import func, select

        from gateway.models import Inbound, Outbox

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.runtime.database.unit_of_work() as db:
                queued = db.scalar(select(func.count()).select_from(Inbound).where(Inbound.status == "queued"))
                busy = db.scalar(select(func.count()).select_from(Outbox).where(
                    Outbox.status.in_(("pending", "sending")), Outbox.next_attempt_at <= self.runtime.now()))
            if not queued and not busy:
                time.sleep(0.05)
                return
            time.sleep(0.05)
        raise AssertionError("gateway did not settle")

    def stop(self) -> None:
        self.controller.stop()
        if self.worker is not None:
            self.worker.stop()
        self.runtime.close()


def write_config(path: Path, settings: config.Settings) -> Path:
    """The TOML an administrator would write for `settings` (for driving the CLI in tests)."""
    g = settings.gateway
    smtp = settings.outbound.smtp
    journal = f'journal_dir = "{settings.outbound.journal_dir}"\n'
    outbound = (f'[outbound]\n{journal}\n[outbound.smtp]\nhost = "{smtp.host}"\nport = {smtp.port}\ntimeout_seconds = 5\n'
                if smtp else f'[outbound]\nmaildir = "{settings.outbound.maildir}"\n{journal}')
    path.write_text(
        f'[gateway]\ndomain = "{g.domain}"\nsecret_keys = {list(g.secret_keys)!r}\n'
        f'staff_addresses = {list(g.staff_addresses)!r}\ndefault_locale = "{g.default_locale}"\n\n'
        f'[database]\nurl = "{settings.database.url}"\n\n[broker]\nurl = "{settings.broker.url}"\n\n'
        f'[ingress.smtp]\nport = {settings.smtp_ingress.port}\n\n{outbound}'
        .replace("'", '"'))
    return path
