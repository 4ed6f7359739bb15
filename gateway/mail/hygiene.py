"""The relay transform that makes a party's message safe to pass on. Pure.

In order: the caller's own transform (`also`, e.g. removing command lines), the attachment
policy, then every text/html part sanitised. When attachments were removed, a notice in
the recipient's locale naming each file and why ends the last text/plain and the last
text/html part of the body, so both alternatives of a multipart/alternative say the same.
"""

from __future__ import annotations

import html as htmllib
from dataclasses import dataclass, field
from email.message import Message
from typing import Callable, Iterator

from gateway.mail.attachments import (
    ARCHIVED_EXECUTABLE,
    DISGUISED,
    EXECUTABLE,
    EXECUTABLE_CONTENT,
    EXECUTABLE_TYPE,
    TOO_LARGE,
    TOO_MANY,
    AttachmentPolicy,
    Removed,
    apply_policy,
    is_attachment,
)
from gateway.mail.rewrite import set_text
from gateway.mail.sanitize import sanitize_html

DEFAULT_LOCALE = "en"
MAX_NAME_IN_NOTICE = 120  # characters of a file name; the rest becomes "…"
# locale -> (notice around the list, separator between files, reason texts)
NOTICES: dict[str, tuple[str, str, dict[str, str]]] = {
    "en": ("[Removed by the dispute service: {files}]", ", ", {}),  # reasons are English already
    "fr": ("[Supprimé par le service de litiges : {files}]", ", ", {
        EXECUTABLE: "type de fichier exécutable",
        DISGUISED: "nom de fichier trompeur",
        EXECUTABLE_TYPE: "type de contenu exécutable",
        EXECUTABLE_CONTENT: "contenu exécutable",
        ARCHIVED_EXECUTABLE: "archive contenant un exécutable",
        TOO_MANY: "trop de pièces jointes",
        TOO_LARGE: "pièces jointes trop volumineuses",
    }),
}


@dataclass
class Report:
    """What the last run of the transform changed. Each run starts it afresh, so running
    the transform once per recipient does not count anything twice."""

    removed_attachments: list[Removed] = field(default_factory=list)
    blocked_images: int = 0
    html_removed: list[str] = field(default_factory=list)


def relay_transform(
    *,
    policy: AttachmentPolicy,
    block_remote_images: bool,
    locale: str,
    also: Callable[[Message], None] | None = None,
) -> tuple[Callable[[Message], None], Report]:
    """A `compose_relay` transform, and the report it fills when it runs."""
    report = Report()

    def transform(message: Message) -> None:
        report.removed_attachments, report.blocked_images, report.html_removed = [], 0, []
        if also is not None:
            also(message)
        report.removed_attachments = apply_policy(message, policy, empty_body="")
        for part in message.walk():
            if part.get_content_type() == "text/html" and not part.is_multipart():
                _sanitize_part(part, block_remote_images, report)
        if report.removed_attachments:
            _add_notice(message, notice(report.removed_attachments, locale))

    return transform, report


def notice(removed: list[Removed], locale: str) -> str:
    """One line naming each removed file and why, in the recipient's language."""
    template, separator, reasons = NOTICES.get(_language(locale), NOTICES[DEFAULT_LOCALE])
    files = separator.join(f"{_shortened(item.filename or item.content_type)} "
                           f"({reasons.get(item.reason, item.reason)})" for item in removed)
    return template.format(files=files)


def _shortened(name: str) -> str:
    return name if len(name) <= MAX_NAME_IN_NOTICE else name[:MAX_NAME_IN_NOTICE - 1] + "…"


def _language(locale: str) -> str:
    return locale.replace("_", "-").split("-", 1)[0].lower()


def _sanitize_part(part: Message, block_remote_images: bool, report: Report) -> None:
    original = _text_of(part)
    if original is None:
        return
    result = sanitize_html(original, block_remote_images=block_remote_images)
    report.blocked_images += result.blocked_images
    report.html_removed.extend(item for item in result.removed if item not in report.html_removed)
    if result.html != original:
        _set_text(part, result.html)


def _add_notice(message: Message, line: str) -> None:
    """End the last body part of each text type with the notice; with no text body left,
    the notice becomes the first part."""
    last: dict[str, Message] = {}
    for part in _body_parts(message):
        last[part.get_content_type()] = part
    for kind, part in last.items():
        text = _text_of(part) or ""
        if kind == "text/plain":
            _set_text(part, f"{text.rstrip()}\n\n{line}\n" if text.strip() else f"{line}\n")
        else:
            _set_text(part, f"{text}\n<p>{htmllib.escape(line)}</p>\n")
    if not last and message.is_multipart():
        part = Message()
        _set_text(part, f"{line}\n")
        message.get_payload().insert(0, part)


def _body_parts(message: Message) -> Iterator[Message]:
    """text/plain and text/html leaves of the body, in order, not inside attached messages."""
    stack = [message]
    while stack:
        node = stack.pop()
        if node.is_multipart():
            if node.get_content_maintype() == "multipart":
                stack.extend(reversed(node.get_payload()))
        elif node.get_content_type() in ("text/plain", "text/html") and not is_attachment(node):
            yield node


def _set_text(part: Message, text: str) -> None:
    """rewrite.set_text without the MIME-Version header that compat32's set_charset adds
    to a body part that lacked one (only the top level should carry it)."""
    if not isinstance(part.get("Content-Type", ""), str):
        # raw 8-bit bytes in the header make compat32 hold a Header, which set_charset
        # cannot edit; keep the type, lose the (undecodable) parameters
        part.replace_header("Content-Type", part.get_content_type())
    had_version = "MIME-Version" in part
    set_text(part, text)
    if not had_version:
        del part["MIME-Version"]


def _text_of(part: Message) -> str | None:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    try:
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", errors="replace")
