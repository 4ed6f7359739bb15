"""The smarthost of the fault matrix: a real aiosmtpd server that stores what it accepts
and can be told to fail the way real ones do.

Modes (`mode`, for the next `budget` deliveries or until changed):
  ok               store, 250
  tempfail         451 to every RCPT
  drop_before_250  read the whole message, keep nothing, close the connection (a crash before queueing)
  drop_after_250   store, 250, then close the connection
  lost_250         store, then close without answering (the window SMTP leaves open)
  hang             say nothing after MAIL FROM for `hang_seconds`
Always: recipients in `reject` get 550 at RCPT; `data_delay` seconds pass before each
answer to DATA (deliveries stay in flight), `slow_seconds` before every answer from MAIL on; `on_mail` / `on_data` hooks run in a thread
before MAIL and DATA are answered (`on_data` returning "drop" makes it a drop_before_250);
inside `held()` nothing is stored.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Callable, Iterator

from aiosmtpd.controller import Controller

from tests.harness import free_port

_HEADERS = BytesHeaderParser(policy=compat32)


@dataclass(frozen=True)
class Delivery:
    message_id: str
    recipient: str
    mail_from: str
    at: float  # time.monotonic()


class _Handler:
    def __init__(self, host: "FaultSmarthost") -> None:
        self.host = host

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        host = self.host
        if host.on_mail is not None:
            await asyncio.to_thread(host.on_mail, address)
        if host._take("hang"):
            await asyncio.sleep(host.hang_seconds)
        await asyncio.sleep(host.slow_seconds)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        host = self.host
        await asyncio.sleep(host.slow_seconds)
        if address.lower() in host.reject:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if host.mode == "tempfail":
            return "451 4.3.0 Temporary failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        host = self.host
        raw = envelope.original_content or envelope.content
        headers = _HEADERS.parsebytes(raw[:65536], headersonly=True)
        message_id = str(headers.get("Message-ID") or "").strip()
        if host.data_delay or host.slow_seconds:
            await asyncio.sleep(host.data_delay or host.slow_seconds)
        action = None
        if host.on_data is not None:
            action = await asyncio.to_thread(host.on_data, envelope.mail_from, list(envelope.rcpt_tos), message_id)
        if not host.accepting.is_set():  # held before storing while a worker is being killed
            await asyncio.to_thread(host.accepting.wait)
        if action == "drop" or host._take("drop_before_250"):
            server.transport.abort()  # nothing kept, no answer
            return "451 never sent"
        host._store(envelope, message_id)
        if host._take("lost_250"):
            server.transport.abort()  # stored, but the 250 never leaves
            return "250 never sent"
        if host._take("drop_after_250"):
            asyncio.get_running_loop().call_later(0.01, server.transport.close)
        return "250 2.0.0 Ok: queued"


class FaultSmarthost:
    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "ok"
        self.budget: int | None = None  # deliveries the mode applies to (None: until changed)
        self.reject: set[str] = set()
        self.hang_seconds = 10.0
        self.data_delay = 0.0
        self.slow_seconds = 0.0  # before answering MAIL, RCPT and the end of DATA: a slow, live delivery
        self.on_mail: Callable[[str], None] | None = None
        self.on_data: Callable[[str, list[str], str], str | None] | None = None
        self._lock = threading.Lock()
        self._received: list[Delivery] = []
        self.faults = 0  # deliveries the mode was applied to
        self.accepting = threading.Event()  # cleared: deliveries wait before being stored (see `held`)
        self.accepting.set()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                     server_hostname="smarthost.test", decode_data=False, ready_timeout=10)
        self.controller.start()

    def set(self, mode: str, *, budget: int | None = None) -> None:
        with self._lock:
            self.mode, self.budget = mode, budget

    @contextmanager
    def held(self, settle: float = 0.3) -> Iterator[None]:
        """No delivery is stored meanwhile, and those stored just before have had `settle`
        seconds to get their 250 to the gateway: a worker killed inside is never caught
        between the smarthost storing a message and that message's 250 reaching it (the
        window SMTP leaves open, measured apart)."""
        self.accepting.clear()
        time.sleep(settle)
        try:
            yield
        finally:
            self.accepting.set()

    def _take(self, mode: str) -> bool:
        """Whether this delivery gets `mode` (counting down the budget)."""
        with self._lock:
            if self.mode != mode:
                return False
            if self.budget is not None:
                self.budget -= 1
                if self.budget <= 0:
                    self.mode, self.budget = "ok", None
            self.faults += 1
            return True

    def _store(self, envelope, message_id: str) -> None:
        with self._lock:
            for recipient in envelope.rcpt_tos:
                self._received.append(Delivery(message_id, recipient.lower(), envelope.mail_from, time.monotonic()))

    @property
    def received(self) -> list[Delivery]:
        with self._lock:
            return list(self._received)

    def copies(self) -> Counter:
        """(Message-ID, recipient) -> how many times it was stored."""
        return Counter((d.message_id, d.recipient) for d in self.received)

    def stop(self) -> None:
        self.controller.stop()
