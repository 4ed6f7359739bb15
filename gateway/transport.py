"""Outbound transports: the SMTP smarthost (production) and a local Maildir (first run).

Each `send` makes one attempt and reports it as Sent, TemporaryFailure (4xx, timeouts,
connection errors: retry later), UncertainDelivery (the connection was lost after the whole
message was sent and before the smarthost's answer: it may have stored it) or
PermanentFailure (5xx: treated as a hard bounce). SmtpTransport keeps one persistent
connection per worker thread (opening one costs more than sending a message).
"""

from __future__ import annotations

import mailbox
import smtplib
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Callable, Protocol

from gateway.config import SmtpOutboundSettings


IDLE_CHECK_SECONDS = 10.0  # a connection unused for longer is checked with NOOP before use


class DeliveryError(Exception):
    """`recipient_level`: the refusal is about this recipient (RCPT or DATA answer), not the
    connection or the smarthost as a whole; only those can become a bounce of the recipient."""

    def __init__(self, message: str, code: int | None = None, *, recipient_level: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.recipient_level = recipient_level


class TemporaryFailure(DeliveryError):
    """Try again later: 4xx, timeout, connection refused or dropped."""


class UncertainDelivery(TemporaryFailure):
    """The message was sent in full, then the connection broke or timed out before the
    smarthost answered: it may have stored the message (RFC 5321 section 4.1.1.4 leaves
    this open). The caller retries once after a delay, never at once."""


class _Disconnected(Exception):
    """A reused connection turned out to be closed before the message was sent."""


class PermanentFailure(DeliveryError):
    """The smarthost refused the message for good (5xx)."""


class Transport(Protocol):
    def send(self, mail_from: str, recipient: str, raw: bytes) -> str: ...

    def check(self) -> None: ...


def _failure(code: int, text: str, *, recipient_level: bool) -> DeliveryError:
    cls = PermanentFailure if 500 <= code < 600 else TemporaryFailure
    return cls(f"{code} {text}", code, recipient_level=recipient_level and code != 421)


def _unchanged(raw: bytes) -> bytes:
    return raw


class SmtpTransport:
    """Sends through the configured smarthost with the VERP envelope sender. `sign` (the
    DKIM signer's `sign`, gateway/mail/dkim.py) is applied to the bytes as they are sent."""

    def __init__(self, settings: SmtpOutboundSettings, *, sign: Callable[[bytes], bytes] | None = None) -> None:
        self.settings = settings
        self._sign = sign or _unchanged
        self._local = threading.local()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        if s.ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, local_hostname=s.helo_hostname,
                                                    timeout=s.timeout_seconds, context=context)
        else:
            client = smtplib.SMTP(s.host, s.port, local_hostname=s.helo_hostname, timeout=s.timeout_seconds)
        client.ehlo()
        if s.starttls:
            client.starttls(context=context)
            client.ehlo()
        if s.username:
            client.login(s.username, s.password or "")
        return client

    def _client(self) -> tuple[smtplib.SMTP, bool]:
        """This thread's connection and whether it is one kept from before; one idle for a
        while is checked with NOOP first (the smarthost may have closed it), a busy one is
        used as it is."""
        client = getattr(self._local, "client", None)
        if client is not None:
            if time.monotonic() - getattr(self._local, "used_at", 0.0) < IDLE_CHECK_SECONDS:
                return client, True
            try:
                if client.noop()[0] == 250:
                    return client, True
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()
        client = self._connect()
        self._local.client = client
        return client, False

    def _drop(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            try:
                client.close()
            except OSError:
                pass

    def send(self, mail_from: str, recipient: str, raw: bytes) -> str:
        raw = self._sign(raw)
        try:
            return self._send_once(mail_from, recipient, raw)
        except _Disconnected:  # a reused connection the smarthost had closed: once more, afresh
            self._drop()
            return self._send_once(mail_from, recipient, raw, fresh_only=True)

    def _send_once(self, mail_from: str, recipient: str, raw: bytes, *, fresh_only: bool = False) -> str:
        stage = Stage()
        reused = False
        try:
            client, reused = self._client()
            reused = reused and not fresh_only
            mail_options: list[str] = []
            rcpt_options: list[str] = []
            if client.has_extn("dsn"):
                # Ask for headers only in DSNs (no message body comes back) and tag them with
                # the VERP token, so a bounce names its outbox row twice over.
                token = mail_from.split("+", 1)[-1].split("-", 1)[0]
                mail_options = ["RET=HDRS", f"ENVID={token}"]
                rcpt_options = ["NOTIFY=FAILURE,DELAY"]
            reply = transaction(client, mail_from, recipient, raw, mail_options, rcpt_options, stage)
        except smtplib.SMTPRecipientsRefused as error:
            code, text = error.recipients.get(recipient, (550, b"recipient refused"))
            self._reset()
            raise _failure(code, text.decode(errors="replace") if isinstance(text, bytes) else str(text),
                           recipient_level=True) from None
        except smtplib.SMTPResponseException as error:  # sender refused, data error, ...
            self._reset()
            text = error.smtp_error.decode(errors="replace") if isinstance(error.smtp_error, bytes) else str(error.smtp_error)
            raise _failure(error.smtp_code, text, recipient_level=isinstance(error, smtplib.SMTPDataError)) from None
        except (smtplib.SMTPException, OSError, socket.timeout) as error:
            self._drop()
            where = f"smarthost {self.settings.host}:{self.settings.port}"
            if stage.data_sent:
                raise UncertainDelivery(f"{where}: connection lost after the message was sent, before the answer "
                                        f"({type(error).__name__}: {error})") from None
            if reused and not stage.started and not isinstance(error, socket.timeout):
                raise _Disconnected() from None  # a kept connection the smarthost had closed: nothing was sent
            raise TemporaryFailure(f"{where}: {error}") from None
        self._local.used_at = time.monotonic()
        return reply

    def _reset(self) -> None:
        try:
            self._local.client.rset()
        except Exception:
            self._drop()

    def check(self) -> None:
        """Raise TemporaryFailure unless the smarthost answers EHLO."""
        try:
            client = self._connect()
            client.quit()
        except (smtplib.SMTPException, OSError) as error:
            raise TemporaryFailure(f"smarthost {self.settings.host}:{self.settings.port}: {error}") from None


class Stage:
    """How far one SMTP transaction got: `started` once MAIL FROM was answered, `data_sent`
    once the whole message and its final dot were written (from then on a lost connection
    leaves it unknown whether the smarthost stored it)."""

    def __init__(self) -> None:
        self.started = False
        self.data_sent = False


# A body this large is sent apart from the end of its data, not copied to append it. A
# smaller one goes in one write: a second small write waits for the receiver's delayed
# acknowledgement of the first (Nagle's algorithm), up to 40 ms per message.
SEND_APART_BYTES = 1024 * 1024


def transaction(client: smtplib.SMTP, mail_from: str, recipient: str, raw: bytes, mail_options: list[str],
                rcpt_options: list[str], stage: Stage) -> str:
    """MAIL, RCPT, DATA for one recipient, as `smtplib.SMTP.sendmail` does, but noting in
    `stage` when the message has been sent in full (sendmail cannot tell a connection lost
    before the final dot from one lost after it), and returning the smarthost's answer to
    DATA ("250 2.0.0 Ok: queued as 4XyZ..."): its queue id is the proof that the message was
    handed over, which the delivery ledger of a case export shows. Raises what `sendmail`
    raises (SMTPSenderRefused, SMTPRecipientsRefused, SMTPDataError)."""
    client.ehlo_or_helo_if_needed()
    options = [f"SIZE={len(raw)}"] if client.does_esmtp and client.has_extn("size") else []
    code, text = client.mail(mail_from, options + list(mail_options))
    stage.started = True
    if code != 250:
        if code == 421:
            client.close()
        raise smtplib.SMTPSenderRefused(code, text, mail_from)
    code, text = client.rcpt(recipient, list(rcpt_options))
    if code not in (250, 251):
        if code == 421:
            client.close()
        raise smtplib.SMTPRecipientsRefused({recipient: (code, text)})
    client.putcmd("data")
    code, text = client.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, text)
    body = dot_stuffed(raw)
    end = b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n"
    if len(body) < SEND_APART_BYTES:
        client.send(body + end)
    else:  # not copied once more to add five bytes
        client.send(body)
        client.send(end)
    stage.data_sent = True
    code, text = client.getreply()
    if code != 250:
        raise smtplib.SMTPDataError(code, text)
    answer = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(answer.split())}"


def dot_stuffed(raw: bytes) -> bytes:
    """`raw` with a dot added to every line that starts with one (RFC 5321 4.5.2), as
    `smtplib.SMTP.sendmail` does it; its line-anchored expression tries every byte, 190 ms
    for a 25 MB message, where one replace takes 20."""
    stuffed = raw.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


class MaildirTransport:
    """Writes every outgoing message into a local Maildir, for a first run without a mail server.

    The envelope goes into X-Gateway-Envelope-* headers so a person can see who it was for.
    """

    def __init__(self, path: Path, *, sign: Callable[[bytes], bytes] | None = None) -> None:
        self.path = Path(path)
        self._sign = sign or _unchanged
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._box = mailbox.Maildir(str(self.path), create=True)
        self._lock = threading.Lock()

    def send(self, mail_from: str, recipient: str, raw: bytes) -> str:
        envelope = f"X-Gateway-Envelope-From: {mail_from}\r\nX-Gateway-Envelope-To: {recipient}\r\n".encode()
        with self._lock:
            key = self._box.add(envelope + self._sign(raw))
        return f"stored in {self.path} as {key}"

    def check(self) -> None:
        if not self.path.is_dir():
            raise TemporaryFailure(f"maildir {self.path} is missing")
