"""The gateway's own authentication checks, for installations whose MTA adds no trusted
Authentication-Results: DKIM signatures verified with dkimpy, SPF of the envelope sender
against the connecting client with pyspf, and the From domain's DMARC record (RFC 7489,
relaxed alignment) read to tell "fail" from "none". The result has the shape of the MTA's
results (gateway.mail.trust.AuthResults, source "gateway") and is weighed the same way
(gateway/mail/senders.py).

DNS goes through a `Resolver`: `DnsResolver` (dnspython, with a timeout) in production,
a table of records in tests (nothing on the internet). A DNS failure makes a result
"temperror", never a pass.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Protocol, Sequence

from gateway.mail.senders import aligned
from gateway.mail.trust import AuthResults

log = logging.getLogger(__name__)
MAX_SIGNATURES = 5  # DKIM signatures tried per message; more is a cost, not evidence
_DKIM_DOMAIN = re.compile(rb"(?:^|;)\s*d\s*=\s*([^;\s]+)", re.IGNORECASE)


class DnsUnavailable(Exception):
    """A lookup could not be answered now (timeout, no server): a temporary error."""


class Resolver(Protocol):
    def lookup(self, name: str, qtype: str) -> list:
        """Records of `qtype` for `name` in pyspf's shapes: TXT as a tuple of byte strings,
        A/AAAA as address text, MX as (preference, exchange), PTR as text. [] when there
        are none; DnsUnavailable on a temporary failure."""


class DnsResolver:
    """The system's DNS, through dnspython, each query bounded by `timeout` seconds."""

    def __init__(self, timeout: float = 5.0, nameservers: Sequence[str] = ()) -> None:
        import dns.resolver

        self._resolver = dns.resolver.Resolver(configure=not nameservers)
        if nameservers:
            self._resolver.nameservers = list(nameservers)
        self._resolver.lifetime = timeout

    def lookup(self, name: str, qtype: str) -> list:
        import dns.exception
        import dns.resolver

        try:
            answers = self._resolver.resolve(name, qtype, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration) as error:
            raise DnsUnavailable(f"{qtype} {name}: {error}") from None
        records = []
        for rdata in answers or ():
            if qtype in ("A", "AAAA"):
                records.append(rdata.address)
            elif qtype == "MX":
                records.append((rdata.preference, rdata.exchange.to_text(True)))
            elif qtype == "PTR":
                records.append(rdata.target.to_text(True))
            elif qtype in ("TXT", "SPF"):
                records.append(tuple(rdata.strings))
        return records


@dataclass(frozen=True)
class Client:
    """Who handed the message to the gateway: its IP address and HELO name."""

    address: str | None
    helo: str | None


def authenticate(raw: bytes, *, envelope: str, from_domain: str, client: Client, resolver: Resolver,
                 check_dkim: bool = True, check_spf: bool = True,
                 trusted_relays: Sequence[str] = ("127.0.0.0/8", "::1/128")) -> AuthResults:
    """DKIM, SPF and DMARC results for one message, as the gateway sees them."""
    dkim_result, dkim_domains = _dkim(raw, resolver) if check_dkim else ("none", ())
    spf_result, spf_domain = ("none", None)
    if check_spf and client.address and envelope and not _relayed(client.address, trusted_relays):
        spf_result, spf_domain = _spf(client, envelope, resolver)
    dmarc = _dmarc(from_domain, dkim_domains, spf_result, spf_domain, resolver) if from_domain else None
    return AuthResults(dmarc, spf_result, dkim_result, dkim_domains, spf_domain, source="gateway")


def _relayed(address: str, trusted: Sequence[str]) -> bool:
    """Whether the client is one of the administrator's own relays (its SPF says nothing of
    the sender: the MTA in front received the message from somebody else)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    return any(ip in ipaddress.ip_network(network, strict=False) for network in trusted)


def _dkim(raw: bytes, resolver: Resolver) -> tuple[str, tuple[str, ...]]:
    """("pass", signing domains that verified) or ("fail" | "none" | "temperror", ())."""
    import dkim

    def txt(name: bytes, timeout: int = 5) -> bytes | None:
        records = resolver.lookup(name.decode("ascii", "replace").rstrip("."), "TXT")
        return b"".join(records[0]) if records else None

    try:
        verifier = dkim.DKIM(raw, minkey=1024)
        count = len([h for h in verifier.headers if h[0].lower() == b"dkim-signature"])
    except Exception:  # a message dkimpy cannot even read has no signature that counts
        return "none", ()
    if not count:
        return "none", ()
    passed: list[str] = []
    temporary = False
    for index in range(min(count, MAX_SIGNATURES)):
        try:
            if verifier.verify(idx=index, dnsfunc=txt):
                header = [h for h in verifier.headers if h[0].lower() == b"dkim-signature"][index][1]
                match = _DKIM_DOMAIN.search(header.replace(b"\r\n", b"").replace(b"\n", b""))
                if match:
                    passed.append(match.group(1).decode("ascii", "replace").lower())
        except DnsUnavailable:
            temporary = True
        except Exception as error:  # a broken signature is a failing one
            log.debug("DKIM signature %s does not verify: %s", index, error)
    if passed:
        return "pass", tuple(dict.fromkeys(passed))
    return ("temperror" if temporary else "fail"), ()


def _spf(client: Client, envelope: str, resolver: Resolver) -> tuple[str, str | None]:
    """The SPF result of the envelope sender's domain for the client's address."""
    import spf

    domain = envelope.rpartition("@")[2].lower()

    class Query(spf.query):
        def dns(self, name, qtype, cnames=None, ignore_void=False):
            try:
                return resolver.lookup(str(name).rstrip("."), qtype)
            except DnsUnavailable as error:
                raise spf.TempError(str(error)) from None

    try:
        result, _code, _explanation = Query(i=client.address, s=envelope, h=client.helo or domain,
                                            timeout=10).check()
    except Exception as error:  # a record pyspf cannot read is a permanent error, not a pass
        log.debug("SPF check of %s failed: %s", domain, error)
        return "permerror", domain
    return str(result), domain


def _dmarc(from_domain: str, dkim_domains: Sequence[str], spf_result: str, spf_domain: str | None,
           resolver: Resolver) -> str:
    """"pass" when an aligned DKIM or SPF pass vouches for the From domain, "fail" when the
    domain publishes DMARC and none does, "none" when it publishes no policy."""
    vouched = any(aligned(d, from_domain) for d in dkim_domains) or (
        spf_result == "pass" and aligned(spf_domain, from_domain))
    try:
        record = _dmarc_record(from_domain, resolver)
    except DnsUnavailable:
        return "pass" if vouched else "temperror"
    if vouched:
        return "pass"
    return "fail" if record else "none"


def _dmarc_record(domain: str, resolver: Resolver) -> str | None:
    """The DMARC policy of `domain`, or of its parent (the organisational domain, read as
    the last two labels: no public-suffix list here)."""
    labels = domain.split(".")
    for candidate in dict.fromkeys([domain, ".".join(labels[-2:])]):
        for record in resolver.lookup(f"_dmarc.{candidate}", "TXT"):
            text = b"".join(record).decode("ascii", "replace")
            if text.lower().startswith("v=dmarc1"):
                return text
    return None
