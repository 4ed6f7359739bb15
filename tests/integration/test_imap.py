"""IMAP ingress against a real Dovecot on a free loopback port (scripts/start-dovecot.sh, tests.mailservers).

Mail is put in the mailbox with APPEND, the way a delivery agent would leave it, and the
poller is the production one. INBOX and Processed are emptied before and after each test.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
import tracemalloc
import uuid
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select

from gateway import db as dbmod
from gateway.config import ImapMailbox
from gateway.db import DatabaseUnavailable
from gateway.ingress.acceptor import Acceptor
from gateway.ingress.imap import ImapPoller, envelope_of, make_store, make_too_large_reporter
from gateway.models import Inbound
from tests import mailservers
from tests.harness import CUSTOMER, DOMAIN, STAFF, Backend, build_mail, settings_for, wait_until

pytestmark = pytest.mark.mailserver

ROOT = Path(__file__).resolve().parents[2]
IMAP_PORT = mailservers.IMAP_PORT
USER, PASSWORD = "inbox@merchant.test", "password"
MAILBOX = ImapMailbox(host="127.0.0.1", port=IMAP_PORT, security="plain", username=USER, password=PASSWORD,
                      processed_folder="Processed", batch_size=100, poll_interval_seconds=300,
                      idle_timeout_seconds=300)


def start_dovecot() -> None:
    """(Re)start this run's loopback Dovecot; the script installs it on first use."""
    mailservers.start("dovecot")


def kick_sessions() -> None:
    """Disconnect every IMAP session of the test user (Dovecot sends BYE, as at a shutdown).

    Needed with a restart: start-dovecot.sh stops the master, but Dovecot 2.3 leaves the
    running imap processes serving their clients, so a restart alone drops no connection.
    """
    subprocess.run(["doveadm", "-c", str(mailservers.DOVECOT_CONFIG), "kick", USER], check=True, capture_output=True,
                   timeout=30)


def connect() -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=IMAP_PORT, ssl=False, timeout=30)
    client.login(USER, PASSWORD)
    return client


def empty_mailboxes() -> None:
    with connect() as client:
        for name in ("INBOX", "Processed"):
            client.select_folder(name)
            if uids := client.search("ALL"):
                client.delete_messages(uids)
                client.expunge()
        for _flags, _sep, name in client.list_folders(pattern="Processed-*"):
            client.delete_folder(name)


@pytest.fixture
def imap(dovecot):
    """A logged-in client for the test's own APPENDs and checks; the mailbox starts empty."""
    empty_mailboxes()
    client = connect()
    yield client
    try:
        client.logout()
    except Exception:  # the restart test leaves this connection dead
        pass
    empty_mailboxes()


def mail(token: str, *, to: str = "someone@disputes.test", size: int = 0, **kw) -> bytes:
    kw.setdefault("headers", {"Return-Path": f"<{CUSTOMER}>"})
    return build_mail(sender=CUSTOMER, to=to, subject=f"imap test {token}", message_id=f"<{token}@customer.test>",
                      body="Hello\n" + "x" * size, **kw)


def uids_in(client: IMAPClient, folder: str, criteria="ALL") -> list[int]:
    client.select_folder(folder, readonly=True)
    return client.search(criteria)


def count_in(client: IMAPClient, folder: str) -> int:
    # SELECT, not STATUS: STATUS on the selected mailbox may answer from a stale view
    return client.select_folder(folder, readonly=True)[b"EXISTS"]


class RecordingStore:
    """A `store` callable that keeps Message-IDs in memory and raises for the ones in `fail`."""

    def __init__(self, fail: set[str] | None = None, *, unavailable: bool = False) -> None:
        self.fail = set(fail or ())
        self.unavailable = unavailable
        self.calls: list[str] = []
        self.stored: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> int:
        message_id = envelope_of(raw).message_id
        with self.lock:
            self.calls.append(message_id)
            if self.unavailable:
                raise DatabaseUnavailable("simulated: database is locked")
            if message_id in self.fail:
                raise RuntimeError("simulated storage failure")
            return self.stored.setdefault(message_id, len(self.stored) + 1)

    def attempts(self, token: str) -> int:
        with self.lock:
            return self.calls.count(f"<{token}@customer.test>")

    def has(self, token: str) -> bool:
        with self.lock:
            return f"<{token}@customer.test>" in self.stored


@contextmanager
def running(poller_mailbox: ImapMailbox, store, clock):
    """The poller's run() in a thread; on exit `stop` is set and it must end within 3 s."""
    stop = threading.Event()
    poller = ImapPoller(poller_mailbox, store=store, clock=clock, stop=stop)
    thread = threading.Thread(target=poller.run, name="imap-poller", daemon=True)
    thread.start()
    wait_until(lambda: poller.last_pass_at is not None, what="the first pass")
    try:
        yield poller
    finally:
        stop.set()
        thread.join(timeout=3)
        assert not thread.is_alive(), "the poller did not stop promptly"


def token() -> str:
    return uuid.uuid4().hex[:12]


# -- envelope ------------------------------------------------------------------------------


@pytest.mark.parametrize("headers, mail_from, rcpt_tos", [
    ({"Return-Path": "<Bob@Shop.test>", "X-Original-To": "Case+X@Disputes.test", "Delivered-To": "inbox@merchant.test"},
     "Bob@Shop.test", ("case+x@disputes.test", "inbox@merchant.test")),
    ({"Envelope-To": "delivery@disputes.test, a@disputes.test"}, "from@customer.test",
     ("delivery@disputes.test", "a@disputes.test")),  # no Return-Path: the From address, never the null sender
    ({"Return-Path": "<>", "Cc": "Staff <STAFF@ops.test>"}, "", ("to@disputes.test", "staff@ops.test")),
])
def test_envelope_from_delivery_headers_else_to_and_cc(headers, mail_from, rcpt_tos):
    raw = build_mail(sender="from@customer.test", to="To@Disputes.test", headers=headers)
    envelope = envelope_of(raw)
    assert (envelope.mail_from, envelope.rcpt_tos) == (mail_from, rcpt_tos)


# -- through the gateway -------------------------------------------------------------------


def test_appended_message_is_stored_moved_and_processed(backend, make_gateway, sink, imap):
    gw = make_gateway(backend)
    store = make_store(Acceptor(gw.settings, gw.runtime.database, gw.runtime.clock, gw.runtime.enqueue_inbound))
    t = token()
    raw = build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject=f"Parcel TX-1001 never arrived {t}",
                     body="Hello,\nmy order TX-1001 never arrived.\nCarol", from_name="Carol Client",
                     message_id=f"<{t}@customer.test>", headers={"Return-Path": f"<{CUSTOMER}>"})
    imap.append("INBOX", raw)

    assert ImapPoller(MAILBOX, store=store, clock=gw.runtime.clock, stop=threading.Event()).poll_once() == 1

    with gw.runtime.database.unit_of_work() as db:
        row = db.scalars(select(Inbound)).one()
        assert (row.source, row.raw, row.mail_from, row.rcpt_tos) == ("imap", raw, CUSTOMER, [f"delivery@{DOMAIN}"])
        assert row.message_id == f"<{t}@customer.test>"
    assert uids_in(imap, "INBOX") == []
    assert len(uids_in(imap, "Processed", ["HEADER", "Message-ID", t])) == 1
    sink.wait_count(5)  # merchant notice + relay, customer ack, 2 staff notices


# -- the run loop --------------------------------------------------------------------------


def test_idle_delivers_within_seconds(imap, clock):
    store = RecordingStore()
    with running(MAILBOX, store, clock):  # poll interval 300 s: only IDLE can explain a quick pick-up
        time.sleep(0.3)
        t = token()
        started = time.monotonic()
        imap.append("INBOX", mail(t))
        wait_until(lambda: store.has(t), timeout=10, what="the IDLE delivery")
        print(f"\nIMAP IDLE: stored {time.monotonic() - started:.2f} s after APPEND")
        wait_until(lambda: count_in(imap, "Processed") == 1, what="the move")
    assert store.attempts(t) == 1


def test_reconnects_after_dovecot_restart_without_loss_or_duplicates(imap, caplog, clock):
    caplog.set_level(logging.INFO, logger="gateway.ingress.imap")
    store = RecordingStore()
    before, after = token(), token()
    with running(MAILBOX, store, clock):
        imap.append("INBOX", mail(before))
        wait_until(lambda: store.has(before), what="the first message")
        kick_sessions()  # BYE to the idling poller, as a shutdown with shutdown_clients does
        start_dovecot()  # the poller's first reconnects fail while the server is down
        started = time.monotonic()
        with connect() as client:
            client.append("INBOX", mail(after))
        wait_until(lambda: store.has(after), timeout=20, what="the message appended after the restart")
        print(f"\nIMAP restart: stored {time.monotonic() - started:.2f} s after the restart")
        with connect() as client:
            wait_until(lambda: count_in(client, "INBOX") == 0 and count_in(client, "Processed") == 2, what="the moves")
    assert store.attempts(before) == 1 and store.attempts(after) == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("connection failed" in m for m in messages)
    assert sum("connected; waiting with IDLE" in m for m in messages) >= 2


def test_failing_message_is_retried_at_the_poll_interval_not_in_a_loop(imap, clock):
    good, bad = token(), token()
    store = RecordingStore(fail={f"<{bad}@customer.test>"})
    with running(replace(MAILBOX, poll_interval_seconds=1.0), store, clock):
        imap.append("INBOX", mail(bad))
        imap.append("INBOX", mail(good))
        wait_until(lambda: store.has(good), what="the good message")
        time.sleep(3.5)
        assert 2 <= store.attempts(bad) <= 5  # first try, then about one a second
        assert count_in(imap, "INBOX") == 1
        store.fail.clear()
        wait_until(lambda: store.has(bad), timeout=8, what="the retry after the fix")
        wait_until(lambda: count_in(imap, "INBOX") == 0, what="the move after the fix")
    assert store.attempts(good) == 1


# -- passes --------------------------------------------------------------------------------


def test_failed_store_leaves_the_message_and_the_next_pass_stores_it(imap, clock):
    first, bad, last = token(), token(), token()
    for t in (first, bad, last):
        imap.append("INBOX", mail(t))
    store = RecordingStore(fail={f"<{bad}@customer.test>"})
    poller = ImapPoller(MAILBOX, store=store, clock=clock, stop=threading.Event())

    assert poller.poll_once() == 2
    left = uids_in(imap, "INBOX")
    assert len(left) == 1 and uids_in(imap, "INBOX", ["HEADER", "Message-ID", bad]) == left
    assert uids_in(imap, "INBOX", ["SEEN"]) == []  # untouched: BODY.PEEK does not set \Seen
    assert count_in(imap, "Processed") == 2

    store.fail.clear()
    assert poller.poll_once() == 1
    assert count_in(imap, "INBOX") == 0 and count_in(imap, "Processed") == 3
    assert [store.attempts(t) for t in (first, bad, last)] == [1, 2, 1]


def test_a_message_over_the_size_limit_is_left_and_reported_not_downloaded(imap, caplog, clock):
    small, big = token(), token()
    imap.append("INBOX", mail(small))
    imap.append("INBOX", mail(big, size=20_000))
    store = RecordingStore()
    poller = ImapPoller(MAILBOX, store=store, clock=clock, stop=threading.Event(), max_message_bytes=10_000)
    with caplog.at_level("ERROR"):
        assert poller.poll_once() == 1
        assert poller.poll_once() == 0
        client = poller._connect()
        poller._select(client)
        assert poller._pass(client) == (0, 0)  # not tried again: the IDLE loop cannot spin on it
        client.logout()
    assert store.attempts(big) == 0 and store.attempts(small) == 1
    assert uids_in(imap, "INBOX", ["HEADER", "Message-ID", big]) == uids_in(imap, "INBOX")
    assert len([r for r in caplog.records if "over max_message_bytes" in r.getMessage()]) == 1


def test_an_oversized_message_is_listed_in_quarantine_and_staff_are_told(imap, tmp_path, sink, clock):
    from gateway import reports
    from workers.runtime import Runtime

    big, stray = token(), token()
    # delivered to the mailbox's own address, as a mailbox that receives the gateway's mail has it
    imap.append("INBOX", mail(big, to=f"delivery@{DOMAIN}", size=20_000,
                              headers={"Return-Path": f"<{CUSTOMER}>", "Delivered-To": USER}))
    imap.append("INBOX", mail(stray, to="nobody@elsewhere.test", size=20_000))  # not for us: listed only
    backend = Backend("sqlite", f"sqlite:///{tmp_path / 'gateway.db'}", "memory://")
    dbmod.upgrade(backend.database_url)
    runtime = Runtime(settings_for(tmp_path, backend, sink.port), inline=True)
    report = make_too_large_reporter(Acceptor(runtime.settings, runtime.database, runtime.clock, runtime.enqueue_inbound),
                                     renderer=runtime.renderer, enqueue_delivery=runtime.enqueue_delivery)
    for _ in range(2):  # reported once, however often it is seen
        ImapPoller(MAILBOX, store=RecordingStore(), clock=clock, stop=threading.Event(),
                   max_message_bytes=10_000, report_too_large=report).poll_once()
    with runtime.database.unit_of_work() as db:
        listed = {row["message_id"]: row for row in reports.list_quarantine(db)["messages"]}
    assert set(listed) == {f"<{big}@customer.test>", f"<{stray}@customer.test>"}
    assert "left in its mailbox" in listed[f"<{big}@customer.test>"]["disposition"]
    assert "UID" in listed[f"<{big}@customer.test>"]["error"]
    assert listed[f"<{big}@customer.test>"]["rcpt_tos"] == [f"delivery@{DOMAIN}"]
    told = sink.wait(lambda got: len(got) >= 2)  # one notice per staff address, for the one addressed to us
    time.sleep(0.3)
    assert len(sink.received) == 2 and {r.rcpt_tos[0] for r in told} == set(STAFF)
    text = told[0].text()
    assert "too large" in text and "max_message_bytes" in text and "INBOX" in text and "quarantine show" in text
    runtime.close()


def test_database_down_stops_the_pass_and_leaves_everything(imap, clock):
    tokens = [token() for _ in range(3)]
    for t in tokens:
        imap.append("INBOX", mail(t))
    store = RecordingStore(unavailable=True)
    poller = ImapPoller(MAILBOX, store=store, clock=clock, stop=threading.Event())

    assert poller.poll_once() == 0
    assert len(store.calls) == 1  # no point trying the next ones against a database that is down
    assert count_in(imap, "INBOX") == 3 and count_in(imap, "Processed") == 0

    store.unavailable = False
    assert poller.poll_once() == 3 and count_in(imap, "INBOX") == 0


def test_without_move_and_idle_it_copies_expunges_and_polls(imap, monkeypatch, clock):
    """The fallbacks for servers without MOVE (COPY, \\Deleted, UID EXPUNGE) and IDLE (polling)."""
    has_capability = IMAPClient.has_capability
    monkeypatch.setattr(IMAPClient, "has_capability",
                        lambda self, name: name.upper() not in ("MOVE", "IDLE") and has_capability(self, name))
    store = RecordingStore()
    keep = token()
    with connect() as other:  # someone else's \Deleted message must survive our UID EXPUNGE
        other.append("INBOX", mail(keep), flags=[b"\\Deleted"])
    with running(replace(MAILBOX, poll_interval_seconds=0.5), store, clock):
        t = token()
        imap.append("INBOX", mail(t))
        wait_until(lambda: store.has(t), timeout=8, what="the polled message")
        wait_until(lambda: count_in(imap, "Processed") == 1, what="the copy")
    assert uids_in(imap, "INBOX", ["HEADER", "Message-ID", keep]) and count_in(imap, "INBOX") == 1
    assert not store.has(keep)


def test_seen_mode_flags_instead_of_moving(imap, clock):
    new, old = token(), token()
    imap.append("INBOX", mail(old), flags=[b"\\Seen"])  # read by a person before: not ours to take
    imap.append("INBOX", mail(new))
    store = RecordingStore()
    poller = ImapPoller(replace(MAILBOX, processed_folder=None), store=store, clock=clock,
                        stop=threading.Event())

    assert poller.poll_once() == 1
    assert store.has(new) and not store.has(old)
    assert count_in(imap, "INBOX") == 2 and count_in(imap, "Processed") == 0
    assert uids_in(imap, "INBOX", ["UNSEEN"]) == []
    assert poller.poll_once() == 0


def test_processed_folder_is_created(imap, clock):
    folder = f"Processed-{token()}"
    t = token()
    imap.append("INBOX", mail(t))
    assert not imap.folder_exists(folder)
    assert ImapPoller(replace(MAILBOX, processed_folder=folder), store=RecordingStore(), clock=clock,
                      stop=threading.Event()).poll_once() == 1
    assert imap.folder_exists(folder) and count_in(imap, folder) == 1 and count_in(imap, "INBOX") == 0


def test_starttls_is_never_downgraded_to_plain_text(imap, clock):
    imap.append("INBOX", mail(token()))
    store = RecordingStore()
    poller = ImapPoller(replace(MAILBOX, security="starttls"), store=store, clock=clock,
                        stop=threading.Event())
    with pytest.raises(Exception, match="STARTTLS"):  # this Dovecot offers no STARTTLS
        poller.poll_once()
    assert store.calls == [] and count_in(imap, "INBOX") == 1


def test_two_thousand_waiting_messages_are_stored_once_in_batches(imap, tmp_path, monkeypatch, caplog, clock):
    caplog.set_level(logging.INFO, logger="imapclient")  # its DEBUG log holds every body: not ours to measure
    backend = Backend("sqlite", f"sqlite:///{tmp_path / 'gateway.db'}", "memory://")
    dbmod.upgrade(backend.database_url)
    database = dbmod.Database(backend.database_url)
    enqueued: list[int] = []
    store = make_store(Acceptor(settings_for(tmp_path, backend, None), database, clock, enqueued.append))
    run = token()
    messages = [mail(f"{run}-{n}", size=4000) for n in range(2000)]
    total_bytes = sum(len(m) for m in messages)
    for start in range(0, len(messages), 250):  # MULTIAPPEND: 250 messages per command
        imap.multiappend("INBOX", messages[start:start + 250])
    del messages
    fetch_sizes: list[int] = []
    fetch = IMAPClient.fetch
    monkeypatch.setattr(IMAPClient, "fetch", lambda self, uids, data, *a, **k: (
        fetch_sizes.append(len(uids)) if "BODY.PEEK[]" in data else None) or fetch(self, uids, data, *a, **k))

    tracemalloc.start()
    started = time.monotonic()
    try:
        stored = ImapPoller(MAILBOX, store=store, clock=clock, stop=threading.Event()).poll_once()
        elapsed = time.monotonic() - started
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\nIMAP 2,000 messages ({total_bytes / 1e6:.1f} MB): stored in {elapsed:.1f} s "
          f"({2000 / elapsed:.0f}/s, under tracemalloc), peak traced memory {peak / 1e6:.1f} MB")

    assert stored == 2000 and fetch_sizes == [100] * 20
    assert peak < total_bytes / 2  # one batch at a time, never the whole mailbox
    with database.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Inbound).where(Inbound.source == "imap")) == 2000
        assert db.scalar(select(func.count(func.distinct(Inbound.message_id)))) == 2000
    assert sorted(enqueued) == sorted(set(enqueued)) and len(enqueued) == 2000
    assert count_in(imap, "INBOX") == 0 and count_in(imap, "Processed") == 2000
    database.dispose()
