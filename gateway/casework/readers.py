"""Who reads a party's message, and passing it on to them."""

from __future__ import annotations

from gateway import store
from gateway.cases.machine import EventKind
from gateway.casework import record
from gateway.casework.work import Step
from gateway.models import Case


def staff_own(case: Case) -> bool:
    """Staff read everything the parties write: escalated cases, payment cases, and cases
    staff took before a category was known."""
    return case.escalated or case.category != "delivery"


def relay_to(step: Step, case: Case, author: str, targets: list[str], transform=None) -> list[str]:
    sent = []
    for target in dict.fromkeys(targets):
        if step.mailer.relay(case, step.inbound.raw, author=author, to_party=target,
                             inbound_id=step.inbound.id, transform=transform, hide=[step.parsed.from_address]):
            sent.append(target)
    if sent:
        record.note(step, case, EventKind.RELAYED, party=author, to=",".join(sent))
    return sent
