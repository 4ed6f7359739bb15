"""What the end-to-end benchmarks share: a loaded gateway with one open delivery case."""

from __future__ import annotations

from pathlib import Path

from gateway import addresses, reports
from tests.harness import CUSTOMER, DOMAIN, KEYS, Gateway, Sink, build_mail


def open_case(gateway: Gateway, sink: Sink, tmp: Path) -> str:
    """Import the test merchants and transactions, open a case for TX-1001 and return the
    customer's case address (its replies are relayed to the merchant)."""
    gateway.load(tmp)
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001 never arrived",
                            body="TX-1001 never arrived."), to=f"delivery@{DOMAIN}")
    sink.wait_count(5, timeout=30)
    with gateway.runtime.database.unit_of_work() as db:
        reference = reports.list_cases(db)[0]["reference"].lower()
    return addresses.case_address(reference, "c", domain=DOMAIN, keys=KEYS)
