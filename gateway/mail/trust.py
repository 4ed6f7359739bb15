"""Sender trust on a case address: combine the From match with the party, the envelope
sender and the Authentication-Results of the administrator's own MTA. Pure.

Only Authentication-Results whose authserv-id is the configured one are read (anyone can
write that header; RFC 8601 section 5 has the receiving MTA remove copies bearing its own
id), and only the topmost such header, the one the administrator's MTA added last.

Default policy (the verdicts the gateway acts on):

| From matches the party | trusted DMARC result          | verdict            |
|------------------------|-------------------------------|--------------------|
| yes                    | pass, or no trusted header    | accept             |
| yes                    | none/absent (no DMARC policy), SPF or DKIM pass for the From domain | accept |
| yes                    | none/absent, nothing passes   | accept_flagged (relayed; flagged in the case history) |
| yes                    | fail                          | hold (staff decide; forged From of the right party) |
| no                     | fail                          | reject (kept on the case, relayed to nobody, no notice) |
| no                     | anything else                 | hold |

A merchant whose domain publishes no DMARC record can therefore always answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Sequence

import authres

log = logging.getLogger(__name__)


class Trust(str, Enum):
    ACCEPT = "accept"
    ACCEPT_FLAGGED = "accept_flagged"
    HOLD = "hold"
    REJECT = "reject"


@dataclass(frozen=True)
class AuthResults:
    dmarc: str | None  # pass | fail | none | ... (None: not reported)
    spf: str | None
    dkim: str | None
    dkim_domains: tuple[str, ...] = ()
    spf_domain: str | None = None


@dataclass(frozen=True)
class TrustVerdict:
    trust: Trust
    reason: str


def trusted_results(header_values: Sequence[str], authserv_id: str | None) -> AuthResults | None:
    """The topmost Authentication-Results from `authserv_id`, or None (none trusted)."""
    if not authserv_id:
        return None
    for value in header_values:  # in message order: topmost first
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(" ".join(value.split()))
        except Exception:  # malformed headers are someone else's: not trusted, not fatal
            continue
        if (parsed.authserv_id or "").lower() != authserv_id.lower():
            continue
        found: dict[str, str] = {}
        dkim_domains: list[str] = []
        spf_domain = None
        for result in parsed.results:
            method = (result.method or "").lower()
            outcome = (result.result or "").lower()
            if method == "dkim":
                if outcome == "pass":
                    dkim_domains.extend(p.value.lower() for p in result.properties if p.name in ("d", "i"))
                if outcome == "pass" or "dkim" not in found:  # one passing signature is enough
                    found["dkim"] = outcome
            elif method in ("spf", "dmarc"):
                found.setdefault(method, outcome)
                if method == "spf":
                    spf_domain = next((p.value.lower().rpartition("@")[2] for p in result.properties
                                       if p.name in ("mailfrom", "helo")), None)
        return AuthResults(found.get("dmarc"), found.get("spf"), found.get("dkim"), tuple(dkim_domains), spf_domain)
    return None


def _aligned(domain: str | None, from_domain: str) -> bool:
    return bool(domain) and (domain == from_domain or from_domain.endswith("." + domain) or domain.endswith("." + from_domain))


def decide(*, from_matches: bool, from_address: str, auth: AuthResults | None) -> TrustVerdict:
    """The trust verdict for a message on a case address (see the module table)."""
    dmarc = auth.dmarc if auth else None
    if not from_matches:
        if dmarc == "fail":
            return TrustVerdict(Trust.REJECT, "From does not match the party and fails DMARC")
        return TrustVerdict(Trust.HOLD, "From address does not match the registered party address")
    if auth is None:
        return TrustVerdict(Trust.ACCEPT, "From matches; no trusted Authentication-Results")
    if dmarc == "pass":
        return TrustVerdict(Trust.ACCEPT, "From matches; DMARC pass")
    if dmarc == "fail":
        return TrustVerdict(Trust.HOLD, "From matches but DMARC fails: possibly forged")
    from_domain = from_address.rpartition("@")[2].lower()
    if any(_aligned(d.rpartition("@")[2], from_domain) for d in auth.dkim_domains):
        return TrustVerdict(Trust.ACCEPT, "From matches; no DMARC policy; DKIM pass for the From domain")
    if auth.spf == "pass" and _aligned(auth.spf_domain, from_domain):
        return TrustVerdict(Trust.ACCEPT, "From matches; no DMARC policy; SPF pass for the From domain")
    return TrustVerdict(Trust.ACCEPT_FLAGGED, "From matches; no DMARC policy and no SPF/DKIM pass: unverified")
