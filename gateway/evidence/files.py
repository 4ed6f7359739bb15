"""The attachments of a raw message, with their bytes, and the text inside them. Pure.

An attachment is a leaf part with a file name, `Content-Disposition: attachment`, or a
type other than a text body (so inline images count); an attached message is one file
(`.eml`). The text of plain-text, HTML and PDF attachments and of attached messages is
read for evidence (a merchant forwarding the carrier's "delivered" mail, a PDF invoice).
"""

from __future__ import annotations

import email
import io
import logging
from dataclasses import dataclass
from email.policy import compat32

from gateway.mail.parse import _leaves  # the body leaves as parse walks them: one reading of a MIME tree
from gateway.mail.parse import decode, parse
from gateway.mail.text import html_to_text

MAX_PDF_BYTES = 10 * 1024 * 1024  # larger PDFs are kept, not read
MAX_PDF_PAGES = 10
MAX_TEXT_CHARS = 50_000


@dataclass(frozen=True)
class File:
    filename: str
    content_type: str
    data: bytes


def attachments(raw: bytes) -> list[File]:
    """Every attachment of `raw`, in order; a broken part is skipped, never fatal."""
    try:
        message = email.message_from_bytes(raw, policy=compat32)
        leaves = list(_leaves(message))
    except Exception:  # a MIME tree too broken to walk: the raw message is still kept
        return []
    files = []
    for part in leaves:
        content_type = part.get_content_type()
        filename = decode(part.get_filename())
        disposition = str(part.get("Content-Disposition") or "").split(";")[0].strip().lower()  # str(): a Header when 8-bit
        if content_type in ("text/plain", "text/html") and not filename and disposition != "attachment":
            continue  # the body
        try:
            if content_type == "message/rfc822":
                inner = part.get_payload()
                data = inner[0].as_bytes() if isinstance(inner, list) and inner else b""
                filename = filename or "message.eml"
            else:
                data = part.get_payload(decode=True) or b""
        except Exception:
            continue
        files.append(File(filename or "unnamed", content_type, data if isinstance(data, bytes) else b""))
    return files


def text_of(file: File) -> str:
    """The readable text of an attachment ('' when it has none we can read)."""
    try:
        if file.content_type == "text/plain" or file.filename.lower().endswith(".txt"):
            return file.data.decode("utf-8", "replace")[:MAX_TEXT_CHARS]
        if file.content_type == "text/html":
            return html_to_text(file.data.decode("utf-8", "replace"))[:MAX_TEXT_CHARS]
        if file.content_type == "message/rfc822":
            inner = parse(file.data)
            return f"{inner.subject}\n{inner.text}"[:MAX_TEXT_CHARS]
        if file.content_type == "application/pdf" or file.filename.lower().endswith(".pdf"):
            return _pdf_text(file.data)
    except Exception:  # an attachment we cannot read proves nothing, and breaks nothing
        return ""
    return ""


def _pdf_text(data: bytes) -> str:
    if len(data) > MAX_PDF_BYTES:
        return ""
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed PDFs are common; their warnings are noise
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        return ""
    chunks = []
    for page in reader.pages[:MAX_PDF_PAGES]:
        chunks.append(page.extract_text() or "")
        if sum(map(len, chunks)) > MAX_TEXT_CHARS:
            break
    return "\n".join(chunks)[:MAX_TEXT_CHARS]
