"""Authentication-Results from the administrator's MTA: which ones to believe. Pure.

Only Authentication-Results whose authserv-id is the configured one are read (anyone can
write that header; RFC 8601 section 5 has the receiving MTA remove copies bearing its own
id), and only the topmost such header, the one the administrator's MTA added last. What
the results mean for a party's message is decided in gateway/mail/senders.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import authres

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthResults:
    dmarc: str | None  # pass | fail | none | ... (None: not reported)
    spf: str | None
    dkim: str | None
    dkim_domains: tuple[str, ...] = ()
    spf_domain: str | None = None
    source: str = ""  # who found them: "mta <authserv-id>" or "gateway"


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
        return AuthResults(found.get("dmarc"), found.get("spf"), found.get("dkim"), tuple(dkim_domains), spf_domain,
                           source=f"mta {authserv_id}")
    return None
