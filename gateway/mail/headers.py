"""Header values as text: unfolded, RFC 2047 words decoded, raw 8-bit bytes read as UTF-8,
raw ISO-2022-JP (written without RFC 2047 by older Japanese mailers) read as Japanese."""

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


_ISO_2022_JP_RE = re.compile(r"\x1b\$[@B].*?(\x1b\([BJ]|$)", re.DOTALL)


def _iso_2022_jp(text: str) -> str:
    """Runs of raw ISO-2022-JP (ESC $ B ... ESC ( B) decoded: the header is 7-bit, so the
    email package leaves the escape sequences as they are (Japanese carriers' reports)."""
    if "\x1b$" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        try:
            return match.group(0).encode("ascii").decode("iso-2022-jp")
        except (UnicodeError, LookupError):
            return match.group(0)
    return _ISO_2022_JP_RE.sub(one, text)


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
            text = _iso_2022_jp(FOLD_RE.sub(" ", unescape_8bit(str(value))))
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
