"""A stub DNS resolver for the gateway's own authentication checks: the records a test
publishes, nothing on the internet."""

from __future__ import annotations

from pathlib import Path

import dkim

from gateway.authentication import DnsUnavailable

KEYS = Path(__file__).parent / "mail" / "dkim"
SELECTOR = "test"


class StubResolver:
    """`records`: {(name, qtype): [values in pyspf's shapes]}; TXT values may be given as str.
    `down`: every lookup fails as a DNS outage would."""

    def __init__(self, records: dict | None = None, *, down: bool = False) -> None:
        self.records = {}
        self.down = down
        self.queries: list[tuple[str, str]] = []
        for (name, qtype), values in (records or {}).items():
            self.add(name, qtype, *values)

    def add(self, name: str, qtype: str, *values) -> "StubResolver":
        for value in values:
            if qtype in ("TXT", "SPF") and isinstance(value, str):
                value = (value.encode(),)
            self.records.setdefault((name.lower().rstrip("."), qtype), []).append(value)
        return self

    def lookup(self, name: str, qtype: str) -> list:
        self.queries.append((name, qtype))
        if self.down:
            raise DnsUnavailable(f"{qtype} {name}: no nameserver answered (stub)")
        return list(self.records.get((name.lower().rstrip("."), qtype), []))


def customer_domain(resolver: StubResolver | None = None, *, spf: str | None = None,
                    dmarc: str | None = "v=DMARC1; p=reject") -> StubResolver:
    """customer.test with its DKIM key published (and optionally SPF and DMARC records)."""
    resolver = resolver or StubResolver()
    public = (KEYS / "customer.test.public.b64").read_text().strip()
    resolver.add(f"{SELECTOR}._domainkey.customer.test", "TXT", f"v=DKIM1; k=rsa; p={public}")
    if spf:
        resolver.add("customer.test", "TXT", spf)
    if dmarc:
        resolver.add("_dmarc.customer.test", "TXT", dmarc)
    return resolver


def dkim_sign(raw: bytes, domain: str = "customer.test") -> bytes:
    """`raw` with a DKIM-Signature of `domain` (the tests' key) on top."""
    key = (KEYS / f"{domain}.private.pem").read_bytes()
    signature = dkim.sign(raw, SELECTOR.encode(), domain.encode(), key,
                          include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return signature + raw
