"""In-place changes to a relayed message's body parts. Pure functions of a compat32 Message."""

from __future__ import annotations

import html as htmllib
import re
from email.charset import QP, Charset
from email.message import Message
from typing import Callable, Sequence

_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def _text_of(part: Message) -> str | None:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    try:
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def set_text(part: Message, text: str) -> None:
    """Replace a text part's content, re-encoded as UTF-8 quoted-printable."""
    had_version = "MIME-Version" in part
    del part["Content-Transfer-Encoding"]
    part.set_payload(text, _UTF8_QP)
    if not had_version:  # set_payload adds one; an inner part must not carry it
        del part["MIME-Version"]


def remove_lines(lines: Sequence[str]) -> Callable[[Message], None]:
    """A transform that deletes the first occurrence of each line (e.g. command lines)."""
    wanted = [line.strip() for line in lines if line.strip()]

    def transform(message: Message) -> None:
        for part in message.walk():
            if part.is_multipart() or part.get_filename():
                continue
            kind = part.get_content_type()
            if kind not in ("text/plain", "text/html"):
                continue
            text = _text_of(part)
            if text is None:
                continue
            for line in wanted:
                needle = line if kind == "text/plain" else htmllib.escape(line, quote=False)
                position = text.find(needle)
                if position >= 0:
                    end = position + len(needle)
                    if kind == "text/plain" and text[end:end + 2] == "\r\n":
                        end += 2
                    elif kind == "text/plain" and text[end:end + 1] == "\n":
                        end += 1
                    text = text[:position] + text[end:]
            set_text(part, text)

    return transform


def replace_body(text: str) -> Callable[[Message], None]:
    """A transform that makes `text` the whole written content (attachments stay).

    Staff replies are relayed this way: their quoted history is a staff-only notice
    (diagnostics, transcripts, held mail) that must never reach a party.
    """
    html = "<p>" + htmllib.escape(text).replace("\n", "<br>\n") + "</p>"

    def transform(message: Message) -> None:
        seen: set[str] = set()
        for part in _own_parts(message):
            kind = part.get_content_type()
            if part.is_multipart() or part.get_filename() or kind not in ("text/plain", "text/html"):
                continue
            if str(part.get("Content-Disposition") or "").lower().startswith("attachment"):
                continue
            set_text(part, "" if kind in seen else (text if kind == "text/plain" else html))
            seen.add(kind)

    return transform


def _own_parts(message: Message):
    """The message's parts, not descending into attached messages (a forwarded e-mail stays whole)."""
    yield message
    if message.get_content_type() == "message/rfc822":
        return
    payload = message.get_payload()
    if message.is_multipart() and isinstance(payload, list):
        for part in payload:
            yield from _own_parts(part)


def scrub_addresses(addresses: Sequence[str], replacement: str = "[address hidden]") -> Callable[[Message], None]:
    """A transform that replaces the parties' real addresses in the written text and HTML.

    Headers never carry them (compose rewrites every header); this catches the copies a
    mail client quotes in the body ("From: shop@example.org", "On ..., carol@... wrote:").
    """
    patterns = [re.compile(re.escape(a), re.IGNORECASE) for a in dict.fromkeys(a.lower() for a in addresses if a)]

    def transform(message: Message) -> None:
        if not patterns:
            return
        for part in _own_parts(message):
            if part.is_multipart() or part.get_content_type() not in ("text/plain", "text/html"):
                continue
            if part.get_filename():
                continue
            text = _text_of(part)
            if text is None:
                continue
            cleaned = text
            for pattern in patterns:
                cleaned = pattern.sub(replacement, cleaned)
            if cleaned != text:
                set_text(part, cleaned)

    return transform


def chain(*transforms: Callable[[Message], None] | None) -> Callable[[Message], None]:
    """Several transforms run in order, as one."""
    steps = [t for t in transforms if t is not None]

    def transform(message: Message) -> None:
        for step in steps:
            step(message)

    return transform
