"""IMAP ingress (imapclient): read one mailbox, store each message raw, then move or flag it.

The same hand-off as the SMTP ingress: the raw bytes and an envelope are committed by
`store` first, and only then is the message moved to `processed_folder` (or flagged
\\Seen when that is None). A crash between the two leaves the message in the mailbox;
the next pass stores it again, `save_inbound` recognises the duplicate and returns the
existing id, and the message is moved then. Nothing is lost and nothing runs twice.

One `ImapPoller` per configured mailbox, each in its own thread: `run()` until `stop`
is set, or `poll_once()` for a single pass.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr
from typing import Callable, Iterable

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from gateway.clock import Clock
from gateway.config import ImapMailbox
from gateway.db import DatabaseUnavailable
from gateway.ingress.acceptor import Acceptor
from gateway.metrics import IMAP_STORED
from gateway.mail.parse import message_ids
from gateway.mail.templating import Renderer

log = logging.getLogger(__name__)

StoreFn = Callable[[bytes, str, list[str]], int]

RECONNECT_MIN_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 60.0
IDLE_MAX_SECONDS = 29 * 60  # RFC 2177: servers may drop an IDLE older than 30 minutes
STOP_CHECK_SECONDS = 1.0  # longest time between two looks at `stop` while in IDLE
SOCKET_TIMEOUT_SECONDS = 60.0
ENVELOPE_RECIPIENT_HEADERS = ("x-original-to", "delivered-to", "envelope-to")
SEEN = b"\\Seen"
DELETED = b"\\Deleted"
BODY = b"BODY[]"
MAX_FETCH_BYTES = 64 * 1024 * 1024  # one FETCH of bodies holds at most this much (plus one message)
# What a lost connection looks like: socket and TLS errors are OSError, protocol
# errors and BYE are IMAPClientError (= imaplib.IMAP4.error) or imaplib.IMAP4.abort.
CONNECTION_ERRORS = (OSError, IMAPClientError, imaplib.IMAP4.error, EOFError)
_HEADER_PARSER = BytesHeaderParser(policy=compat32)


class ConnectionLost(Exception):
    """The server said BYE (shutdown, restart, autologout) while we were idling."""


class NoBody(Exception):
    """FETCH returned no body for a UID: expunged by another client since the SEARCH."""


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str | None


def envelope_of(raw: bytes) -> Envelope:
    """The envelope of a message read from a mailbox, reconstructed from its headers.

    IMAP keeps no envelope: MAIL FROM and RCPT TO ended at final delivery. The delivery
    agent records them as headers, so they are read back from there. Return-Path is
    the envelope sender (RFC 5321 4.4; the topmost one is the last delivery's); `<>`
    there is the null sender. A message without Return-Path (put in the mailbox by a
    client or an import) takes its From address, so a customer's mail is never mistaken
    for an automatic one. X-Original-To
    (Postfix: the recipient before alias expansion), Delivered-To (Postfix, Dovecot,
    qmail) and Envelope-To (Exim) carry the envelope recipients; this matters when the
    mailbox receives a copy addressed in Bcc, or through an alias, where To and Cc do
    not name us. A message that has none of them (put in the mailbox by a client or an
    import) falls back to its To and Cc addresses. Recipients are lower-cased.
    """
    headers = _HEADER_PARSER.parsebytes(raw, headersonly=True)
    return_path = headers.get("Return-Path")
    if return_path is not None:
        mail_from = parseaddr(str(return_path))[1]
    else:
        mail_from = parseaddr(str(headers.get("From") or ""))[1].lower()
    rcpt_tos = _addresses(headers, ENVELOPE_RECIPIENT_HEADERS) or _addresses(headers, ("to", "cc"))
    ids = message_ids(str(headers.get("Message-ID") or ""))
    return Envelope(mail_from, rcpt_tos, ids[0] if ids else None)


def _addresses(headers, names: Iterable[str]) -> tuple[str, ...]:
    values = [str(value) for name in names for value in headers.get_all(name, [])]
    found = (address.strip().lower() for _name, address in getaddresses(values))
    return tuple(dict.fromkeys(address for address in found if "@" in address))


def gateway_recipients(raw: bytes, rcpt_tos: Iterable[str], domain: str) -> list[str]:
    """Where a message in the mailbox is going. When the delivery headers name the mailbox
    itself (its own address in X-Original-To/Delivered-To), the addresses of ours in To and
    Cc say it."""
    rcpt_tos = list(rcpt_tos)
    if any(r.endswith("@" + domain) for r in rcpt_tos):
        return rcpt_tos
    headers = _HEADER_PARSER.parsebytes(raw, headersonly=True)
    return [a for a in _addresses(headers, ("to", "cc")) if a.endswith("@" + domain)] or rcpt_tos


def make_store(acceptor: Acceptor) -> StoreFn:
    """The `store` callable of a poller: the shared acceptor, with the recipients the
    mailbox's delivery headers give (`gateway_recipients`). Returns the inbound id (the first
    copy's for a duplicate); raises when nothing was committed (the message stays in its
    mailbox and is tried again)."""
    domain = acceptor.settings.gateway.domain

    def store_message(raw: bytes, mail_from: str, rcpt_tos: list[str]) -> int:
        return acceptor.accept(raw, mail_from=mail_from, rcpt_tos=gateway_recipients(raw, rcpt_tos, domain),
                               source="imap").inbound_id

    return store_message


def make_too_large_reporter(acceptor: Acceptor, *, renderer: Renderer,
                            enqueue_delivery: Callable[[int], None]) -> Callable[[bytes, int, str], None]:
    """Record an oversized message left in its mailbox (its headers only) through the
    acceptor: listed by `quarantine list` and the metrics, staff told when it was meant for
    one of our addresses."""
    domain = acceptor.settings.gateway.domain

    def report(header: bytes, size: int, where: str) -> None:
        envelope = envelope_of(header)
        acceptor.too_large(header, mail_from=envelope.mail_from,
                           rcpt_tos=gateway_recipients(header, envelope.rcpt_tos, domain), source="imap",
                           size=size, where=where, renderer=renderer, enqueue_delivery=enqueue_delivery)

    return report


class ImapPoller:
    """Reads one mailbox: stores what is waiting, then waits in IDLE (or polls) for more.

    A message whose `store` raises stays in the mailbox untouched and is held back for
    `poll_interval_seconds` before the next try, so one bad message never makes the
    loop spin and never blocks the others. `last_pass_at` (from `clock`) tells a health
    check when the mailbox was last read completely.
    """

    def __init__(self, mailbox: ImapMailbox, *, store: StoreFn, clock: Clock, stop: threading.Event,
                 max_message_bytes: int | None = None,
                 report_too_large: Callable[[bytes, int, str], None] | None = None) -> None:
        if mailbox.security not in ("tls", "starttls", "plain"):
            raise ValueError(f"unknown IMAP security {mailbox.security!r}")
        self.mailbox = mailbox
        self.name = f"imap://{mailbox.username}@{mailbox.host}:{mailbox.port}/{mailbox.folder}"
        self.last_pass_at = None
        self._store = store
        self._clock = clock
        self._stop = stop
        self._criteria = ["UNSEEN", "UNDELETED"] if mailbox.processed_folder is None else ["UNDELETED"]
        self._held: dict[int, float] = {}  # UID -> monotonic time of its next try
        self._blocked_until = 0.0  # database unavailable: no store attempt before this
        self._uidvalidity: int | None = None
        self._healthy = False  # this connection completed a pass: reset the reconnect backoff
        self.max_message_bytes = max_message_bytes  # larger messages are left in the mailbox, reported once
        self._report_too_large = report_too_large
        self._too_large: set[int] = set()

    # -- the two entry points ------------------------------------------------------------

    def run(self) -> None:
        """Read the mailbox until `stop` is set, reconnecting with backoff after any failure."""
        delay = RECONNECT_MIN_SECONDS
        while not self._stop.is_set():
            self._healthy = False
            try:
                with self._connect() as client:
                    self._select(client)
                    self._session(client)
                return
            except Exception as error:  # the outermost shell: a poller thread must not die
                if self._stop.is_set():
                    return
                if self._healthy:  # it worked for a while: start the backoff again
                    delay = RECONNECT_MIN_SECONDS
                logged = log.warning if isinstance(error, CONNECTION_ERRORS + (ConnectionLost,)) else log.exception
                logged("%s: connection failed (%s: %s); reconnecting in %.0f s",
                       self.name, type(error).__name__, error, delay)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    def poll_once(self) -> int:
        """Store everything waiting now, held-back messages included; returns how many were stored."""
        with self._connect() as client:
            self._select(client)
            return self._pass(client, retry_held=True)[1]

    # -- connection ----------------------------------------------------------------------

    def _connect(self) -> IMAPClient:
        mailbox = self.mailbox
        context = self._ssl_context() if mailbox.security != "plain" else None
        client = IMAPClient(mailbox.host, port=mailbox.port, ssl=mailbox.security == "tls", ssl_context=context,
                            timeout=SOCKET_TIMEOUT_SECONDS)
        try:
            if mailbox.security == "starttls":
                client.starttls(context)  # raises CapabilityError rather than go on in plain text
            client.login(mailbox.username, mailbox.password)
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        return client

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.mailbox.verify_certificates:
            log.warning("%s: TLS certificate checks are off (verify_certificates = false)", self.name)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _select(self, client: IMAPClient) -> None:
        """Create the processed folder if it is missing, then select the mailbox."""
        processed = self.mailbox.processed_folder
        if processed is not None and not client.folder_exists(processed):
            try:
                client.create_folder(processed)
                log.info("%s: created folder %s", self.name, processed)
            except IMAPClientError:  # another poller created it first
                if not client.folder_exists(processed):
                    raise
        uidvalidity = client.select_folder(self.mailbox.folder).get(b"UIDVALIDITY")
        if uidvalidity != self._uidvalidity:  # UIDs were renumbered: old holds mean nothing
            self._held.clear()
            self._uidvalidity = uidvalidity

    # -- the loop ------------------------------------------------------------------------

    def _session(self, client: IMAPClient) -> None:
        idle = client.has_capability("IDLE")
        log.info("%s: connected; waiting with %s", self.name, "IDLE" if idle else "polling")
        while not self._stop.is_set():
            # Repeat until a pass finds nothing to try: mail that arrived during a pass
            # was announced in a response imapclient discards, and IDLE will not repeat it.
            while self._pass(client)[0] and not self._stop.is_set():
                pass
            self._healthy = True
            if self._stop.is_set():
                return
            if idle:
                self._idle(client)
            else:
                self._stop.wait(self._seconds_until(time.monotonic() + self.mailbox.poll_interval_seconds))

    def _idle(self, client: IMAPClient) -> None:
        """IDLE until new mail, a held message is due, the IDLE period ends or `stop`."""
        deadline = time.monotonic() + min(self.mailbox.idle_timeout_seconds, IDLE_MAX_SECONDS)
        client.idle()
        while not self._stop.is_set():
            wait = self._seconds_until(deadline)
            if wait <= 0:
                break
            started = time.monotonic()
            responses = client.idle_check(timeout=min(wait, STOP_CHECK_SECONDS))
            if any(r[:1] == (b"BYE",) for r in responses):
                raise ConnectionLost(f"server said BYE: {responses}")
            if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                break
            if not responses and time.monotonic() - started < min(wait, STOP_CHECK_SECONDS) / 2:
                break  # readable but nothing parsed: the server closed; DONE below will tell
        client.idle_done()

    def _seconds_until(self, deadline: float) -> float:
        """Seconds until `deadline` or until the next held message or blocked store is due."""
        next_try = min(self._held.values(), default=deadline)
        if self._blocked_until:  # no store attempt, held or not, before the database is retried
            next_try = max(next_try, self._blocked_until)
        return max(0.0, min(deadline, next_try) - time.monotonic())

    # -- one pass ------------------------------------------------------------------------

    def _pass(self, client: IMAPClient, *, retry_held: bool = False) -> tuple[int, int]:
        """Store and then move or flag what is waiting, batch by batch; (tried, stored)."""
        now = time.monotonic()
        if retry_held:
            self._held.clear()
            self._blocked_until = 0.0
        elif self._blocked_until > now:
            return 0, 0
        self._blocked_until = 0.0
        uids = sorted(client.search(self._criteria))
        present = set(uids)
        self._held = {uid: due for uid, due in self._held.items() if uid in present}
        self._too_large &= present
        waiting = [uid for uid in uids if self._held.get(uid, 0.0) <= now and uid not in self._too_large]
        tried = stored = 0
        size = max(1, self.mailbox.batch_size)
        for start in range(0, len(waiting), size):
            batch = waiting[start:start + size]
            done = self._store_batch(client, batch)
            self._finish(client, done)
            tried += len(batch)
            stored += len(done)
            if self._blocked_until or self._stop.is_set():
                break
        self.last_pass_at = self._clock.now()
        return tried, stored

    def _store_batch(self, client: IMAPClient, uids: list[int]) -> list[int]:
        """Store one batch, fetched in slices of at most MAX_FETCH_BYTES; the UIDs stored.

        Sizes are asked first (RFC822.SIZE), so a message over `max_message_bytes` is never
        downloaded: it stays in the mailbox and is reported once, like a 552 over SMTP.
        """
        sizes = {uid: data.get(b"RFC822.SIZE", 0) for uid, data in client.fetch(uids, ["RFC822.SIZE"]).items()}
        done: list[int] = []
        wanted: list[int] = []
        for uid in uids:
            if self.max_message_bytes and sizes.get(uid, 0) > self.max_message_bytes:
                if uid not in self._too_large:
                    self._too_large.add(uid)
                    IMAP_STORED.labels("too_large").inc()
                    log.error("%s: UID %s is %s bytes, over max_message_bytes (%s): left in the mailbox, not stored",
                              self.name, uid, sizes[uid], self.max_message_bytes)
                    self._report(client, uid, sizes[uid])
                continue
            wanted.append(uid)
        slice_: list[int] = []
        total = 0
        for uid in wanted:
            if slice_ and total + sizes.get(uid, 0) > MAX_FETCH_BYTES:
                done.extend(self._store_slice(client, slice_))
                if self._blocked_until:
                    return done
                slice_, total = [], 0
            slice_.append(uid)
            total += sizes.get(uid, 0)
        if slice_:
            done.extend(self._store_slice(client, slice_))
        return done

    def _report(self, client: IMAPClient, uid: int, size: int) -> None:
        """Put the headers of an oversized message in the quarantine list, once."""
        if self._report_too_large is None:
            return
        try:
            header = client.fetch([uid], ["BODY.PEEK[HEADER]"]).get(uid, {}).get(b"BODY[HEADER]") or b""
            self._report_too_large(header, size, f"{self.name} UID {uid}")
        except Exception:  # reporting must never stop the pass; the log line above stands
            log.warning("%s: could not report UID %s to the quarantine list", self.name, uid, exc_info=True)

    def _store_slice(self, client: IMAPClient, uids: list[int]) -> list[int]:
        """Fetch messages (BODY.PEEK keeps \\Seen unset) and store each; the UIDs stored."""
        fetched = client.fetch(uids, ["BODY.PEEK[]"])
        done: list[int] = []
        for uid in uids:
            raw = fetched.get(uid, {}).get(BODY)
            envelope = None
            try:
                if raw is None:
                    raise NoBody("the server returned no body")
                envelope = envelope_of(raw)
                inbound_id = self._store(raw, envelope.mail_from, list(envelope.rcpt_tos))
            except DatabaseUnavailable as error:
                self._hold(uid, envelope, error)
                self._blocked_until = time.monotonic() + self.mailbox.poll_interval_seconds
                break
            except Exception as error:  # this message only: the others go on
                self._hold(uid, envelope, error)
                continue
            self._held.pop(uid, None)
            IMAP_STORED.labels("stored").inc()
            log.info("%s: UID %s stored as inbound %s [Message-ID %s]", self.name, uid, inbound_id,
                     envelope.message_id)
            done.append(uid)
        return done

    def _hold(self, uid: int, envelope: Envelope | None, error: Exception) -> None:
        """Leave the message in the mailbox and skip it until the poll interval has passed."""
        first = uid not in self._held  # the traceback once, then one line per retry
        expected = isinstance(error, (DatabaseUnavailable, NoBody))
        self._held[uid] = time.monotonic() + self.mailbox.poll_interval_seconds
        log.log(logging.ERROR if first else logging.WARNING,
                "%s: UID %s [Message-ID %s] not stored (%s: %s); left in the mailbox, next try in %.0f s",
                self.name, uid, envelope.message_id if envelope else None, type(error).__name__, error,
                self.mailbox.poll_interval_seconds, exc_info=first and not expected)

    def _finish(self, client: IMAPClient, uids: list[int]) -> None:
        """Move stored messages to the processed folder, or flag them \\Seen."""
        if not uids:
            return
        processed = self.mailbox.processed_folder
        if processed is None:
            client.add_flags(uids, [SEEN])
        elif client.has_capability("MOVE"):
            client.move(uids, processed)
        else:
            client.copy(uids, processed)
            client.add_flags(uids, [DELETED])
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(uids)
            else:  # plain EXPUNGE also removes what others flagged \Deleted in this folder
                client.expunge()
