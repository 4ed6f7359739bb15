"""Case-party and VERP addresses: format, parse, sign and verify. Pure.

    case+<reference>-<party>-<signature>@<domain>     party: c (customer), m (merchant), s (staff)
    bounce+<token>-<signature>@<domain>                envelope sender of one outbox row

The signature is HMAC-SHA256 over (kind, id, party) with a configured secret, truncated
to 80 bits and written in lower-case base32 (MTAs may lower-case local parts). Every
configured key verifies, the first one signs, so a secret can be rotated. Comparison
is constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal, Sequence

from gateway.settings import GatewaySettings

Party = Literal["c", "m", "s"]
PARTIES: tuple[Party, ...] = ("c", "m", "s")
PARTY_NAMES: dict[str, str] = {"c": "customer", "m": "merchant", "s": "staff"}
SIGNATURE_CHARS = 16  # 16 base32 characters = 80 bits
REFERENCE_CHARS = 8  # 40 bits of randomness per case reference
TOKEN_CHARS = 12
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_CASE_RE = re.compile(r"^case\+([a-z2-7]{4,16})-([cms])-([a-z2-7]{16,32})$")
_BOUNCE_RE = re.compile(r"^bounce\+([a-z2-7]{6,32})-([a-z2-7]{16,32})$")


@dataclass(frozen=True)
class CaseAddress:
    reference: str
    party: Party


@dataclass(frozen=True)
class BounceAddress:
    token: str


@dataclass(frozen=True)
class IntakeAddress:
    local_part: str


@dataclass(frozen=True)
class Rejected:
    reason: str


Recipient = CaseAddress | BounceAddress | IntakeAddress | Rejected


def random_base32(length: int) -> str:
    """A random lower-case base32 string, for case references and VERP tokens."""
    return "".join(secrets.choice(_B32) for _ in range(length))


def sign(key: str, *parts: str, length: int = SIGNATURE_CHARS) -> str:
    """HMAC-SHA256 of `parts` with `key`, lower-case base32, `length` characters: the
    signature of case and VERP addresses, and of status links."""
    mac = hmac.new(key.encode(), "\x1f".join(parts).encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode().lower()[:length]


def verify(keys: Sequence[str], signature: str, *parts: str, length: int = SIGNATURE_CHARS) -> bool:
    """Whether one of `keys` made `signature` over `parts` (constant time, every key tried)."""
    ok = False
    for key in keys:  # try every key, without stopping early, so timing says nothing
        ok |= hmac.compare_digest(sign(key, *parts, length=length), signature[:length].ljust(length, "0"))
    return ok and len(signature) == length


def case_address(reference: str, party: Party, *, domain: str, keys: Sequence[str]) -> str:
    """The reply address of `party` in case `reference`, signed with the newest key."""
    reference = reference.lower()
    return f"case+{reference}-{party}-{sign(keys[0], 'case', reference, party)}@{domain}"


def bounce_address(token: str, *, domain: str, keys: Sequence[str]) -> str:
    """The VERP envelope sender of one outbox row."""
    token = token.lower()
    return f"bounce+{token}-{sign(keys[0], 'bounce', token)}@{domain}"


def intake_address(domain: str, local_part: str = "disputes") -> str:
    return f"{local_part}@{domain}"


def recipients_of(gateway: GatewaySettings, rcpt_tos: Sequence[str]) -> list[Recipient]:
    """Each envelope recipient parsed against the gateway's domain, keys and intake names."""
    return [parse(r, domain=gateway.domain, keys=gateway.secret_keys, intake=tuple(gateway.intake_local_parts))
            for r in rcpt_tos]


def parse(address: str, *, domain: str, keys: Sequence[str], intake: Sequence[str]) -> Recipient:
    """Classify one recipient address of ours; anything not valid is Rejected with a reason."""
    address = address.strip().strip("<>").lower()
    local, at, addr_domain = address.rpartition("@")
    if not at or not local:
        return Rejected("not an address")
    if addr_domain != domain:
        return Rejected("not our domain")
    if local in intake:
        return IntakeAddress(local)
    if match := _CASE_RE.match(local):
        reference, party, signature = match.groups()
        if verify(keys, signature, "case", reference, party):
            return CaseAddress(reference, party)  # type: ignore[arg-type]
        return Rejected("bad signature")
    if match := _BOUNCE_RE.match(local):
        token, signature = match.groups()
        if verify(keys, signature, "bounce", token):
            return BounceAddress(token)
        return Rejected("bad signature")
    return Rejected("unknown address")
