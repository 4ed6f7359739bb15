"""Mail from a party on a case: sender check, then relay to whoever must read it."""

from __future__ import annotations

from datetime import timedelta
from typing import Callable

from sqlalchemy import bindparam, func, select

from gateway import addresses, rights, store
from gateway.dispositions import Disposition
from gateway.addresses import PARTY_NAMES
from gateway.cases import commands as command_reader
from gateway.cases.machine import CaseState, EventKind
from gateway.casework import confirmation, delivery_trouble, holding, lifecycle, opening, readers, record, staff_commands
from gateway.casework.record import move, record_inbound
from gateway.casework.work import Step
from gateway.mail import senders
from gateway.mail.classify import Kind
from gateway.mail.senders import Trust
from gateway.mail.rewrite import remove_lines
from gateway.models import Case, Message
from gateway.notices import Notice


def registered_addresses(step: Step, case: Case, party: str) -> list[str]:
    if party == "c":
        return [case.customer_email]
    if party == "m":
        merchant = step.parties.merchant_of(case)
        return [merchant.support_email] if merchant else []
    return list(step.settings.gateway.staff_addresses)


def handle(step: Step, case: Case, party: str, *, joined: bool = False, category: str | None = None) -> None:
    """Handle a message written by `party` on `case` (joined: it came through the intake,
    whose alias may name the `category`, and it passed the intake's sender check).

    Who wrote it is established before anything is acted on: a message that is not the
    party's is kept and held (or rejected), and counts for nothing: no relay, no command,
    no closing, no escalation, no timer effect, no flood freeze. The `GATES` run in order;
    the first that settles the message ends it."""
    for gate in GATES.values():
        if gate(step, case, party):
            return
    if party == "c":
        _from_customer(step, case, joined, category)
    else:
        {"m": _from_merchant, "s": staff_commands.handle}[party](step, case, joined)




def _loop(step: Step, case: Case, party: str) -> bool:
    """Our own mail came back: recorded, dropped."""
    if step.classification.kind is not Kind.LOOP:
        return False
    message = record_inbound(step, case, party, kind="loop")
    record.note(step, case, EventKind.LOOP_DROPPED, party=party, message=message, reason=step.classification.reason)
    step.done(Disposition.CASE, f"case {case.reference.upper()}: our own mail came back; recorded, dropped", case_id=case.id)
    return True


def _automatic(step: Step, case: Case, party: str) -> bool:
    """An auto-reply, a challenge, a list message: recorded, never relayed."""
    if not step.classification.automatic:
        return False
    kind = step.classification.kind
    message = record_inbound(step, case, party, kind=kind.value)
    record.note(step, case, EventKind.recorded(kind.value), party=party, message=message, reason=step.classification.reason)
    step.done(Disposition.CASE, f"case {case.reference.upper()}: {kind.value} from the {PARTY_NAMES[party]} recorded, not relayed",
              case_id=case.id)
    return True


def _rejected(step: Step, case: Case, party: str) -> bool:
    """The sender check (made here, once): a message it rejects is kept and counts for nothing."""
    verdict = step.check = party_check(step, case, party)
    if verdict.trust is not Trust.REJECT:
        return False
    message = record_inbound(step, case, party, held_reason=verdict.reason)
    record.note(step, case, EventKind.MESSAGE_REJECTED, party=party, message=message, reason=verdict.reason)
    step.done(Disposition.CASE, f"case {case.reference.upper()}: rejected: {verdict.reason}", case_id=case.id)
    return True


def _held(step: Step, case: Case, party: str) -> bool:
    """Not verifiably the party's: held for staff. Accepted but not verified: noted, goes on."""
    verdict = step.check
    if verdict.trust is Trust.HOLD:
        holding.hold(step, case, party, verdict.reason)
        return True
    if verdict.trust is Trust.ACCEPT_FLAGGED:
        record.note(step, case, EventKind.SENDER_UNVERIFIED, party=party, reason=verdict.reason)
    return False


def _confirms(step: Step, case: Case, party: str) -> bool:
    """Her answer to "did you write this?": the held messages it names are released."""
    confirmed = confirmation.answers_request(step, case, party)
    if not confirmed:
        return False
    for held_id in confirmed:
        holding.release(step, case, held_id, by="c")
    step.done(Disposition.CASE, f"case {case.reference.upper()}: the customer confirmed held message(s) "
              f"{', '.join(f'#{i}' for i in confirmed)}; released", case_id=case.id)
    return True


def _closed(step: Step, case: Case, party: str) -> bool:
    """Mail to a closed case: recorded, the sender told (staff may #reopen or #export)."""
    if case.state != CaseState.CLOSED.value or party == "s" and (_reopens(step) or _exports(step)):
        return False
    message = record_inbound(step, case, party)
    record.note(step, case, EventKind.MAIL_TO_CLOSED_CASE, party=party, message=message)
    if party != "s":
        sent = step.mailer.notice(Notice.CLOSED_CASE_REPLY, case, party,
                                  {"intake_address": addresses.intake_address(step.settings.gateway.domain)},
                                  inbound_id=step.inbound.id, only_to=step.parsed.from_address)
        told = "sender told" if sent else "sender not told (no address to answer)"
    else:
        staff_commands.tell_staff(step, case, "the case is closed; start your message with #reopen to act on it")
        told = "sender told"
    step.done(Disposition.CASE, f"case {case.reference.upper()}: closed; message recorded, not relayed; {told}", case_id=case.id)
    return True


def _frozen(step: Step, case: Case, party: str) -> bool:
    """A frozen case keeps what comes in, unless staff #unfreeze it or the sender is authenticated."""
    unfreezes = party == "s" and command_reader.read(step.parsed.new_text).first("unfreeze")
    if not case.frozen or unfreezes or step.check.authenticated:
        return False
    message = record_inbound(step, case, party)
    record.note(step, case, EventKind.FROZEN_MESSAGE_KEPT, party=party, message=message)
    step.done(Disposition.CASE, f"case {case.reference.upper()}: frozen; message recorded, not relayed", case_id=case.id)
    return True


def party_check(step: Step, case: Case, party: str) -> senders.Check:
    """Whether the message is the party's: From and envelope sender, or authentication
    (gateway/mail/senders.py). An intake message that joins the case was checked there."""
    sender = step.sender
    if sender is None:  # a message read without its envelope (never in the pipeline)
        return senders.Check(Trust.HOLD, "no sender information")
    policy = step.settings.gateway.sender_policy
    check = senders.check(sender, registered_addresses(step, case, party), policy.for_party(party),
                          shared_domains=policy.shared_domains)
    return confirmation.vouches(step, case, party, check)


def _reopens(step: Step) -> bool:
    return command_reader.read(step.parsed.new_text).first("reopen") is not None


def _exports(step: Step) -> bool:
    return command_reader.read(step.parsed.new_text).first("export") is not None


# held mail never counts: an outsider's flood cannot silence the parties
_RECENT_MESSAGES_IN = select(func.count()).select_from(Message).where(
    Message.case_id == bindparam("case_id"), Message.direction == "in", Message.created_at >= bindparam("since"),
    Message.held.is_(False))


def _frozen_by_flood(step: Step, case: Case, party: str) -> bool:
    """Freeze a case that receives more messages than a person writes (a loop or a flood)."""
    hygiene = step.settings.hygiene
    if case.frozen:
        return False  # already frozen: the frozen branch below records the message
    since = step.now - timedelta(minutes=hygiene.freeze_window_minutes)
    recent = step.db.scalar(_RECENT_MESSAGES_IN, {"case_id": case.id, "since": since}) or 0
    if recent + 1 <= hygiene.freeze_after_messages:
        return False
    message = record_inbound(step, case, party)
    record.flag(step, case, EventKind.CASE_FROZEN, party=party, message=message, messages=recent + 1,
                window_minutes=hygiene.freeze_window_minutes)
    step.mailer.notice(Notice.STAFF_CASE_FROZEN, case, "s",
                       {"frozen": {"count": recent + 1, "window_minutes": hygiene.freeze_window_minutes}},
                       inbound_id=step.inbound.id)
    step.done(Disposition.CASE, f"case {case.reference.upper()}: frozen after {recent + 1} messages in {hygiene.freeze_window_minutes} min",
              case_id=case.id)
    return True


INFER_TYPE_MESSAGES = 3  # the problem is described early; later messages are not re-read for it


_CUSTOMER_MESSAGES = select(func.count()).select_from(Message).where(
    Message.case_id == bindparam("case_id"), Message.direction == "in", Message.party == "c")


def _customer_message_count(step: Step, case: Case) -> int:
    with step.db.no_autoflush:  # messages are in the database as soon as they are added (store.add_message)
        return step.db.scalar(_CUSTOMER_MESSAGES, {"case_id": case.id}) or 0


def _from_customer(step: Step, case: Case, joined: bool, category_hint: str | None = None) -> None:
    message = record_inbound(step, case, "c")
    record.received(step, case, "c", message, joined=joined)
    if case.state == CaseState.NEEDS_INFO.value:
        if command_reader.read(step.parsed.new_text).first("resolved"):
            lifecycle.close(step, case, EventKind.RESOLVED, party="c", inbound_id=step.inbound.id)
            step.done(Disposition.CASE, f"case {case.reference.upper()}: closed by the customer (#resolved) before it was routed",
                      case_id=case.id)
            return
        category = category_hint or opening.category_answer(step.parsed.new_text or step.parsed.subject)
        if category is None:
            step.mailer.notice(Notice.ASK_CATEGORY, case, "c", inbound_id=step.inbound.id)
            step.done(Disposition.CASE, f"case {case.reference.upper()}: category still unknown; asked again", case_id=case.id)
            return
        record.set_category(case, category)
        opening.open_case(step, case, first_message=False)
        return
    if case.dispute_type == "other" and _customer_message_count(step, case) <= INFER_TYPE_MESSAGES:
        record.set_dispute_type(case, rights.infer_type(f"{case.subject}\n{step.parsed.new_text}"))
    found = command_reader.read(step.parsed.new_text)
    resolved, escalate = found.first("resolved"), found.first("escalate")
    targets = readers.readers_of(step, case, "c", escalating=bool(escalate))
    if (resolved or escalate) and not found.body:
        sent = []  # a bare command: nothing to pass on
    else:
        sent = readers.relay_to(step, case, "c", targets, transform=remove_lines(found.lines_removed) if found.commands else None)
    if resolved:
        lifecycle.close(step, case, EventKind.RESOLVED, party="c", inbound_id=step.inbound.id)
        step.done(Disposition.CASE, f"case {case.reference.upper()}: closed by the customer (#resolved)", case_id=case.id)
        return
    if escalate:
        lifecycle.escalate(step, case, reason="customer_request", party="c", inbound_id=step.inbound.id)
        step.done(Disposition.CASE, f"case {case.reference.upper()}: escalated by the customer (#escalate)", case_id=case.id)
        return
    move(step, case, EventKind.CUSTOMER_REPLIED, party="c", message=message)
    step.done(Disposition.CASE, f"case {case.reference.upper()}: customer message relayed to {','.join(sent) or 'nobody'}", case_id=case.id)


def _from_merchant(step: Step, case: Case, joined: bool) -> None:
    message = record_inbound(step, case, "m")
    record.received(step, case, "m", message)
    merchant = step.parties.merchant_of(case)
    if merchant is not None and merchant.trouble_since is not None:  # its own mail reached us: it gets ours
        delivery_trouble.clear(merchant)
        record.note(step, case, EventKind.DELIVERY_TROUBLE_CLEARED, party="m", by="merchant reply")
    sent = readers.relay_to(step, case, "m", readers.readers_of(step, case, "m"))
    move(step, case, EventKind.MERCHANT_REPLIED, party="m", message=message)
    step.done(Disposition.CASE, f"case {case.reference.upper()}: merchant message relayed to {','.join(sent) or 'nobody'}", case_id=case.id)


# The gates a party's message passes, in order; each returns True when it settled the message.
GATES: dict[str, Callable[[Step, Case, str], bool]] = {
    "loop": _loop,
    "automatic": _automatic,
    "rejected": _rejected,
    "held": _held,
    "confirms": _confirms,
    "closed": _closed,
    "frozen": _frozen,
    "flood": _frozen_by_flood,
}
