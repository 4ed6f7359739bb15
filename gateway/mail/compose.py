"""Notices and relayed messages as wire bytes, with per-recipient thread headers. Pure.

A relay keeps the sender's MIME body (text, HTML alternative, attachments) and replaces
every header: only the content headers survive, and routing headers are written anew, so
no address of the author (From, Sender, Received, Return-Path, X-Original-To, DKIM...) ever
reaches the other party.
"""

from __future__ import annotations

import email
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from email.charset import QP, Charset
from email.encoders import encode_base64
from email.message import EmailMessage, Message
from email.policy import SMTP, compat32
from email.utils import collapse_rfc2231_value, encode_rfc2231, format_datetime, formataddr
from datetime import datetime
from typing import Callable, Sequence

from gateway.mail.limits import Limits, bound
from gateway.mail.parse import decode, parse
from gateway.mail.templating import Rendered
from gateway.mail.wire import from_bytes, to_bytes

LOOP_HEADER = "X-Dispute-Gateway-Loop"
_WIRE = compat32.clone(linesep="\r\n")
_CONTENT_HEADERS = frozenset(
    {"mime-version", "content-type", "content-transfer-encoding", "content-disposition", "content-language"}
)
MAX_REFERENCES = 10
MAX_LINE = 998


@dataclass(frozen=True)
class Envelope:
    """The routing headers of one outgoing message to one recipient."""

    from_name: str
    from_address: str
    to_address: str
    subject: str
    message_id: str
    date: datetime
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    auto_submitted: str | None = None  # 'auto-generated', 'auto-replied' or None for relayed human mail
    to_name: str = ""


def new_message_id(domain: str, reference: str | None = None) -> str:
    """A short, unique Message-ID naming the case (never an address or a signature)."""
    return f"<{reference or 'gw'}.{secrets.token_hex(10)}@{domain}>"


def loop_token(message_id: str, key: str) -> str:
    """The signed value of our loop header: proves a message came from this gateway."""
    return hmac.new(key.encode(), message_id.encode(), hashlib.sha256).hexdigest()[:24]


def loop_header_valid(value: str, keys: Sequence[str]) -> bool:
    """Whether a loop header value `<message-id> <token>` was written by us."""
    message_id, _, token = " ".join(value.split()).rpartition(" ")  # unfold what the wire folded
    return bool(message_id) and any(hmac.compare_digest(loop_token(message_id, key), token) for key in keys)


def thread_references(refs: Sequence[str]) -> tuple[str, ...]:
    """The References to write: the thread root and the most recent ids, oldest first."""
    refs = tuple(refs)
    if len(refs) <= MAX_REFERENCES:
        return refs
    return (refs[0],) + refs[-(MAX_REFERENCES - 1):]


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x80-\x9f\u2028\u2029]+")


def header_text(value: str) -> str:
    """`value` fit for a header we write: no control characters (NUL, escape sequences, CR
    and LF that would start a new header...; tab stays), white space folded."""
    return " ".join(_CONTROL.sub(" ", value or "").split(" ")).strip()


def _set_routing(message: Message, envelope: Envelope, key: str) -> None:
    message["From"] = formataddr((header_text(envelope.from_name), envelope.from_address))
    message["To"] = formataddr((header_text(envelope.to_name), envelope.to_address))
    message["Subject"] = header_text(envelope.subject)
    message["Date"] = format_datetime(envelope.date)
    message["Message-ID"] = envelope.message_id
    if envelope.in_reply_to:
        message["In-Reply-To"] = envelope.in_reply_to
    if envelope.references:
        message["References"] = " ".join(envelope.references)
    if envelope.auto_submitted:
        message["Auto-Submitted"] = envelope.auto_submitted
    message["X-Auto-Response-Suppress"] = "All"  # ask Exchange not to send OOF/receipts to us
    message[LOOP_HEADER] = f"{envelope.message_id} {loop_token(envelope.message_id, key)}"


def compose_notice(rendered: Rendered, envelope: Envelope, *, key: str, extra_headers: dict[str, str] | None = None) -> bytes:
    """A notice: text and HTML alternatives, with routing headers."""
    message = EmailMessage(policy=SMTP)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    for name, value in (extra_headers or {}).items():
        message[name] = value
    body = email.message_from_bytes(message.as_bytes(), policy=compat32)
    _set_routing(body, envelope, key)
    return to_bytes(body, _WIRE)


def compose_relay(
    raw: bytes,
    envelope: Envelope,
    *,
    key: str,
    transform: Callable[[Message], None] | None = None,
    limits: Limits = Limits(),
) -> bytes:
    """A relayed human message: the original body, every header replaced.

    `transform` may change the parsed body in place (remove command lines, sanitise
    HTML, drop attachments) before it is written out. What is over `limits` is not
    relayed (gateway.mail.limits). A message too broken for the email package to write
    back out is relayed as its plain text (the original stays on the case).
    """
    raw = bound(raw, limits).raw
    try:
        return _compose_relay(raw, envelope, key=key, transform=transform)
    except Exception:  # malformed MIME that parses but cannot be serialised again
        return _compose_text_fallback(raw, envelope, key=key, transform=transform, limits=limits)


MALFORMED_NOTE = ("[The original message was malformed; its text is shown here and the original is kept "
                  "on the case. / Le message d'origine était mal formé ; son texte figure ici et "
                  "l'original est conservé dans le dossier.]")


def _compose_text_fallback(raw: bytes, envelope: Envelope, *, key: str,
                           transform: Callable[[Message], None] | None = None, limits: Limits = Limits()) -> bytes:
    """The text of a broken message, put through the same transform as the full relay would
    be (so a staff reply still sends only its new text, addresses still scrubbed)."""
    message = EmailMessage(policy=SMTP)
    message.set_content(f"{parse(raw, limits).text}\n")
    body = email.message_from_bytes(message.as_bytes(), policy=compat32)
    if transform is not None:
        transform(body)
    text = body.get_payload(decode=True).decode("utf-8", "replace")
    body = email.message_from_bytes(_text_message(f"{text}\n\n{MALFORMED_NOTE}\n"), policy=compat32)
    _set_routing(body, envelope, key)
    return to_bytes(body, _WIRE)


_BARE_LINE_END = re.compile(rb"\r\n|\r|\n")


def wire_bytes(message: Message) -> bytes:
    """`message` as SMTP wants it: every line ended by CRLF. The email package leaves a bare
    LF in what it copies through from a malformed original (a multipart nested inside one with
    the same boundary, say), and a bare LF is refused by strict receivers."""
    data = to_bytes(message, _WIRE)
    crlf = data.count(b"\r\n")  # counted, not copied without them: a 25 MB relay is not copied twice more
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        data = _BARE_LINE_END.sub(b"\r\n", data)
    return data


def readdress(raw: bytes, to_name: str, to_address: str) -> bytes:
    """A composed message with another To header (the same relay to a second staff address)."""
    message = from_bytes(raw)
    message.replace_header("To", formataddr((header_text(to_name), to_address)))
    return wire_bytes(message)


def _text_message(text: str) -> bytes:
    message = EmailMessage(policy=SMTP)
    message.set_content(text)
    return message.as_bytes()


def _compose_relay(raw: bytes, envelope: Envelope, *, key: str,
                   transform: Callable[[Message], None] | None) -> bytes:
    message = from_bytes(raw)
    for name in list(dict.fromkeys(message.keys())):
        if name.lower() not in _CONTENT_HEADERS:
            del message[name]
    if "MIME-Version" not in message:
        message["MIME-Version"] = "1.0"
    _ascii_content_headers(message)
    if transform is not None:
        transform(message)
    _enforce_line_limit(message)
    _set_routing(message, envelope, key)
    return wire_bytes(message)


def _ascii_content_headers(message: Message) -> None:
    """Rewrite content headers that carry raw 8-bit bytes (a file name typed in UTF-8 by a
    sloppy client) as RFC 2231 parameters, so the relay is valid 7-bit header text."""
    for part in message.walk():
        for name in list(dict.fromkeys(part.keys())):
            if name.lower() not in _CONTENT_HEADERS:
                continue
            raw_value = part.get(name)
            text = decode(raw_value)
            if isinstance(raw_value, str) and raw_value.isascii():
                continue
            if name.lower() in ("content-type", "content-disposition"):
                holder = Message()
                holder["X"] = text
                params = holder.get_params(header="X") or []
                main = params[0][0] if params else "application/octet-stream"
                pieces = [main if main.isascii() else "application/octet-stream"]
                for key, value in params[1:]:
                    value = collapse_rfc2231_value(value)
                    if value.isascii():
                        pieces.append(f'{key}="{value}"')
                    else:
                        pieces.append(f"{key}*={encode_rfc2231(value, 'utf-8')}")
                new_value = "; ".join(pieces)
            else:
                new_value = text.encode("ascii", "ignore").decode().strip() or "7bit"
            part.replace_header(name, new_value)


def _enforce_line_limit(message: Message) -> None:
    """Re-encode body parts whose lines exceed SMTP's 998 octets (some webmails send
    whole HTML documents on one line): text as quoted-printable, anything else as base64."""
    for part in message.walk():
        if part.is_multipart():
            continue
        encoding = str(part.get("Content-Transfer-Encoding") or "7bit").strip().lower()
        if encoding in ("base64", "quoted-printable"):
            continue
        payload = part.get_payload()
        if not isinstance(payload, str) or not any(len(line) > MAX_LINE for line in payload.splitlines()):
            continue
        data = part.get_payload(decode=True) or b""
        del part["Content-Transfer-Encoding"]
        if part.get_content_maintype() == "text":
            charset = part.get_content_charset() or "utf-8"
            try:
                text = data.decode(charset)
            except (LookupError, UnicodeDecodeError):
                text, charset = data.decode("utf-8", "replace"), "utf-8"
            cs = Charset(charset)
            cs.body_encoding = QP
            part.set_payload(text, cs)
        else:
            part.set_payload(data)
            encode_base64(part)
