"""What counts as the same message: a fingerprint of what the MTA does not change. Pure.

An MTA that delivers a message twice (it never saw our 250, or a forwarder retried) adds
trace headers on top (Received, Return-Path, Delivered-To, Authentication-Results, ...)
and may write line ends differently; it changes nothing below them. So two deliveries are
the same message when, after the leading run of trace headers and with line ends
normalised, their bytes are equal, whatever their Message-ID says: a second message that
reuses a Message-ID with other content is a new message, and a message without one is
recognised all the same.
"""

from __future__ import annotations

import hashlib
import re

# Header fields an MTA on the way prepends (RFC 5321 section 4.4, RFC 8601, RFC 8617, and the
# common vendor ones); only a leading run of them is skipped, never one below other fields.
TRACE_FIELDS = frozenset({
    "received", "return-path", "delivered-to", "x-original-to", "x-envelope-to", "x-envelope-from",
    "envelope-to", "x-delivered-to", "authentication-results", "arc-seal", "arc-message-signature",
    "arc-authentication-results", "received-spf", "dkim-signature", "x-received", "x-spam-status",
    "x-spam-score", "x-spam-level", "x-spam-flag", "x-spam-checker-version", "x-virus-scanned",
    "x-virus-status", "x-originating-ip", "x-forwarded-to", "x-forwarded-for", "x-gm-message-state",
    "x-google-smtp-source", "x-ms-exchange-organization-authas", "resent-date", "resent-from",
    "resent-sender", "resent-to", "resent-cc", "resent-message-id",
})
_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:")
MAX_TRACE_LINES = 5_000  # a pathological header block is fingerprinted from there on


def content_below_trace(raw: bytes) -> bytes:
    """The message without its leading trace header fields, with LF line ends."""
    text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    position, skipping = 0, False
    for _ in range(MAX_TRACE_LINES):
        end = text.find(b"\n", position)
        line = text[position:] if end < 0 else text[position:end]
        if line[:1] in (b" ", b"\t") and skipping:  # a folded continuation of a trace field
            pass
        else:
            match = _FIELD_NAME.match(line)
            skipping = bool(match) and match.group(1).decode("ascii").lower() in TRACE_FIELDS
            if not skipping:
                return text[position:]
        if end < 0:
            return b""
        position = end + 1
    return text[position:]


def fingerprint(raw: bytes, rcpt_tos) -> str:
    """The key of one delivery: the same content to the same recipients, hex SHA-256."""
    rcpts = "\0".join(sorted(r.lower() for r in rcpt_tos)).encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(b"content\0")
    digest.update(rcpts + b"\0")
    digest.update(content_below_trace(raw))
    return digest.hexdigest()
