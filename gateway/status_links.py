"""Status-page links: one per case party, signed like the case addresses and expiring. Pure.

    <reference>.<party>.<expiry>.<signature>      party: c or m; expiry: Unix seconds, base 36

The signature is HMAC-SHA256 over ("status", reference, party, expiry) with a configured
secret, truncated to 128 bits, lower-case base32. Every configured key verifies, the first
signs; comparison is constant time. Staff have no status page (they have the case address).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Sequence

from gateway import addresses

STATUS_PARTIES = ("c", "m")
SIGNATURE_CHARS = 26  # 130 bits
_TOKEN_RE = re.compile(r"^([a-z2-7]{4,16})\.([cm])\.([0-9a-z]{1,10})\.([a-z2-7]{26})$")


def _signature(key: str, reference: str, party: str, expiry: str) -> str:
    return addresses.sign(key, "status", reference, party, expiry, length=SIGNATURE_CHARS)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def token(reference: str, party: str, *, expires: datetime, key: str) -> str:
    """The signed token of `party`'s status page of case `reference`, valid until `expires`."""
    if party not in STATUS_PARTIES:
        raise ValueError(f"no status page for party {party!r}")
    reference = reference.lower()
    expiry = _base36(int(expires.timestamp()))
    return f"{reference}.{party}.{expiry}.{_signature(key, reference, party, expiry)}"


def link(public_url: str, reference: str, party: str, *, now: datetime, days: int, key: str) -> str:
    """The status link a notice to `party` carries: valid `days` from `now` (whole days, so
    every notice of one day carries the same link)."""
    day = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return f"{public_url.rstrip('/')}/status/{token(reference, party, expires=day + timedelta(days=days + 1), key=key)}"


@dataclass(frozen=True)
class StatusAccess:
    reference: str
    party: str
    expires: datetime


def verify(value: str, *, keys: Sequence[str], now: datetime) -> StatusAccess | str:
    """The case and party a token opens, or why it does not ("malformed", "signature", "expired")."""
    match = _TOKEN_RE.match((value or "").lower())
    if match is None:
        return "malformed"
    reference, party, expiry, signature = match.groups()
    if not addresses.verify(keys, signature, "status", reference, party, expiry, length=SIGNATURE_CHARS):
        return "signature"
    expires = datetime.fromtimestamp(int(expiry, 36), tz=timezone.utc)
    if expires <= now:
        return "expired"
    return StatusAccess(reference, party, expires)


def for_notice(settings, reference: str, party: str, *, now: datetime) -> str:
    """The link a notice to `party` carries ('' for staff, or when [http] is off)."""
    http = settings.http
    if not http.enabled or party not in STATUS_PARTIES:
        return ""
    return link(http.public_url, reference, party, now=now, days=http.status_link_days,
                key=settings.gateway.secret_keys[0])
