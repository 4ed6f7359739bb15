"""Outlook's winmail.dat (TNEF, application/ms-tnef) unpacked into ordinary MIME parts. Pure.

A TNEF container carries the sender's and recipients' addresses and display names in its
MAPI properties, the message's formatted body and its attachments, none of which a
relay could check inside it. So it never crosses: its files become ordinary attachments
(which then go through the attachment policy and address scrubbing like any other), its
plain or HTML body becomes a body part when the message has no other, and the container
itself is dropped. A container tnefparse cannot read is dropped with a note.
"""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass
from email.charset import QP, Charset
from email.encoders import encode_base64
from email.message import Message

from gateway.mail.parts import decoded_bytes, set_filename

log = logging.getLogger(__name__)
MAX_FILES = 100  # a real winmail.dat has a handful
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


@dataclass(frozen=True)
class Unpacked:
    """The parts that replace a container, and how many files it held."""

    parts: list[Message]
    files: int


def unpack(part: Message, *, want_body: bool) -> Unpacked | None:
    """The container's files (and its body, if `want_body`) as MIME parts; None when it
    cannot be read."""
    from tnefparse import TNEF

    try:
        container = TNEF(decoded_bytes(part), do_checksum=False)
    except Exception as error:  # truncated or forged containers: tnefparse raises anything
        log.info("unreadable TNEF container: %s", type(error).__name__)
        return None
    if not container.objects:  # a signature and nothing after it: nothing could be read
        return None
    parts: list[Message] = []
    if want_body:
        body = _body(container)
        if body is not None:
            parts.append(body)
    files = 0
    for attachment in container.attachments[:MAX_FILES]:
        data = attachment.data if isinstance(attachment.data, bytes) else b""
        if not data or getattr(attachment, "embed", None) is not None:
            continue  # an attached Outlook item is another container: not unpacked
        parts.append(_file(_name(attachment) or f"attachment-{files + 1}", data))
        files += 1
    return Unpacked(parts, files)


def _name(attachment) -> str:
    """The long file name, else the 8.3 one; tnefparse reads names as UTF-8, Outlook
    writes them in the sender's code page (cp1252 in the West)."""
    try:
        name = attachment.long_filename()
    except Exception:
        name = getattr(attachment, "_name", b"")
    if isinstance(name, bytes):
        try:
            name = name.decode("utf-8")
        except UnicodeDecodeError:
            name = name.decode("cp1252", "replace")
    return str(name or "").strip("\x00").strip()


def _body(container) -> Message | None:
    for value, subtype in ((container.htmlbody, "html"), (container.body, "plain")):
        if not value:
            continue
        text = value.decode("cp1252", "replace") if isinstance(value, bytes) else str(value)
        text = text.strip("\x00")
        if not text.strip():
            continue
        body = Message()
        body["Content-Type"] = f"text/{subtype}"
        body.set_payload(text, _UTF8_QP)
        del body["MIME-Version"]
        return body
    return None


def _file(name: str, data: bytes) -> Message:
    guessed = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    part = Message()
    part["Content-Type"] = guessed
    part["Content-Disposition"] = "attachment"
    part.set_param("name", "x")
    set_filename(part, name)
    part.set_payload(data)
    encode_base64(part)
    return part
