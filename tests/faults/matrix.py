"""The fault matrix: each fault is driven against a running GatewayCluster while complaints
and replies are in flight, then measured at the smarthost, per (Message-ID, recipient):

  sent        messages handed to the gateway's SMTP ingress (MTA duplicates included)
  accepted    of those, answered 250 (the test's MTA retries 4xx like Postfix)
  expected    outbox rows the gateway made for them that must reach the smarthost
              (all but those the smarthost refused for good with 550)
  seen        of those, stored by the smarthost
  lost        accepted messages not processed + expected rows never seen
  duplicated  extra copies stored by the smarthost
  window      of the duplicates, those SMTP itself leaves open (the smarthost stored it, its
              250 never arrived): each follows a logged retry with the same Message-ID
  recovery    seconds from the end of the fault until everything was delivered

Used by tests/faults/test_fault_matrix.py (CI counts) and bench/faults.py (larger ones).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from typing import Callable

import psycopg
from sqlalchemy import select

from gateway.models import Outbox
from tests.faults.cluster import MERCHANTS, GatewayCluster, Message
from tests.faults.smarthost import FaultSmarthost
from tests.harness import DOMAIN, wait_until


@dataclass
class Result:
    fault: str
    sent: int = 0
    accepted: int = 0
    expected: int = 0
    seen: int = 0
    lost: int = 0
    duplicated: int = 0
    window: int = 0
    recovery: float = 0.0
    notes: list[str] = field(default_factory=list)

    HEADER = ("fault", "sent", "accepted", "relays expected", "relays seen", "lost", "duplicated", "recovery s")

    def row(self) -> tuple:
        duplicated = f"{self.duplicated}" + (f" ({self.window} SMTP window)" if self.window else "")
        return (self.fault, self.sent, self.accepted, self.expected, self.seen, self.lost, duplicated,
                f"{self.recovery:.1f}")


def table(results: list[Result]) -> str:
    rows = [Result.HEADER] + [tuple(str(c) for c in r.row()) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(Result.HEADER))]
    lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
             for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


# --- mail ------------------------------------------------------------------------------

def complaint(reference: str, customer: str, *, message_id: bool = True) -> Message:
    mail = EmailMessage()
    mail["From"] = customer
    mail["To"] = f"delivery@{DOMAIN}"
    mail["Subject"] = f"{reference} never arrived"
    if message_id:
        mail["Message-ID"] = f"<{uuid.uuid4().hex}@customer.test>"
    mail["Date"] = "Thu, 26 Nov 2026 10:00:00 +0100"
    mail.set_content(f"Hello, my parcel {reference} never arrived. Please help.")
    return Message(customer, f"delivery@{DOMAIN}", mail.as_bytes(policy=SMTP))


def reply(case_address: str, merchant: str, n: int) -> Message:
    mail = EmailMessage()
    mail["From"] = merchant
    mail["To"] = case_address
    mail["Subject"] = "Re: your case"
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@shop.test>"
    mail["Date"] = "Thu, 26 Nov 2026 11:00:00 +0100"
    mail.set_content(f"We are looking into it (answer {n}).")
    return Message(merchant, case_address, mail.as_bytes(policy=SMTP))


def redelivered(message: Message, hop: int) -> Message:
    """The same message handed over again by the MTA, with one more Received line."""
    trace = (f"Received: from mx{hop}.customer.test by mx.{DOMAIN}; Thu, 26 Nov 2026 10:0{hop}:00 +0100\r\n").encode()
    return Message(message.sender, message.recipient, trace + message.raw)


class Load:
    """The mail of one run: `complaints` new cases and `replies` merchant answers on cases
    opened before; each reference is used once over the whole matrix."""

    def __init__(self, matrix: "Matrix", tag: str, complaints: int, replies: int, *, merchant: str = "shop") -> None:
        self.messages: list[Message] = []
        references = matrix.references(tag, complaints, merchant)
        self.messages += [complaint(ref, customer) for ref, _, customer in references]
        for n, address in enumerate(matrix.case_addresses[:replies]):
            self.messages.append(reply(address, MERCHANTS["shop"], n))
        self.distinct = len(self.messages)


# --- the matrix ------------------------------------------------------------------------

class Matrix:
    def __init__(self, cluster: GatewayCluster, smarthost: FaultSmarthost, *, per_run: int, replies: int) -> None:
        self.cluster = cluster
        self.smarthost = smarthost
        self.per_run = per_run
        self.replies = replies
        self._references: dict[str, list] = {}
        self.case_addresses: list[str] = []

    @staticmethod
    def plan(tags: list[str], per_run: int) -> dict[str, list[tuple[str, str, str]]]:
        """The transactions every run will need, imported before the processes start."""
        return {tag: [(f"TX-{tag}-{i:04d}", "refuses" if tag == "550" and i % 2 == 0 else "shop",
                       f"c-{tag}-{i}@customer.test") for i in range(per_run)] for tag in tags}

    def load_plan(self, plan: dict) -> None:
        self._references = {tag: list(rows) for tag, rows in plan.items()}

    def references(self, tag: str, count: int, merchant: str) -> list[tuple[str, str, str]]:
        rows = self._references[tag][:count]
        self._references[tag] = self._references[tag][count:]
        return rows

    def remember_cases(self) -> None:
        """Merchant case addresses of the relays seen so far (replies are written to them)."""
        with self.cluster.database.unit_of_work() as db:
            raws = db.scalars(select(Outbox.raw).where(Outbox.recipient == MERCHANTS["shop"], Outbox.kind == "relay",
                                                       Outbox.status == "sent").order_by(Outbox.id)).all()
        import email
        from email.policy import compat32
        from email.utils import parseaddr

        found = []
        for raw in raws:
            address = parseaddr(str(email.message_from_bytes(raw, policy=compat32).get("From") or ""))[1]
            if address and address not in found:
                found.append(address)
        self.case_addresses = found

    def run(self, fault: str, drive: Callable[["Run"], None], *, load: Load, timeout: float = 90) -> "Run":
        run = Run(self, fault, load)
        run.since = self.cluster.high_water()
        before = self.smarthost.copies()
        run.started = time.monotonic()
        try:
            drive(run)
        finally:
            self.smarthost.set("ok")
            self.smarthost.data_delay = 0.0
            self.smarthost.on_mail = self.smarthost.on_data = None
        run.fault_end = run.fault_end or time.monotonic()
        run.result = run.measure(run.since, before, timeout)
        return run


class Run:
    def __init__(self, matrix: Matrix, fault: str, load: Load) -> None:
        self.matrix = matrix
        self.cluster = matrix.cluster
        self.smarthost = matrix.smarthost
        self.fault = fault
        self.load = load
        self.started = 0.0
        self.fault_end: float | None = None
        self.expected_window = 0  # copies the run provokes in the window SMTP leaves open
        self.notes: list[str] = []
        self.health: dict[str, tuple[int, list[str]]] = {}  # moment -> (/healthz status, failing checks)
        self.since: tuple[int, int] = (0, 0)
        self.result: Result | None = None
        self._sender: threading.Thread | None = None

    def send(self, messages: list[Message] | None = None, *, background: bool = False) -> None:
        batch = self.load.messages if messages is None else messages

        def go() -> None:
            self.cluster.hand_over(batch)

        if background:
            self._sender = threading.Thread(target=go, name="mta")
            self._sender.start()
        else:
            go()

    def join_sender(self) -> None:
        if self._sender is not None:
            self._sender.join()

    def end_fault(self) -> None:
        self.fault_end = time.monotonic()

    def check_health(self, moment: str) -> None:
        status, body = self.cluster.healthz()
        failing = [c["name"] for c in body["checks"] if not c["ok"]]
        self.health[moment] = (status, failing)
        self.notes.append(f"/healthz {moment}: {status}" + (f", failing: {', '.join(failing)}" if failing else ""))

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
        wait_until(predicate, timeout, what)

    def measure(self, since: tuple[int, int], before, timeout: float) -> Result:
        self.join_sender()
        result = Result(self.fault, sent=len(self.load.messages),
                        accepted=sum(1 for m in self.load.messages if m.accepted_at is not None))
        deadline = time.monotonic() + timeout
        settled_at = None
        while time.monotonic() < deadline:
            state = self.cluster.state(since)
            copies = self.smarthost.copies()
            expected = [(mid, rcpt.lower()) for _, mid, rcpt, status in state["outbox"] if status != "failed"]
            done = (not state["inbound"].get("queued")
                    and all(status in ("sent", "failed", "superseded") for *_, status in state["outbox"])
                    and all(copies[key] for key in expected))
            if done:
                settled_at = time.monotonic()
                break
            time.sleep(0.1)
        state = self.cluster.state(since)
        copies = self.smarthost.copies()
        expected = [(mid, rcpt.lower()) for _, mid, rcpt, status in state["outbox"] if status != "failed"]
        result.expected = len(expected)
        result.seen = sum(1 for key in expected if copies[key])
        processed = state["inbound"].get("processed", 0) + state["inbound"].get("quarantined", 0)
        accepted_distinct = min(self.load.distinct, result.accepted)
        result.lost = max(0, accepted_distinct - processed) + (result.expected - result.seen)
        extra = {key: max(0, n - 1) - max(0, before.get(key, 0) - 1) for key, n in copies.items()}
        result.duplicated = sum(extra.values())
        logs = self.cluster.logs()  # a copy explained by the window follows a logged retry "with the same Message-ID"
        result.window = sum(n for (message_id, _), n in extra.items() if n and f"same Message-ID {message_id}" in logs)
        result.recovery = (settled_at if settled_at is not None else time.monotonic()) - (self.fault_end or 0)
        result.recovery = max(0.0, result.recovery)
        result.notes = self.notes
        if settled_at is None:
            result.notes.append("did not settle within the timeout")
        return result


# --- faults ----------------------------------------------------------------------------

def smarthost_451(run: Run, seconds: float = 12) -> None:
    """451 to every recipient for `seconds`; health must say deliveries are being retried."""
    run.smarthost.set("tempfail")
    run.send(background=True)
    time.sleep(seconds - 1)
    run.check_health("during the 451s")
    time.sleep(1)
    run.smarthost.set("ok")
    run.end_fault()


def smarthost_550(run: Run) -> None:
    """The smarthost refuses one merchant's address for good: those relays fail (a bounce:
    the merchant is flagged, its cases escalate), everything else arrives."""
    run.smarthost.reject.add(MERCHANTS["refuses"])
    run.end_fault()
    run.send()


def dropping(mode: str, budget: int) -> Callable[[Run], None]:
    def drive(run: Run) -> None:
        run.smarthost.set(mode, budget=budget)
        run.send()
        run.wait_for(lambda: run.smarthost.mode == "ok", 60, f"{budget} deliveries to meet {mode}")
        run.end_fault()
    return drive


def smtp_window(budget: int) -> Callable[[Run], None]:
    """The smarthost stores the message, then the connection dies before its 250: the one
    window SMTP leaves open. Each such delivery is retried once, after the delay, with the
    same Message-ID: exactly one extra copy each."""
    def drive(run: Run) -> None:
        run.smarthost.set("lost_250", budget=budget)
        run.send()
        run.wait_for(lambda: run.smarthost.mode == "ok", 60, "the lost 250s")
        run.expected_window = budget
        run.end_fault()
    return drive


def smarthost_hangs(run: Run, seconds: float = 8) -> None:
    """The smarthost says nothing after MAIL FROM: deliveries wait, intake must not."""
    run.smarthost.hang_seconds = seconds
    run.smarthost.set("hang")
    hung_at = time.monotonic()
    run.send()

    def processed() -> bool:
        state = run.cluster.state(run.since)
        return not state["inbound"].get("queued")

    run.wait_for(processed, seconds, "inbound processing while the smarthost hangs")
    run.notes.append(f"every message processed {time.monotonic() - hung_at:.1f} s into the {seconds:.0f} s hang")
    time.sleep(max(0.0, seconds - (time.monotonic() - hung_at)))
    run.smarthost.set("ok")
    run.end_fault()


def mta_duplicates(run: Run) -> None:
    """Every message handed over twice by the MTA, the copy with a new Received line; half
    of them have no Message-ID."""
    originals = []
    for i, message in enumerate(run.load.messages):
        if i % 2:
            raw = message.raw.replace(b"Message-ID:", b"X-Old-Message-ID:", 1)
            message = Message(message.sender, message.recipient, raw)
        originals.append(message)
    copies = [redelivered(m, 2) for m in originals]
    run.load.messages = originals + copies
    run.load.distinct = len(originals)
    run.end_fault()
    run.send(originals)
    run.send(copies)


def redis_flushall(run: Run) -> None:
    """Redis loses every queue while work is waiting in it."""
    run.smarthost.data_delay = 0.3  # a backlog of deliveries builds up
    run.send()
    time.sleep(0.5)
    run.cluster.redis.flushall()
    run.end_fault()
    run.smarthost.data_delay = 0.0


def postgres_restart(mode: str) -> Callable[[Run], None]:
    def drive(run: Run) -> None:
        run.smarthost.data_delay = 1.0  # deliveries in flight when the database goes
        run.send(background=True)
        time.sleep(1.5)
        run.cluster.pg.restart(mode)
        run.end_fault()
        run.smarthost.data_delay = 0.0
    return drive


def postgres_stopped(seconds: float = 30) -> Callable[[Run], None]:
    """PostgreSQL stopped for `seconds` while deliveries are in flight; a worker holding
    smarthost 250s in its journal is killed during the outage."""
    def drive(run: Run) -> None:
        run.smarthost.data_delay = 2.0
        run.send(background=True)
        time.sleep(2.5)
        run.cluster.pg.stop("fast")
        stopped = time.monotonic()
        time.sleep(1.0)
        run.check_health("with the database down")
        run.wait_for(lambda: bool(run.cluster.journal_entries()), 10, "250s kept in a journal")
        owner = run.cluster.journal_entries()[0][0]
        name = run.cluster.worker_named(_pid(owner))
        with run.smarthost.held():
            run.cluster.kill(name)
        run.notes.append(f"{name} killed holding 250s in its journal")
        run.smarthost.data_delay = 0.0
        time.sleep(max(0.0, seconds - (time.monotonic() - stopped)))
        run.cluster.pg.start()
        run.end_fault()
    return drive


class _RowLock:
    """Holds FOR UPDATE on one row from a separate PostgreSQL session."""

    def __init__(self, dsn: str, sql: str, params: tuple) -> None:
        self.connection = psycopg.connect(dsn)
        self.connection.execute(sql, params).fetchall()

    def release(self) -> None:
        self.connection.rollback()
        self.connection.close()


def _pid(process_id: str) -> int:
    return int(process_id.split("-")[-2])  # <host>-<pid>-<random>


def kill_after_250(times: int) -> Callable[[Run], None]:
    """kill -9 the worker between the smarthost's 250 and the commit of 'sent': its outbox
    row is held locked, so the commit waits; the worker is killed once the 250 is in its
    journal. No second copy may follow. One kill at a time."""
    def drive(run: Run) -> None:
        cluster, smarthost, armed, done = run.cluster, run.smarthost, [times], []
        locks: dict[str, _RowLock] = {}
        arming = threading.Lock()  # MAIL hooks run in several threads: one kill at a time

        def on_mail(mail_from: str) -> None:
            with arming:
                if armed[0] <= 0 or locks or not mail_from.startswith("bounce+"):
                    return
                armed[0] -= 1
                token = mail_from.split("+", 1)[1].split("-", 1)[0]
                locks[token] = _RowLock(cluster.pg.dsn, "SELECT id FROM outbox WHERE verp_token = %s FOR UPDATE",
                                        (token,))

        def after_250(token: str) -> None:
            try:
                with cluster.database.unit_of_work() as db:
                    outbox_id = db.scalar(select(Outbox.id).where(Outbox.verp_token == token))
                try:
                    run.wait_for(lambda: any(i == outbox_id for _, i in cluster.journal_entries()), 20, "the journal")
                except AssertionError:
                    with cluster.database.unit_of_work() as db:
                        row = db.get(Outbox, outbox_id)
                    raise AssertionError(f"outbox {outbox_id} never in a journal: {row.status} {row.holder} "
                                         f"{row.last_error} {sorted(cluster.journal_entries())}") from None
                owner = next(o for o, i in cluster.journal_entries() if i == outbox_id)
                name = cluster.worker_named(_pid(owner))
                with smarthost.held():
                    cluster.kill(name)
                run.notes.append(f"{name} killed after the 250 of outbox {outbox_id}, before its commit")
            finally:
                with arming:
                    locks.pop(token).release()
                    done.append(token)

        def on_data(mail_from: str, rcpts: list[str], message_id: str) -> None:
            token = mail_from.split("+", 1)[1].split("-", 1)[0] if mail_from.startswith("bounce+") else ""
            if token in locks:
                threading.Thread(target=after_250, args=(token,), daemon=True).start()
            return None

        run.smarthost.on_mail, run.smarthost.on_data = on_mail, on_data
        run.send(background=True)
        run.wait_for(lambda: len(done) >= times, 60, "the kills")
        run.end_fault()
    return drive


def kill_mid_send(run: Run) -> None:
    """kill -9 the worker whose delivery reached DATA: nothing is stored, its claim stays
    'sending'; the other worker finds the dead process's journal and gives the row one
    delayed retry."""
    cluster, smarthost, done, once = run.cluster, run.smarthost, [], threading.Lock()

    def on_data(mail_from: str, rcpts: list[str], message_id: str) -> str | None:
        if not mail_from.startswith("bounce+"):
            return None
        with once:
            if done:
                return None
            token = mail_from.split("+", 1)[1].split("-", 1)[0]
            with cluster.database.unit_of_work() as db:
                holder = db.scalar(select(Outbox.holder).where(Outbox.verp_token == token))
            name = cluster.worker_named(_pid(holder)) if holder else None
            if name is None:
                return None
            done.append(name)
        with smarthost.held():
            cluster.kill(name)
        run.notes.append(f"{name} killed during the DATA of a delivery")
        return "drop"

    run.smarthost.on_data = on_data
    run.send()
    run.wait_for(lambda: bool(done), 60, "the kill")
    run.end_fault()


def kill_mid_processing(run: Run) -> None:
    """kill -9 both workers while they process replies (the case rows are held locked, so
    processing waits inside its transaction); their fetched jobs must be found again."""
    cluster = run.cluster
    replies = [m for m in run.load.messages if m.sender == MERCHANTS["shop"]]
    with cluster.database.unit_of_work() as db:
        from gateway.models import Case

        ids = list(db.scalars(select(Case.id).where(Case.state != "closed")))
    lock = _RowLock(cluster.pg.dsn, "SELECT id FROM cases WHERE id = ANY(%s) FOR UPDATE", (ids,))
    try:
        run.send(replies)
        time.sleep(1.5)  # the workers have fetched them and wait on the lock
        with run.smarthost.held():
            for name in ("worker-1", "worker-2"):
                cluster.kill(name)
        run.notes.append("both workers killed while processing")
    finally:
        lock.release()
    run.end_fault()
    run.send([m for m in run.load.messages if m not in replies])


def kill_randomly(kills: int, every: float) -> Callable[[Run], None]:
    """kill -9 a worker every `every` seconds while mail flows, at whatever moment that is
    (bench only: a kill that lands between the smarthost storing a message and its 250
    reaching the worker is the SMTP window, and shows as such)."""
    import random

    def drive(run: Run) -> None:
        run.send(background=True)
        for _ in range(kills):
            time.sleep(every)
            name = random.choice(("worker-1", "worker-2"))
            run.cluster.kill(name)
            run.notes.append(f"{name} killed at random")
        run.join_sender()
        run.end_fault()
    return drive
