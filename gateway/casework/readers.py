"""Who reads a party's message, and passing it on to them."""

from __future__ import annotations

from gateway import store
from gateway.cases.machine import EventKind
from gateway.casework import record
from gateway.casework.lifecycle import merchant_reachable
from gateway.casework.work import Step
from gateway.models import Case


def staff_own(case: Case) -> bool:
    """Staff read everything the parties write: escalated cases, payment cases, and cases
    staff took before a category was known."""
    return case.escalated or case.category != "delivery"


def readers_of(work, case: Case, author: str, *, escalating: bool = False) -> list[str]:
    """Who reads a message `author` wrote on `case` (live or released after being held):
    the customer's goes to the merchant on a delivery case whose merchant can be reached,
    else to staff, and to staff as well once they own the case (or it is being escalated);
    the merchant's goes to the customer, and to staff when they own the case; staff's to
    both parties (the merchant only when reachable)."""
    reachable = merchant_reachable(work, case)
    if author == "c":
        first = "m" if case.category == "delivery" and reachable else "s"
        return list(dict.fromkeys([first] + (["s"] if case.escalated or escalating else [])))
    if author == "m":
        return ["c"] + (["s"] if staff_own(case) else [])
    return ["c"] + (["m"] if reachable else [])


def relay_to(step: Step, case: Case, author: str, targets: list[str], transform=None) -> list[str]:
    sent = []
    for target in dict.fromkeys(targets):
        if step.mailer.relay(case, step.inbound.raw, author=author, to_party=target,
                             inbound_id=step.inbound.id, transform=transform, hide=[step.parsed.from_address]):
            sent.append(target)
    if sent:
        record.note(step, case, EventKind.RELAYED, party=author, to=",".join(sent))
    return sent
