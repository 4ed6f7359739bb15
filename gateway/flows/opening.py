"""Opening a case once its category is known: who receives the complaint, who is told."""

from __future__ import annotations

import re
from typing import Sequence

from sqlalchemy import select

from gateway import store
from gateway.cases.machine import CaseState, CaseView, EventKind, apply
from gateway.flows.step import Step
from gateway.mail.parse import ParsedMessage
from gateway.models import Case, Inbound, Message
from gateway.notices import Notice

CATEGORY_WORDS = {
    "payment": "payment", "paiement": "payment", "paiment": "payment", "payer": "payment",
    "delivery": "delivery", "livraison": "delivery", "livrer": "delivery",
}


def category_answer(text: str) -> str | None:
    """'payment' or 'delivery' when the first words of the answer name exactly one of them."""
    found = {CATEGORY_WORDS[w] for w in re.findall(r"[a-zà-ÿ]+", text.lower())[:40] if w in CATEGORY_WORDS}
    return found.pop() if len(found) == 1 else None


def view(case: Case) -> CaseView:
    return CaseView(state=CaseState(case.state), escalated=case.escalated,
                    merchant_unreachable=case.merchant_unreachable, waiting_since=case.waiting_since)


def move(step: Step, case: Case, kind: EventKind, *, party: str | None, message: Message | None = None, **detail) -> bool:
    """Apply `kind` through the state machine and record it; False when the table refuses it."""
    outcome = apply(view(case), kind, now=step.now)
    store.add_event(step.db, case, kind.value, at=step.now, party=party, message=message,
                    state_before=outcome.before.state.value, state_after=outcome.after.state.value,
                    applied=outcome.applied, **detail)
    if not outcome.applied:
        return False
    after = outcome.after
    case.state = after.state.value
    case.escalated = after.escalated
    case.merchant_unreachable = after.merchant_unreachable
    case.waiting_since = after.waiting_since or step.now
    if after.state is CaseState.CLOSED:
        case.closed_reason = after.closed_reason.value if after.closed_reason else None
        case.closed_at = step.now
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


def open_case(step: Step, case: Case, *, first_message: bool,
              earlier: Sequence[tuple[Inbound, ParsedMessage]] = (), kind: str = "human") -> None:
    """Route a case whose category may now be known; `first_message` when the complaint is
    this mail (with the `earlier` messages it answered for, oldest first). `kind`
    "confirmation": this mail only confirms the earlier ones; it is recorded, not relayed."""
    if first_message:
        from gateway import rights

        texts = [f"{parsed.subject}\n{parsed.new_text}" for _, parsed in earlier]
        case.dispute_type = rights.infer_type("\n".join(texts + [f"{step.parsed.subject}\n{step.parsed.new_text}"]))
        first = [record_earlier(step, case, inbound, parsed) for inbound, parsed in earlier]
        message = record_inbound(step, case, "c", kind=kind, in_thread=True)
        store.add_event(step.db, case, "case_opened", at=step.now, party="c", message=(first or [message])[0],
                        transaction=case.transaction_reference, category=case.category or "",
                        **({"earlier_messages": len(first)} if first else {}))
    mailer = step.mailer
    if case.category is None:
        mailer.notice(Notice.ASK_CATEGORY, case, "c", inbound_id=step.inbound.id)
        step.done(f"case {case.reference.upper()}: opened; asked the customer payment or delivery", case_id=case.id)
        return
    complaint = _customer_messages(step, case)
    if not first_message and case.dispute_type == "other":
        from gateway import rights

        case.dispute_type = rights.infer_type("\n".join([case.subject] + [m.new_text for m, _ in complaint if m]))
    if case.category == "delivery":
        move(step, case, EventKind.CATEGORY_DELIVERY, party="c")
        merchant = step.mailer.merchant_of(case)
        if merchant is None or merchant.address_invalid:
            # Nobody to relay to: staff take the case at once, the customer is told why.
            from gateway.flows import lifecycle

            case.merchant_unreachable = True
            lifecycle.escalate(step, case, reason="merchant_bounced", party=None, kind=EventKind.MERCHANT_BOUNCED,
                               inbound_id=step.inbound.id,
                               extra={"diagnostic": merchant.address_invalid_reason or "" if merchant else
                                      f"merchant {case.merchant_id} is unknown"})
            step.done(f"case {case.reference.upper()}: delivery case opened; the merchant's address is invalid, "
                      "escalated to staff at once", case_id=case.id)
            return
        from gateway import timer_jobs
        from gateway.flows import lifecycle

        escalation_date = timer_jobs.calendar_for(step.settings).add_business_days(
            step.now, step.settings.timers.escalation_business_days)
        mailer.notice(Notice.MERCHANT_NEW_CASE, case, "m", lifecycle.rights_context(step, case, escalation_date=
                      escalation_date), inbound_id=step.inbound.id)
        for _, inbound in complaint:
            mailer.relay(case, inbound.raw, author="c", to_party="m", inbound_id=inbound.id)
        store.add_event(step.db, case, "relayed", at=step.now, party="c", to="m", messages=len(complaint))
        mailer.notice(Notice.ACK_DELIVERY, case, "c", inbound_id=step.inbound.id)
        mailer.notice(Notice.STAFF_NEW_CASE, case, "s", inbound_id=step.inbound.id)
        step.done(f"case {case.reference.upper()}: delivery case opened; relayed to the merchant", case_id=case.id)
        return
    move(step, case, EventKind.CATEGORY_PAYMENT, party="c")
    mailer.notice(Notice.STAFF_NEW_CASE, case, "s", inbound_id=step.inbound.id)
    for _, inbound in complaint:
        mailer.relay(case, inbound.raw, author="c", to_party="s", inbound_id=inbound.id)
    store.add_event(step.db, case, "relayed", at=step.now, party="c", to="s", messages=len(complaint))
    mailer.notice(Notice.ACK_PAYMENT, case, "c", inbound_id=step.inbound.id)
    step.done(f"case {case.reference.upper()}: payment case opened with staff", case_id=case.id)


def _customer_messages(step: Step, case: Case) -> list[tuple[Message, Inbound]]:
    """What the customer wrote before the case reached the merchant or staff, oldest first:
    the complaint and, when we had to ask "payment or delivery?", the answer with its details."""
    messages = step.db.scalars(
        select(Message)
        .where(Message.case_id == case.id, Message.direction == "in", Message.party == "c",
               Message.held.is_(False), Message.kind == "human")
        .order_by(Message.id)
    ).all()
    found = [(m, step.db.get(Inbound, m.inbound_id)) for index, m in enumerate(messages)
             if m.inbound_id is not None and (index == 0 or not _only_a_category_answer(m.new_text))]
    return found or [(None, step.inbound)]


def _only_a_category_answer(text: str) -> bool:
    """A bare "delivery" / "paiement" answer: nothing in it for the merchant to read."""
    words = re.findall(r"[a-zà-ÿ]+", text.lower())
    return 0 < len(words) <= 3 and category_answer(text) is not None
