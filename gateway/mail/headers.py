"""Header values as text: unfolded, RFC 2047 words decoded, raw 8-bit bytes read as UTF-8."""

from __future__ import annotations

import re
from email.header import Header, decode_header, make_header

# Reply and forward prefixes of subjects, in the languages mail clients write them
# (English, French, German, Nordic, Italian), with Outlook's counters ("Re[2]:"), repeated.
REPLY_PREFIX_RE = re.compile(r"^\s*((re|fwd?|tr|aw|wg|sv|rif|r)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
FOLD_RE = re.compile(r"\r?\n[ \t]+")


def unescape_8bit(text: str) -> str:
    """Raw 8-bit header bytes (kept as surrogates by compat32) read as UTF-8."""
    try:
        return text.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text


def decode(value) -> str:
    """A header value, unfolded, with RFC 2047 words decoded and raw 8-bit bytes read as
    UTF-8, NUL characters removed (no database keeps them in text); never raises."""
    return _decode(value).replace("\x00", "")


def _decode(value) -> str:
    if value is None:
        return ""
    try:
        if isinstance(value, Header):
            chunks = decode_header(value)
        else:
            text = FOLD_RE.sub(" ", unescape_8bit(str(value)))
            if "=?" not in text:
                return text
            return str(make_header(decode_header(text)))
        parts = []
        for chunk, charset in chunks:
            if isinstance(chunk, bytes):
                codec = charset if charset and charset not in ("unknown-8bit",) else "utf-8"
                try:
                    parts.append(chunk.decode(codec, errors="replace"))
                except LookupError:
                    parts.append(chunk.decode("utf-8", errors="replace"))
            else:
                parts.append(chunk)
        return FOLD_RE.sub(" ", "".join(parts))
    except Exception:  # a header so broken even decode_header fails: keep it readable
        return FOLD_RE.sub(" ", str(value))
