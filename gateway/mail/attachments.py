"""Which attachments a relay may carry, and removing the others from a compat32 tree. Pure.

An attachment is a leaf part with a file name, or `Content-Disposition: attachment`, or
a non-text type (so inline `cid:` images count). Text leaves without a name are the body.
A part is removed when its name, declared type or first bytes say it runs code, or when
keeping it would pass the count or size limit (attachments are kept in order until one
would pass a limit; it and every later one are removed).

Not checked here: macro-enabled Office files (docm, xlsm...) and archives inside archives
(add their extensions to `blocked_extensions` to refuse them). HTML and SVG attachments,
calendars, cards, TNEF and forwarded messages are the relay transform's (`hygiene`).
"""

from __future__ import annotations

import io
import unicodedata
import zipfile
from dataclasses import dataclass
from email.charset import QP, Charset
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Iterator

from gateway.mail.parts import decode_words

# Reasons, the vocabulary `hygiene` translates for the notice.
EXECUTABLE = "executable file type"
DISGUISED = "disguised file name"
EXECUTABLE_TYPE = "executable content type"
EXECUTABLE_CONTENT = "executable content"
ARCHIVED_EXECUTABLE = "archive contains an executable"
TOO_MANY = "too many attachments"
TOO_LARGE = "attachments too large"
REASONS = (EXECUTABLE, DISGUISED, EXECUTABLE_TYPE, EXECUTABLE_CONTENT, ARCHIVED_EXECUTABLE, TOO_MANY, TOO_LARGE)

# What a mail administrator expects refused: Gmail's blocked list plus Outlook's level-1
# list, trimmed of the obscure, grouped by what opening the file does.
BLOCKED_EXTENSIONS = frozenset({
    # Windows programs, installers and libraries
    "exe", "com", "scr", "pif", "cpl", "dll", "sys", "drv", "ocx", "msi", "msp", "mst", "msix",
    "msixbundle", "appx", "appxbundle", "application", "gadget", "xll",
    # Windows scripts and script hosts
    "bat", "cmd", "vb", "vbs", "vbe", "js", "jse", "wsf", "wsh", "wsc", "ws", "sct", "hta", "ps1",
    "ps1xml", "ps2", "psc1", "psm1", "psd1", "msc", "msh", "chm", "hlp", "inf", "ins", "isp", "scf",
    # shortcuts and registry files that point elsewhere or change the system
    "lnk", "url", "shb", "shs", "reg",
    # disk images, which Windows and macOS mount with one click (and which skip Mark-of-the-Web)
    "iso", "img", "vhd", "vhdx", "dmg",
    # Java, Android, macOS and Unix programs and scripts
    "jar", "jnlp", "class", "apk", "app", "pkg", "command", "sh", "bash", "csh", "ksh", "run", "bin",
    "py", "pyc", "pyw", "pyz", "pl",
})
BLOCKED_CONTENT_TYPES = frozenset({
    "application/x-msdownload", "application/x-msdos-program", "application/x-dosexec",
    "application/x-ms-dos-executable", "application/vnd.microsoft.portable-executable",
    "application/x-executable", "application/x-sharedlib", "application/x-mach-binary",
    "application/x-msi", "application/x-ms-installer", "application/x-ms-shortcut",
    "application/x-ms-application", "application/hta", "application/x-bat", "application/x-sh",
    "application/x-shellscript", "application/x-csh", "text/x-shellscript", "application/javascript",
    "application/x-javascript", "text/javascript", "text/vbscript", "application/x-vbscript",
    "application/x-powershell", "application/java-archive", "application/x-java-archive",
    "application/x-java-jnlp-file", "application/vnd.android.package-archive",
    "application/x-apple-diskimage", "application/x-iso9660-image", "application/x-python-code",
})
# Extensions an attacker puts before the real one: "invoice.pdf.exe".
_DECOY_EXTENSIONS = frozenset({
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "rtf", "txt", "csv", "jpg", "jpeg",
    "png", "gif", "bmp", "tif", "tiff", "heic", "mp3", "mp4", "mov", "avi", "wav", "zip", "rar", "7z",
    "htm", "html", "xml", "eml", "msg",
})
_MACHO = (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xfe\xed\xfa\xce", b"\xca\xfe\xba\xbe")
MAX_ARCHIVE_NAMES = 10_000
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


@dataclass(frozen=True)
class AttachmentPolicy:
    """What a relay may carry. Defaults suit a dispute: receipts, photos, PDFs."""

    max_count: int = 20
    max_total_bytes: int = 20 * 1024 * 1024
    blocked_extensions: frozenset[str] = BLOCKED_EXTENSIONS
    blocked_content_types: frozenset[str] = BLOCKED_CONTENT_TYPES

    def __post_init__(self) -> None:  # accept ".EXE" or "exe" from a config file
        object.__setattr__(self, "blocked_extensions",
                           frozenset(ext.strip().lstrip(".").lower() for ext in self.blocked_extensions))
        object.__setattr__(self, "blocked_content_types",
                           frozenset(kind.strip().lower() for kind in self.blocked_content_types))


@dataclass(frozen=True)
class Removed:
    """One removed attachment: its (decoded, printable) name, declared type, decoded size, why."""

    filename: str
    content_type: str
    size: int
    reason: str


def is_attachment(part: Message) -> bool:
    """A leaf with a file name, `Content-Disposition: attachment`, or a non-text type."""
    if part.is_multipart() or part.get_content_maintype() == "multipart":  # a multipart without boundary is text
        return False
    if part.get_filename() or part.get_content_disposition() == "attachment":
        return True
    return part.get_content_maintype() != "text"


def filename_of(part: Message) -> str:
    """The file name a reader sees: RFC 2047 words decoded, control and bidi characters removed."""
    return _printable(decode_words(part.get_filename() or ""))


def apply_policy(message: Message, policy: AttachmentPolicy, *,
                 empty_body: str = "The attachments of this message were removed by the dispute service.\n",
                 ) -> list[Removed]:
    """Remove the attachments `policy` refuses, in place; return what was removed, in order.

    A multipart left empty is removed too; if nothing is left, the message becomes a
    text/plain part reading `empty_body`.
    """
    removed: list[Removed] = []
    count = total = 0
    limit: str | None = None
    for parent, part in list(_attachments(message)):
        data = _payload(part)
        reason = _refusal(part, data, policy)
        if reason is None and limit is None:
            if count + 1 > policy.max_count:
                limit = TOO_MANY
            elif total + len(data) > policy.max_total_bytes:
                limit = TOO_LARGE
        reason = reason or limit
        if reason is None:
            count, total = count + 1, total + len(data)
            continue
        removed.append(Removed(filename_of(part), part.get_content_type(), len(data), reason))
        if parent is None:
            _replace_with_text(message, empty_body)
        else:
            _detach(parent, part)
    if removed:
        _prune(message, empty_body)
    return removed


def remove_parts(message: Message, pairs: list[tuple[Message | None, Message]], *, empty_body: str) -> None:
    """Detach each (parent, part) from its parent (the root: the message becomes a text part
    reading `empty_body`), then remove the containers left empty."""
    if not pairs:
        return
    for parent, part in pairs:
        if parent is None:
            _replace_with_text(message, empty_body)
            return
        _detach(parent, part)
    _prune(message, empty_body)


def replace_part(parent: Message, part: Message, replacements: list[Message]) -> None:
    """Put `replacements` where `part` was among its parent's children."""
    children = parent.get_payload()
    for index, child in enumerate(children):
        if child is part:
            children[index:index + 1] = replacements
            return


def _refusal(part: Message, data: bytes, policy: AttachmentPolicy) -> str | None:
    """Why this attachment may not be relayed, or None. Name, then type, then content."""
    for name in _names(part):
        reason = _name_refusal(name, policy.blocked_extensions)
        if reason:
            return reason
    if part.get_content_type() in policy.blocked_content_types:
        return EXECUTABLE_TYPE
    return _content_refusal(part, data, policy.blocked_extensions)


def _names(part: Message) -> list[str]:
    """Every name the part gives itself: clients differ on which of the two they show."""
    names = []
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        value = part.get_param(param, header=header)
        if value:
            names.append(decode_words(collapse_rfc2231_value(value)))
    return names


def _name_refusal(name: str, blocked: frozenset[str]) -> str | None:
    visible = _printable(name)
    extensions = _extensions(visible)
    if not extensions or extensions[-1] not in blocked:
        return None
    if visible != name.strip() or (len(extensions) > 1 and extensions[-2] in _DECOY_EXTENSIONS):
        return DISGUISED  # "invoice.pdf.exe", or a right-to-left override: "invoice\u202efdp.exe"
    return EXECUTABLE


def _extensions(name: str) -> list[str]:
    """Lower-case extensions, ignoring what Windows ignores: trailing dots and spaces."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].rstrip(". ").lower()
    return [piece.strip() for piece in base.split(".")[1:]]


def _content_refusal(part: Message, data: bytes, blocked: frozenset[str]) -> str | None:
    head = data[:4]
    if head.startswith(b"\x7fELF") or head in _MACHO or _is_windows_executable(data):
        return EXECUTABLE_CONTENT
    if head.startswith(b"#!") and part.get_content_maintype() != "text":
        return EXECUTABLE_CONTENT  # a script declared as a document or an image
    if head == b"PK\x03\x04":
        return _archive_refusal(data, blocked)
    return None


def _is_windows_executable(data: bytes) -> bool:
    """MZ, then the PE signature where the DOS header points (or the usual DOS stub bytes)."""
    if not data.startswith(b"MZ"):
        return False
    if data[2:4] == b"\x90\x00":
        return True
    if len(data) < 0x40:
        return False
    offset = int.from_bytes(data[0x3C:0x40], "little")
    return data[offset:offset + 4] == b"PE\x00\x00"


def _archive_refusal(data: bytes, blocked: frozenset[str]) -> str | None:
    """A zip that holds a program by name, or is a Java program itself (a renamed .jar)."""
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()[:MAX_ARCHIVE_NAMES]
    except Exception:  # not a readable zip (or an Office file we cannot open): judge it by name only
        return None
    if "META-INF/MANIFEST.MF" in names and any(name.endswith(".class") for name in names):
        return EXECUTABLE_CONTENT
    for name in names:
        extensions = _extensions(_printable(name))
        if extensions and extensions[-1] in blocked:
            return ARCHIVED_EXECUTABLE
    return None


def _attachments(message: Message) -> Iterator[tuple[Message | None, Message]]:
    """(parent, part) for every attachment in document order, parent None for the root.
    Walks with a stack: hostile mail can nest deeper than Python's recursion limit."""
    stack: list[tuple[Message | None, Message]] = [(None, message)]
    while stack:
        parent, node = stack.pop()
        if node.is_multipart():
            stack.extend((node, child) for child in reversed(node.get_payload()))
        elif is_attachment(node):
            yield parent, node


def _payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _detach(parent: Message, part: Message) -> None:
    children = parent.get_payload()
    for index, child in enumerate(children):
        if child is part:
            del children[index]
            return


def _prune(message: Message, empty_body: str) -> None:
    """Remove multiparts (and message/rfc822 parts) left without children, innermost first."""
    while True:
        empty = next(((parent, node) for parent, node in _containers(message) if not node.get_payload()), None)
        if empty is None:
            return
        parent, node = empty
        if parent is None:
            _replace_with_text(message, empty_body)
            return
        _detach(parent, node)


def _containers(message: Message) -> Iterator[tuple[Message | None, Message]]:
    stack: list[tuple[Message | None, Message]] = [(None, message)]
    while stack:
        parent, node = stack.pop()
        if node.is_multipart():
            yield parent, node
            stack.extend((node, child) for child in node.get_payload())


def _replace_with_text(message: Message, text: str) -> None:
    for name in ("Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Content-ID",
                 "Content-Description"):
        del message[name]
    message.preamble = message.epilogue = None
    message.set_payload(text, _UTF8_QP)


def _printable(name: str) -> str:
    """Without control and format characters (bidi overrides, zero-width spaces)."""
    return "".join(char for char in name if unicodedata.category(char) not in ("Cc", "Cf")).strip()
