"""The only writer of case state: every change of a case goes through the state machine
(gateway/cases/machine.py) and is recorded as an event; messages join the case here."""

from __future__ import annotations

from gateway import store
from gateway.cases.machine import CaseState, CaseView, EventKind, apply
from gateway.casework.work import Step, Work
from gateway.mail.parse import ParsedMessage
from gateway.models import Case, Inbound, Message


def view(case: Case) -> CaseView:
    return CaseView(state=CaseState(case.state), escalated=case.escalated,
                    merchant_unreachable=case.merchant_unreachable, waiting_since=case.waiting_since)


def move(work: Work, case: Case, kind: EventKind, *, party: str | None, message: Message | None = None, **detail) -> bool:
    """Apply `kind` through the state machine and record it; False when the table refuses it."""
    outcome = apply(view(case), kind, now=work.now)
    store.add_event(work.db, case, kind.value, at=work.now, party=party, message=message,
                    state_before=outcome.before.state.value, state_after=outcome.after.state.value,
                    applied=outcome.applied, **detail)
    if not outcome.applied:
        return False
    after = outcome.after
    case.state = after.state.value
    case.escalated = after.escalated
    case.merchant_unreachable = after.merchant_unreachable
    case.waiting_since = after.waiting_since or work.now
    if after.state is CaseState.CLOSED:
        case.closed_reason = after.closed_reason.value if after.closed_reason else None
        case.closed_at = work.now
    return True


def record_inbound(step: Step, case: Case, party: str, *, kind: str = "human", held_reason: str | None = None,
                   in_thread: bool | None = None) -> Message:
    """The inbound message as a message on the case. Only a party's own human message that
    is not held joins the party's mail thread (`in_thread`): held, rejected and automatic
    mail never becomes a parent of what we send (In-Reply-To, References)."""
    held = held_reason is not None
    message = store.add_message(
        step.db, case, inbound_id=step.inbound.id, direction="in", party=party, kind=kind,
        message_id=step.parsed.message_id, subject=step.parsed.subject[:500],
        new_text=step.parsed.new_text[:20_000], held=held, held_reason=held_reason, created_at=step.now,
        sender=_receipt(step, held_reason),
    )
    if in_thread if in_thread is not None else (kind == "human" and not held):
        store.remember_in_thread(store.party(step.db, case, party), step.parsed.message_id)
    step.inbound.case_id = case.id
    return message


def _receipt(step: Step, held_reason: str | None) -> dict | None:
    """Who the message says it is from and the sender check's verdict, as recorded at
    receipt (shown to staff for held mail; kept in evidence bundles)."""
    if step.sender is None:
        return None
    check = step.check
    verdict = check.trust.value if check is not None else ("hold" if held_reason else None)
    return {**step.sender.summary(), "verdict": verdict,
            "reason": held_reason if held_reason is not None else (check.reason if check is not None else None)}


def record_earlier(step: Step, case: Case, inbound: Inbound, parsed: ParsedMessage) -> Message:
    """An earlier message of the customer's (one we answered "which transaction?") as the
    first messages of the case it now belongs to."""
    message = store.add_message(
        step.db, case, inbound_id=inbound.id, direction="in", party="c", kind="human",
        message_id=parsed.message_id, subject=parsed.subject[:500], new_text=parsed.new_text[:20_000],
        held=False, held_reason=None, created_at=inbound.received_at)
    store.remember_in_thread(store.party(step.db, case, "c"), parsed.message_id)
    inbound.case_id = case.id
    return message


