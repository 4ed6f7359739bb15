"""Opening a case once its category is known: who receives the complaint, who is told."""

from __future__ import annotations

import re
from typing import Sequence

from sqlalchemy import select

from gateway import rights, store
from gateway.dispositions import Disposition
from gateway.cases.machine import EventKind
from gateway.casework import lifecycle, record, schedule
from gateway.casework.record import move, record_earlier, record_inbound
from gateway.casework.work import Step
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


def open_case(step: Step, case: Case, *, first_message: bool,
              earlier: Sequence[tuple[Inbound, ParsedMessage]] = (), kind: str = "human") -> None:
    """Route a case whose category may now be known; `first_message` when the complaint is
    this mail (with the `earlier` messages it answered for, oldest first). `kind`
    "confirmation": this mail only confirms the earlier ones; it is recorded, not relayed."""
    if first_message:
        texts = [f"{parsed.subject}\n{parsed.new_text}" for _, parsed in earlier]
        record.set_dispute_type(case, rights.infer_type("\n".join(texts + [f"{step.parsed.subject}\n{step.parsed.new_text}"])))
        first = [record_earlier(step, case, inbound, parsed) for inbound, parsed in earlier]
        message = record_inbound(step, case, "c", kind=kind, in_thread=True)
        record.note(step, case, EventKind.CASE_OPENED, party="c", message=(first or [message])[0],
                    transaction=case.transaction_reference, category=case.category or "",
                    **({"earlier_messages": len(first)} if first else {}))
    mailer = step.mailer
    if case.category is None:
        mailer.notice(Notice.ASK_CATEGORY, case, "c", inbound_id=step.inbound.id)
        step.done(Disposition.CASE, f"case {case.reference.upper()}: opened; asked the customer payment or delivery", case_id=case.id)
        return
    complaint = _complaint(step, case)
    if not first_message and case.dispute_type == "other":
        record.set_dispute_type(case, rights.infer_type("\n".join([case.subject] + [m.new_text for m, _ in complaint if m])))
    if case.category == "delivery":
        move(step, case, EventKind.CATEGORY_DELIVERY, party="c")
        merchant = step.parties.merchant_of(case)
        if merchant is None or merchant.address_invalid:
            # Nobody to relay to: staff take the case at once, the customer is told why.
            lifecycle.escalate(step, case, reason="merchant_bounced", party=None, kind=EventKind.MERCHANT_BOUNCED,
                               inbound_id=step.inbound.id,
                               extra={"diagnostic": merchant.address_invalid_reason or "" if merchant else
                                      f"merchant {case.merchant_id} is unknown"})
            step.done(Disposition.CASE, f"case {case.reference.upper()}: delivery case opened; the merchant's address is invalid, "
                      "escalated to staff at once", case_id=case.id)
            return
        escalation_date = schedule.calendar_for(step.settings).add_business_days(
            step.now, step.settings.timers.escalation_business_days)
        mailer.notice(Notice.MERCHANT_NEW_CASE, case, "m", lifecycle.rights_context(step, case, escalation_date=
                      escalation_date), inbound_id=step.inbound.id)
        for _, inbound in complaint:
            mailer.relay(case, inbound.raw, author="c", to_party="m", inbound_id=inbound.id)
        record.note(step, case, EventKind.RELAYED, party="c", to="m", messages=len(complaint))
        mailer.notice(Notice.ACK_DELIVERY, case, "c", inbound_id=step.inbound.id)
        mailer.notice(Notice.STAFF_NEW_CASE, case, "s", inbound_id=step.inbound.id)
        step.done(Disposition.CASE, f"case {case.reference.upper()}: delivery case opened; relayed to the merchant", case_id=case.id)
        return
    move(step, case, EventKind.CATEGORY_PAYMENT, party="c")
    mailer.notice(Notice.STAFF_NEW_CASE, case, "s", inbound_id=step.inbound.id)
    for _, inbound in complaint:
        mailer.relay(case, inbound.raw, author="c", to_party="s", inbound_id=inbound.id)
    record.note(step, case, EventKind.RELAYED, party="c", to="s", messages=len(complaint))
    mailer.notice(Notice.ACK_PAYMENT, case, "c", inbound_id=step.inbound.id)
    step.done(Disposition.CASE, f"case {case.reference.upper()}: payment case opened with staff", case_id=case.id)


def _complaint(step: Step, case: Case) -> list[tuple[Message, Inbound]]:
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
