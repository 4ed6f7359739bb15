"""Bytes to ParsedMessage: headers, addresses, text, attachments. Pure.

Parsing uses the compat32 policy (about 10x cheaper than policy.default)
and decodes RFC 2047 words itself. Malformed input never raises: what cannot be read
is left empty and noted in `defects`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.header import Header
from email.message import Message
from email.utils import getaddresses

from gateway.mail.headers import FOLD_RE as _FOLD_RE
from gateway.mail.headers import decode
from gateway.mail.headers import unescape_8bit as _unescape_8bit
from gateway.mail.limits import Limits, bound
from gateway.mail.parts import content_type as content_type_of
from gateway.mail.parts import strip_comments
from gateway.mail.text import html_to_text, new_text
from gateway.mail.wire import from_bytes

_MSGID_RE = re.compile(r"<[^<>\s]+>")
MAX_TEXT_CHARS = 200_000


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    from_address: str  # lower case; '' when missing, or when From names several addresses
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: str | None
    content_type: str
    text: str  # plain body (or text of the HTML body)
    html: str | None
    new_text: str  # `text` without quoted history
    attachments: tuple[Attachment, ...]
    headers: dict[str, tuple[str, ...]] = field(repr=False)  # lower-case name -> decoded values
    defects: tuple[str, ...] = ()
    limited: tuple[str, ...] = ()  # what `limits.bound` dropped before parsing, in words

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def has_header(self, name: str) -> bool:
        return name.lower() in self.headers


def _addresses(values) -> list[tuple[str, str]]:
    """(display name, address) pairs from raw address headers.

    The address is read from the header as written: an RFC 2047 encoded word can only
    ever be a display name, so decoding before parsing would let
    `=?utf-8?q?carol=40customer.test?= <x@evil.test>` pass for carol@customer.test.
    Only the display names are decoded.
    """
    raw = [decode(v) if isinstance(v, Header) else _FOLD_RE.sub(" ", _unescape_8bit(str(v))) for v in values]
    pairs = [(decode(name), address) for name, address in getaddresses(raw)]
    return [(name, address) for name, address in pairs if address]


def message_ids(value: str | None) -> tuple[str, ...]:
    return tuple(_MSGID_RE.findall(value or ""))


def _payload_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = payload.decode(charset, errors="replace")
    except LookupError:  # unknown charset name
        text = payload.decode("utf-8", errors="replace")
    return text.replace("\x00", "")


def _leaves(part: Message):
    """Body leaves in order; an attached message is one leaf (never read as our body)."""
    if content_type_of(part) == "message/rfc822" or not part.is_multipart():
        yield part
        return
    payload = part.get_payload()
    if isinstance(payload, list):
        for sub in payload:
            yield from _leaves(sub)


def _walk_body(message: Message) -> tuple[str | None, str | None, list[Attachment]]:
    plain: str | None = None
    html: str | None = None
    attachments: list[Attachment] = []
    for part in _leaves(message):
        # read as the relay reads it (gateway.mail.parts): "text/html (comment)" is HTML, and
        # a text part not marked as an attachment is body even if it carries a file name
        content_type = content_type_of(part)
        disposition = strip_comments(str(part.get("Content-Disposition") or "")).split(";")[0].strip().lower()
        filename = part.get_filename()
        is_body = content_type in ("text/plain", "text/html") and disposition != "attachment"
        if not is_body:
            if part.is_multipart() or content_type == "message/rfc822":
                size = len(part.as_bytes()) if content_type == "message/rfc822" else 0
            else:
                payload = part.get_payload(decode=True)
                size = len(payload) if isinstance(payload, bytes) else 0
            attachments.append(Attachment(decode(filename) or ("message.eml" if content_type == "message/rfc822"
                                                                else "unnamed"), content_type, size))
            continue
        if content_type == "text/plain" and plain is None:
            plain = _payload_text(part)
        elif content_type == "text/html" and html is None:
            html = _payload_text(part)
    return plain, html, attachments


def parse(raw: bytes, limits: Limits = Limits()) -> ParsedMessage:
    """Parse raw RFC 5322 bytes, bounded by `limits` first (see gateway.mail.limits)."""
    bounded = bound(raw, limits)
    message = from_bytes(bounded.raw)
    headers: dict[str, list[str]] = {}
    for name, value in message.items():
        headers.setdefault(name.lower(), []).append(decode(value))
    defects = [type(d).__name__ for d in message.defects]
    try:
        plain, html, attachments = _walk_body(message)
    except Exception as error:  # broken MIME structure: keep what headers say
        plain, html, attachments = None, None, []
        defects.append(f"body: {type(error).__name__}")
    text = plain if plain is not None else (html_to_text(html) if html else "")
    text = text[:MAX_TEXT_CHARS]
    senders = [(n, a) for n, a in _addresses(message.get_all("From") or []) if "@" in a]
    distinct = {a.strip().lower() for _, a in senders}  # "carol@x <carol@x>" names one sender
    from_name, from_address = senders[0] if senders else ("", "")
    return ParsedMessage(
        message_id=(message_ids(decode(message.get("Message-ID"))) or (None,))[0],
        in_reply_to=message_ids(decode(message.get("In-Reply-To"))),
        references=message_ids(decode(message.get("References"))),
        subject=" ".join(decode(message.get("Subject")).split()),
        from_address=from_address.strip().lower() if len(distinct) == 1 else "",
        from_name=from_name,
        to=tuple(a.lower() for _, a in _addresses(message.get_all("To") or []) if "@" in a),
        cc=tuple(a.lower() for _, a in _addresses(message.get_all("Cc") or []) if "@" in a),
        date=decode(message.get("Date")) or None,
        content_type=message.get_content_type(),
        text=text,
        html=html,
        new_text=new_text(text),
        attachments=tuple(attachments),
        headers={k: tuple(v) for k, v in headers.items()},
        defects=tuple(defects),
        limited=bounded.notes,
    )
