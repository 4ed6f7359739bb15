"""The relay transform that makes a party's message safe to pass on. Pure.

In order, on the message compose_relay parsed once:

1. `parts.normalise`: every part readable one way only (one canonical Content-Type,
   transfer encoding and disposition; inner parts keep only content headers; neutral
   Content-IDs; no preambles; attached .eml files read as messages).
2. winmail.dat containers unpacked into ordinary parts (`tnef`), or dropped.
3. The caller's own transform (`also`: command lines removed, a staff reply's body
   replaced), so it sees canonical types.
4. The attachment policy (executables, disguised names, count and size limits).
5. Every part made safe by what it is, not by its label (`parts.kind_of`): HTML however
   labelled is sanitised and then has its addresses hidden (so `&#64;` and tags inside an
   address are seen as a reader sees them); calendars and cards keep working with the
   recipient's case address in their address fields; text parts and text attachments
   are scrubbed; forwarded messages keep only their reader headers, scrubbed; SVG, AMP,
   web archives, Outlook items and uncheckable messages are removed. File names, MIME
   parameters and descriptions of every part are scrubbed too.
6. When something was removed, a notice in the recipient's locale naming each file and
   why ends the last text/plain and the last text/html part of the body, so both
   alternatives of a multipart/alternative say the same.
"""

from __future__ import annotations

import html as htmllib
import secrets
from dataclasses import dataclass, field
from email.encoders import encode_base64
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Callable, Iterator

from gateway.mail import forwarded, parts, tnef
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
    filename_of,
    is_attachment,
    remove_parts,
    replace_part,
)
from gateway.mail.directory import scrub_calendar, scrub_vcard
from gateway.mail.headers import decode
from gateway.mail.limits import Limits
from gateway.mail.rewrite import set_text
from gateway.mail.sanitize import sanitize_html
from gateway.mail.scrub import AddressScrubber

# Reasons for what this transform removes or converts (attachments.REASONS are the policy's).
SVG_IMAGE = "SVG image, which can run scripts"
AMP_VERSION = "interactive AMP version (the HTML version is kept)"
WEB_ARCHIVE = "web page archive that cannot be checked"
OUTLOOK_ITEM = "Outlook item that cannot be checked"
UNCHECKABLE_MESSAGE = "partial or external message that cannot be checked"
TNEF_UNPACKED = "Outlook winmail.dat: its files are attached separately"
TNEF_UNREADABLE = "Outlook winmail.dat that cannot be read"
_DROPPED = {parts.SVG: SVG_IMAGE, parts.AMP: AMP_VERSION, parts.WEB_ARCHIVE: WEB_ARCHIVE,
            parts.OUTLOOK_ITEM: OUTLOOK_ITEM, parts.UNCHECKABLE: UNCHECKABLE_MESSAGE}
_URL_ATTRIBUTES = frozenset({"src", "background", "srcset", "style"})
ATTACHMENT_HTML_PREFIX = '<meta charset="utf-8">\n'  # a saved file is opened without the part's charset

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
        SVG_IMAGE: "image SVG, qui peut exécuter des scripts",
        AMP_VERSION: "version AMP interactive (la version HTML est conservée)",
        WEB_ARCHIVE: "archive de page web impossible à vérifier",
        OUTLOOK_ITEM: "élément Outlook impossible à vérifier",
        UNCHECKABLE_MESSAGE: "message partiel ou externe impossible à vérifier",
        TNEF_UNPACKED: "winmail.dat d'Outlook : ses fichiers sont joints séparément",
        TNEF_UNREADABLE: "winmail.dat d'Outlook illisible",
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
    scrubber: AddressScrubber | None = None,
    limits: Limits = Limits(),
) -> tuple[Callable[[Message], None], Report]:
    """A `compose_relay` transform, and the report it fills when it runs. `scrubber` hides
    the case's addresses from the recipient (none hidden without it)."""
    report = Report()
    hider = scrubber or AddressScrubber(())

    def transform(message: Message) -> None:
        report.removed_attachments, report.blocked_images, report.html_removed = [], 0, []
        parts.normalise(message, limits=limits)
        removed = _unpack_containers(message)
        if also is not None:
            also(message)
        removed += apply_policy(message, policy, empty_body="")
        removed += _make_safe(message, hider, block_remote_images, report)
        report.removed_attachments = removed
        if removed:
            _add_notice(message, hider.text(notice(removed, locale)))

    return transform, report


def _unpack_containers(message: Message) -> list[Removed]:
    """winmail.dat containers replaced by their files (and body, when the message has no other)."""
    removed: list[Removed] = []
    for parent, node, role in list(parts.walk(message)):
        if role == "status" or parts.kind_of(node, role) != parts.TNEF:
            continue
        size = len(parts.decoded_bytes(node))
        unpacked = tnef.unpack(node, want_body=not any(True for _ in _body_parts(message)))
        item = Removed(filename_of(node) or "winmail.dat", node.get_content_type(), size,
                       TNEF_UNREADABLE if unpacked is None else TNEF_UNPACKED)
        removed.append(item)
        if unpacked is None or not unpacked.parts:
            remove_parts(message, [(parent, node)], empty_body="")
        elif parent is None:
            for name in ("Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Content-Description"):
                del message[name]
            message["Content-Type"] = "multipart/mixed"
            message.set_payload(unpacked.parts)
        else:
            replace_part(parent, node, unpacked.parts)
    return removed


def _make_safe(message: Message, scrubber: AddressScrubber, block: bool, report: Report) -> list[Removed]:
    removed: list[Removed] = []
    dropped: list[tuple[Message | None, Message]] = []
    for parent, node, role in list(parts.walk(message)):
        if role == "status":
            forwarded.scrub_status(node, scrubber)
            continue
        if role == "message":
            forwarded.scrub_headers(node, scrubber)
        kind = parts.kind_of(node, role)
        if kind in _DROPPED:
            removed.append(Removed(scrubber.filename(filename_of(node)), node.get_content_type(),
                                   len(parts.decoded_bytes(node)), _DROPPED[kind]))
            dropped.append((parent, node))
            continue
        _scrub_parameters(node, scrubber)
        if kind == parts.HTML:
            _sanitize_part(node, block, report, scrubber)
        elif kind == parts.CALENDAR:
            _rewrite_text(node, lambda text: scrub_calendar(text, scrubber, _html_fragment(block, scrubber)))
        elif kind == parts.VCARD:
            _rewrite_text(node, lambda text: scrub_vcard(text, scrubber, _html_fragment(block, scrubber)))
        elif kind == parts.TEXT:
            _rewrite_text(node, scrubber.text)
    remove_parts(message, dropped, empty_body="")
    return removed


def _html_fragment(block: bool, scrubber: AddressScrubber) -> Callable[[str], str]:
    """HTML inside another format (a calendar's X-ALT-DESC): sanitised, addresses hidden."""
    return lambda html: sanitize_html(html, block_remote_images=block,
                                      rewrite_attribute=_attribute_rewrite(scrubber)).html


def _attribute_rewrite(scrubber: AddressScrubber):
    def rewrite(element: str, attribute: str, value: str) -> str | None:
        if attribute in _URL_ATTRIBUTES:
            value = parts.neutral_cid_urls(value)
        return scrubber.attribute(element, attribute, value)

    return rewrite


def _scrub_parameters(node: Message, scrubber: AddressScrubber) -> None:
    """File names, other MIME parameters and the description of one part, scrubbed."""
    for header in ("content-type", "content-disposition"):
        if header not in node:
            continue
        for key, value in (node.get_params(header=header) or [])[1:]:
            text = parts.decode_words(collapse_rfc2231_value(value))
            if not scrubber.contains(text):
                continue
            if key.lower() == "boundary":
                node.set_boundary(f"=_gw{secrets.token_hex(12)}")
            elif key.lower() in ("filename", "name"):
                parts.set_filename(node, scrubber.filename(text))
            else:
                clean = scrubber.filename(text)
                node.set_param(key, clean if clean.isascii() else ("utf-8", "", clean), header=header.title())
    description = node.get("Content-Description")
    if description is not None:
        text = decode(description)
        if scrubber.contains(text):
            node.replace_header("Content-Description", forwarded.header_text(scrubber.text(text)))


def _rewrite_text(node: Message, rewrite: Callable[[str], str]) -> None:
    """A text part or text attachment put through `rewrite`, written back only if it changed:
    a body part as UTF-8 quoted-printable, a file in its own charset, base64."""
    text = parts.decoded_text(node)
    if text is None:
        return
    new = rewrite(text)
    if new == text:
        return
    if is_attachment(node):
        _set_file_text(node, new)
    else:
        _set_text(node, new)


def _set_file_text(node: Message, text: str) -> None:
    charset = node.get_content_charset() or "utf-8"
    try:
        data = text.encode(charset)
    except (LookupError, UnicodeEncodeError):
        charset, data = "utf-8", text.encode("utf-8")
    if node.get_content_maintype() == "text" and charset != (node.get_content_charset() or "utf-8"):
        node.set_param("charset", charset)
    del node["Content-Transfer-Encoding"]
    node.set_payload(data)
    encode_base64(node)

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


def _sanitize_part(part: Message, block_remote_images: bool, report: Report, scrubber: AddressScrubber) -> None:
    """Any part a client could render as HTML: sanitised, then its addresses hidden; an
    XHTML part becomes text/html (the sanitised form is HTML, not XML)."""
    original = parts.decoded_text(part)
    if original is None:
        return
    result = sanitize_html(original, block_remote_images=block_remote_images,
                           rewrite_attribute=_attribute_rewrite(scrubber))
    report.blocked_images += result.blocked_images
    report.html_removed.extend(item for item in result.removed if item not in report.html_removed)
    html = scrubber.html(result.html)
    attachment = is_attachment(part)
    if attachment:
        html = ATTACHMENT_HTML_PREFIX + html
    if html == original:
        return
    if part.get_content_type() in ("application/xhtml+xml", "text/xhtml", "application/xhtml"):
        _retype(part, "text/html")
    if part.get_content_maintype() == "text":
        _set_text(part, html)
    else:  # HTML under a generic type: the file keeps its label, its content is safe
        _set_file_text(part, html)


def _retype(part: Message, content_type: str) -> None:
    params = (part.get_params() or [])[1:]
    del part["Content-Type"]
    part["Content-Type"] = content_type
    for key, value in params:
        if key.lower() != "charset":
            part.set_param(key, value)


def _add_notice(message: Message, line: str) -> None:
    """End the last body part of each text type with the notice; with no text body left,
    the notice becomes the first part."""
    last: dict[str, Message] = {}
    for part in _body_parts(message):
        last[part.get_content_type()] = part
    for kind, part in last.items():
        text = parts.decoded_text(part) or ""
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
