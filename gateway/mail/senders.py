"""Who wrote a message: the From address, the envelope sender and what authenticates them,
weighed against a party's registered address. Pure.

Anyone can write any From, and any envelope sender too; what cannot be forged is an
authentication result: DMARC pass, or a DKIM signature or an SPF pass aligned with the From
domain (RFC 7489 alignment, relaxed), reported by the administrator's MTA under its trusted
authserv-id or found by the gateway's own checks (gateway/mail/authentication.py). So:

| From is the party's | authentication                         | envelope is the party's | verdict |
|---------------------|----------------------------------------|-------------------------|---------|
| no                  | DMARC fail                             | any                     | reject (kept, relayed to nobody, no notice) |
| no                  | anything else                          | any                     | hold    |
| yes                 | DMARC, or aligned SPF, fails           | any                     | hold    |
| yes                 | aligned pass                           | any                     | accept (authenticated) |
| yes                 | none, no failure                       | yes                     | accept (flagged unverified when results exist) |
| yes                 | none, no failure                       | no                      | hold    |

"The party's" under the `strict` policy is the registered address itself; under `domain`
it is any address of the registered address's domain, and then only with an aligned pass
for that domain, and never for a shared-provider domain (freemail: anyone can have an
address there).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Sequence

from gateway.mail.trust import AuthResults
from gateway.settings import SHARED_DOMAINS  # noqa: F401 - a setting's default; read here

class Trust(str, Enum):
    ACCEPT = "accept"
    ACCEPT_FLAGGED = "accept_flagged"  # relayed; the case history says it was not verified
    HOLD = "hold"  # kept on the case, relayed to nobody, obeyed in nothing, until staff release it
    REJECT = "reject"  # kept on the case, relayed to nobody, no notice


@dataclass(frozen=True)
class Sender:
    """What a message says of its author."""

    envelope: str  # MAIL FROM, lower case; '' for the null sender
    address: str  # From address, lower case; '' when missing or several
    name: str  # From display name
    auth: AuthResults | None  # trusted Authentication-Results or the gateway's own checks; None: none

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    def summary(self) -> dict:
        """What staff are shown of a held message's sender."""
        auth = self.auth
        return {"envelope_sender": self.envelope or "<>", "from": self.address, "from_name": self.name,
                "authentication": None if auth is None else {
                    "dmarc": auth.dmarc, "spf": auth.spf, "dkim": auth.dkim, "dkim_domains": list(auth.dkim_domains),
                    "spf_domain": auth.spf_domain, "by": auth.source}}


@dataclass(frozen=True)
class Check:
    trust: Trust
    reason: str
    authenticated: bool = False  # an aligned pass vouches for the From domain

    @property
    def is_party(self) -> bool:
        return self.trust in (Trust.ACCEPT, Trust.ACCEPT_FLAGGED)


def aligned(domain: str | None, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489 section 3.1): the same organisational domain, read as
    one being the other or a subdomain of it."""
    domain = (domain or "").lower().rpartition("@")[2]
    return bool(domain) and (domain == from_domain or from_domain.endswith("." + domain)
                             or domain.endswith("." + from_domain))


def authenticated(sender: Sender) -> bool:
    """Whether an authentication result vouches for the From domain."""
    auth, domain = sender.auth, sender.domain
    if auth is None or not domain:
        return False
    if auth.dmarc == "pass":
        return True
    if any(aligned(d, domain) for d in auth.dkim_domains):
        return True
    return auth.spf == "pass" and aligned(auth.spf_domain or sender.envelope, domain)


def authentication_fails(sender: Sender) -> str | None:
    """Why authentication speaks against the message, or None."""
    auth = sender.auth
    if auth is None:
        return None
    if auth.dmarc == "fail":
        return "DMARC fails"
    if auth.spf == "fail" and aligned(auth.spf_domain or sender.envelope, sender.domain):
        return "SPF fails for the envelope sender"
    return None


def address_matches(address: str, registered: Sequence[str], policy: str, shared_domains: frozenset[str]) -> bool:
    """Whether `address` is one of the party's: the registered address (`strict`), or an
    address of its domain (`domain`, never a shared-provider domain)."""
    address = (address or "").lower()
    if not address:
        return False
    if any(address == r.lower() for r in registered):
        return True
    if policy != "domain":
        return False
    domain = address.rpartition("@")[2]
    return domain not in shared_domains and any(domain == r.lower().rpartition("@")[2] for r in registered)


def check(sender: Sender, registered: Sequence[str], policy: str, *,
          shared_domains: frozenset[str] = SHARED_DOMAINS) -> Check:
    """The verdict on a message claiming to come from the party registered as `registered`
    (see the module table)."""
    exact = any(sender.address == r.lower() for r in registered)
    from_matches = address_matches(sender.address, registered, policy, shared_domains)
    failure = authentication_fails(sender)
    if not from_matches:
        if failure == "DMARC fails":
            return Check(Trust.REJECT, "From is not the party's address and fails DMARC")
        return Check(Trust.HOLD, "From is not the party's registered address"
                     + ("" if policy == "strict" else f" ({policy} policy)"))
    if failure:
        return Check(Trust.HOLD, f"From is the party's but {failure}: possibly forged")
    if authenticated(sender):
        return Check(Trust.ACCEPT, "From is the party's, authenticated", authenticated=True)
    if not exact:  # an address of the party's domain: only its domain's authentication vouches for it
        return Check(Trust.HOLD, "From is of the party's domain, but nothing authenticates that domain (domain policy)")
    if not address_matches(sender.envelope, registered, policy, shared_domains):
        return Check(Trust.HOLD, f"the envelope sender <{sender.envelope}> is not the party's address "
                                 "and nothing authenticates the From")
    if sender.auth is None:
        return Check(Trust.ACCEPT, "From and envelope sender are the party's; no authentication results")
    return Check(Trust.ACCEPT_FLAGGED, "From and envelope sender are the party's; not authenticated")
