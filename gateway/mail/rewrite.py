"""In-place changes to a relayed message's body parts. Pure functions of a compat32 Message."""

from __future__ import annotations

import html as htmllib
from email.charset import QP, Charset
from email.message import Message
from typing import Callable, Sequence

from gateway.mail.forwarded import is_our_mail
from gateway.mail.parts import AMP, HTML, TEXT, decoded_text, kind_of

_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


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
            text = decoded_text(part)
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
    """A transform that makes `text` the whole written content; files stay.

    Staff replies are relayed this way: their quoted history is a staff-only notice
    (diagnostics, transcripts, held mail) that must never reach a party, whatever the
    MIME structure their client gave it. So the body is rebuilt rather than edited:
    every text leaf that is not an attachment (a body part carrying a file name
    included), in any nesting, goes; so does every inline part without a file name
    (the quoted HTML's images) and every attached message the gateway itself sent (a
    forwarded staff notice). What is left (files, messages from others) follows the new
    text in a multipart/mixed.
    """
    html = "<p>" + htmllib.escape(text).replace("\n", "<br>\n") + "</p>"

    def transform(message: Message) -> None:
        files = list(_files(message))
        if not files and not message.is_multipart():
            if message.get_content_type() != "text/plain":
                _retype(message, "text/plain")
            set_text(message, text)
            return
        plain, rich = Message(), Message()
        set_text(plain, text)
        rich["Content-Type"] = "text/html"
        set_text(rich, html)
        for part in (plain, rich):
            del part["MIME-Version"]
        if files:
            alternative = Message()
            alternative["Content-Type"] = "multipart/alternative"
            alternative.set_payload([plain, rich])
            _retype(message, "multipart/mixed")
            message.set_payload([alternative, *files])
        else:
            _retype(message, "multipart/alternative")
            message.set_payload([plain, rich])
        message.preamble = message.epilogue = None

    return transform


def _retype(message: Message, content_type: str) -> None:
    for name in ("Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Content-Description",
                 "Content-ID"):
        del message[name]
    message["Content-Type"] = content_type


def _files(message: Message):
    """The parts of a staff reply that are files: attachments, named inline parts and
    attached messages not sent by the gateway, in order. Walks with a stack."""
    stack = [message]
    while stack:
        node = stack.pop()
        payload = node.get_payload()
        if isinstance(payload, list) and node.get_content_maintype() == "multipart":
            stack.extend(reversed(payload))
            continue
        if isinstance(payload, list):  # an attached message, kept or dropped whole
            if not any(isinstance(inner, Message) and is_our_mail(inner) for inner in payload):
                yield node
            continue
        attached = node.get_content_disposition() == "attachment"
        if kind_of(node) in (TEXT, HTML, AMP) and not attached:
            continue  # written text: the new text replaces it
        if attached or node.get_filename():
            yield node


def chain(*transforms: Callable[[Message], None] | None) -> Callable[[Message], None]:
    """Several transforms run in order, as one."""
    steps = [t for t in transforms if t is not None]

    def transform(message: Message) -> None:
        for step in steps:
            step(message)

    return transform
