"""The only writer of case state. A change of state or of a flag goes through the state
machine (gateway/cases/machine.py: `move`, `flag`) and is recorded as an event; what the
machine does not decide (the dispute type, the category, when each party last wrote, when
the next timer falls) is written here too, and every event of a case is recorded by `note`.
Messages join the case here (`record_inbound`, `record_earlier`)."""

from __future__ import annotations

from datetime import datetime

from gateway import store
from gateway.cases import machine
from gateway.cases.machine import CaseState, CaseView, ClosedReason, EventKind
from gateway.casework.work import Moment, Step
from gateway.mail.parse import ParsedMessage
from gateway.models import Case, Event, Inbound, Message

LAST_MESSAGE_AT = {"c": "last_customer_message_at", "m": "last_merchant_message_at", "s": "last_staff_message_at"}


def view(case: Case) -> CaseView:
    """The case as the machine sees it."""
    return CaseView(state=CaseState(case.state), escalated=case.escalated,
                    merchant_unreachable=case.merchant_unreachable, waiting_since=case.waiting_since,
                    closed_reason=ClosedReason(case.closed_reason) if case.closed_reason else None,
                    frozen=case.frozen)


def note(work: Moment, case: Case, kind: EventKind, *, party: str | None = None, message: Message | None = None,
         **detail) -> Event:
    """Record an event of the case at the unit of work's instant."""
    return store.add_event(work.db, case, EventKind(kind).value, at=work.now, party=party, message=message, **detail)


def move(work: Moment, case: Case, kind: EventKind, *, party: str | None, message: Message | None = None, **detail) -> bool:
    """Apply `kind` through the state machine and record it (with the machine's reason when
    it refuses); False when the table refuses it."""
    outcome = machine.apply(view(case), kind, now=work.now)
    refused = {} if outcome.applied else {"refused": outcome.note}
    note(work, case, kind, party=party, message=message, state_before=outcome.before.state.value,
         state_after=outcome.after.state.value, applied=outcome.applied, **detail, **refused)
    if not outcome.applied:
        return False
    after = outcome.after
    case.state = after.state.value
    case.escalated = after.escalated
    case.merchant_unreachable = after.merchant_unreachable
    case.waiting_since = after.waiting_since or work.now
    case.closed_reason = after.closed_reason.value if after.closed_reason else None
    if after.state is CaseState.CLOSED:
        case.closed_at = work.now
    elif outcome.before.state is CaseState.CLOSED:
        case.closed_at = None  # reopened
    return True


def flag(work: Moment, case: Case, kind: EventKind, *, party: str | None = None, message: Message | None = None,
         **detail) -> None:
    """Set the flags of the flag event `kind` (machine.FLAGS) and record it."""
    outcome = machine.flag(view(case), kind)
    if not outcome.applied:
        raise ValueError(outcome.note)
    case.frozen = outcome.after.frozen
    case.merchant_unreachable = outcome.after.merchant_unreachable
    note(work, case, kind, party=party, message=message, **detail)


def received(work: Moment, case: Case, party: str, message: Message, **detail) -> None:
    """A party's message joined the case: when it last wrote, and the event."""
    wrote(case, party, work.now)
    note(work, case, EventKind.MESSAGE_RECEIVED, party=party, message=message, **detail)


def wrote(case: Case, party: str, at: datetime) -> None:
    """`party` last wrote at `at` (a message received or released); the timers read it."""
    setattr(case, LAST_MESSAGE_AT[party], at)


def set_dispute_type(case: Case, dispute_type: str) -> None:
    """The dispute type, inferred from what the customer wrote or named by staff (#type)."""
    case.dispute_type = dispute_type


def set_category(case: Case, category: str) -> None:
    """Payment or delivery, from the customer's answer; `opening.open_case` then routes the case."""
    case.category = category


def merchant_asked(case: Case, at: datetime) -> None:
    """Staff asked the merchant alone: it owes staff an answer (the staff-request reminder)."""
    case.merchant_asked_at = at


def set_next_due(case: Case, at: datetime | None) -> None:
    """When the case's next timer falls (the scheduler's index; None: nothing to come)."""
    case.next_due_at = at


def timers_released(case: Case) -> None:
    """The scheduler is done with the case: another may claim it when a timer is due."""
    case.timer_lease_until = None


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


