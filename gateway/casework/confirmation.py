"""Asking the customer to confirm, from her own mailbox, what came in her name but not
verifiably from her (a stranger's envelope sender, a failing authentication, or the
`confirm` intake mode without authentication).

The question goes to her registered address, never to whoever sent the message, and
carries a Message-ID nobody else has seen: her reply to it (her mail client quotes that
Message-ID in In-Reply-To/References) is what opens the case, or releases a message held
on her open case. The sender of the unverified message gets nothing. At most one question
per hour per transaction (or case), so nobody can use us to flood her mailbox.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from gateway import store
from gateway.cases.machine import EventKind
from gateway.dispositions import Disposition
from gateway.casework import holding, record
from gateway.casework.record import record_inbound
from gateway.casework.work import Step
from gateway.mail import senders
from gateway.models import Case, Message, Outbox, Transaction
from gateway.notices import Notice

log = logging.getLogger(__name__)
QUESTION_EVERY = timedelta(hours=1)


def ask_before_opening(step: Step, tx: Transaction, reason: str) -> None:
    """An intake message in the customer's name that nothing verifies: it waits, and she is
    asked at her registered address whether she wrote it (no case yet)."""
    recent = step.db.scalar(select(Outbox.id).where(
        Outbox.kind == Notice.CONFIRM_COMPLAINT.value, Outbox.recipient == tx.customer_email,
        Outbox.case_id.is_(None), Outbox.created_at > step.now - QUESTION_EVERY).limit(1))
    if recent is None:
        merchant = store.merchant(step.db, tx.merchant_id)
        step.mailer.notice_outside_case(
            Notice.CONFIRM_COMPLAINT, tx.customer_email, tx.customer_locale or step.settings.gateway.default_locale,
            {"confirm": {"reference": tx.reference, "merchant": merchant.name if merchant else tx.merchant_id,
                         "date": tx.transaction_date, "received_at": step.inbound.received_at}},
            in_reply_to=None, inbound_id=step.inbound.id)
        asked = "she is asked to confirm from her own mailbox"
    else:
        asked = "she was asked within the hour already"
    log.info("inbound %s: intake message in the name of the customer of %s not verified: %s", step.inbound.id,
             tx.reference, reason)
    step.done(Disposition.INTAKE, f"intake: in the name of the customer of {tx.reference}, not verified ({reason}); waiting for "
              f"her to confirm ({asked}); the sender was told nothing")


def ask_before_relaying(step: Step, case: Case, reason: str) -> None:
    """An intake message about an open case that nothing verifies: held on the case, and the
    customer is asked, from her case address, whether she wrote it."""
    held = holding.hold(step, case, "c", f"came through the intake address, not verified ({reason}): "
                                         "waiting for the customer to confirm")
    recent = step.db.scalar(select(Outbox.id).where(
        Outbox.kind == Notice.CONFIRM_MESSAGE.value, Outbox.case_id == case.id,
        Outbox.created_at > step.now - QUESTION_EVERY).limit(1))
    if recent is None:
        step.mailer.notice(Notice.CONFIRM_MESSAGE, case, "c",
                           {"confirm": {"id": held.id, "subject": step.parsed.subject[:200],
                                        "received_at": step.inbound.received_at}},
                           inbound_id=step.inbound.id)
    step.done(Disposition.CASE, f"case {case.reference.upper()}: intake message held until the customer confirms it ({reason})",
              case_id=case.id)


def _question(step: Step, case: Case) -> Outbox | None:
    """Our "did you write this?" question on `case` that this message answers, if any."""
    ids = list(step.parsed.in_reply_to + step.parsed.references)[-50:]
    if not ids:
        return None
    return step.db.scalar(select(Outbox).where(
        Outbox.message_id.in_(ids), Outbox.kind == Notice.CONFIRM_MESSAGE.value, Outbox.case_id == case.id,
        Outbox.party == "c").order_by(Outbox.id.desc()).limit(1))


def vouches(step: Step, case: Case, party: str, check: senders.Check) -> senders.Check:
    """Her answer to our question proves her mailbox (only she received its Message-ID):
    a From that is exactly hers, with no failing authentication, counts as hers even when
    the envelope sender does not (the reason we asked)."""
    sender = step.sender
    if (check.trust is not senders.Trust.HOLD or party != "c" or sender is None
            or sender.address != case.customer_email or senders.authentication_fails(sender)):
        return check
    if _question(step, case) is None:
        return check
    return senders.Check(senders.Trust.ACCEPT_FLAGGED, "her answer to our confirmation request")


def answers_request(step: Step, case: Case, party: str) -> list[int]:
    """The held messages a customer's answer to our question releases (her answer itself is
    recorded, not relayed: it answers us). Empty when the message answers no question."""
    if party != "c":
        return []
    question = _question(step, case)
    if question is None or question.inbound_id is None:
        return []
    held = list(step.db.scalars(select(Message.id).where(
        Message.case_id == case.id, Message.inbound_id == question.inbound_id, Message.held.is_(True),
        Message.released_at.is_(None))))
    reply = record_inbound(step, case, "c", kind="confirmation", in_thread=True)
    record.note(step, case, EventKind.CUSTOMER_CONFIRMED, party="c", message=reply, held_ids=held)
    return held
