"""Mail to the intake address: check the transaction reference and the sender, then open
a case (or join the open one), or tell the sender what is missing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway import addresses, store
from gateway.dispositions import Disposition
from gateway.cases.machine import CaseState
from gateway.casework import confirmation, opening, party_mail
from gateway.casework.work import Step
from gateway.mail import senders
from gateway.mail.parse import ParsedMessage, parse
from gateway.models import Case, Inbound, Outbox
from gateway.notices import Notice
from gateway.outbox.context import clean_subject

_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{2,62}[A-Za-z0-9]")
MAX_TOKENS = 400
UNKNOWN_REFERENCE_LOOKBACK_DAYS = 30  # a reply to our "which transaction?" answer older than this starts afresh
# What a transaction reference looks like when none matches: a letter and three digits at
# least ("TX-9999", "FR123456"); dates, amounts and words do not ("2026-11-20", "49.90").
_REFERENCE_SHAPE = re.compile(r"^(?=(?:\D*\d){3})(?=.*[A-Za-z])")


def reference_candidates(subject: str, text: str) -> list[str]:
    """Words that could be a transaction reference, in order of appearance."""
    tokens = _TOKEN_RE.findall(subject) + _TOKEN_RE.findall(text[:20_000])
    return list(dict.fromkeys(tokens))[:MAX_TOKENS]


def looks_like_reference(token: str) -> bool:
    """Whether an unmatched word was meant as a reference (answered "unknown", not "missing")."""
    return bool(_REFERENCE_SHAPE.match(token))


def handle(step: Step, local_part: str) -> None:
    parsed = step.parsed
    if step.classification.automatic:
        step.done(Disposition.UNPLACED, f"unplaced: {step.classification.kind.value} to the intake ({step.classification.reason}); not answered")
        return
    sender = parsed.from_address
    if not sender:
        step.done(Disposition.UNPLACED, "unplaced: intake mail without a readable From address")
        return
    earlier, confirmed = earlier_attempts(step, sender)  # what she wrote before we asked her something
    candidates = reference_candidates(parsed.subject, parsed.new_text or parsed.text)
    for attempt in earlier:
        candidates += reference_candidates(attempt.parsed.subject, attempt.parsed.new_text)
    found = store.transactions_by_keys(step.db, candidates)
    order = {c.lower(): i for i, c in enumerate(candidates)}
    owned = sorted((t for t in found if t.customer_email == sender), key=lambda t: order.get(t.reference_key, 0))
    if not owned:
        _unknown_reference(step, sender, unknown=bool(found) or any(looks_like_reference(c) for c in candidates))
        return
    tx = owned[0]
    category = step.settings.gateway.intake_local_parts.get(local_part)
    for attempt in reversed(earlier):  # the alias she first wrote to says payment or delivery
        category = category or attempt.category
    check = step.check = _customer_check(step, tx, confirmed)
    existing = store.open_case_for_transaction(step.db, tx.reference)
    if existing is not None:
        _join(step, existing, check, category)
        return
    if not check.is_party:
        confirmation.ask_before_opening(step, tx, check.reason)
        return
    subject = earlier[0].parsed.subject if earlier else parsed.subject
    case = _new_case(step, tx, category, subject)
    if case is None:  # another worker opened a case for this transaction a moment ago
        _join(step, store.open_case_for_transaction(step.db, tx.reference), check, category)
        return
    opening.open_case(step, case, first_message=True, earlier=[(a.inbound, a.parsed) for a in earlier],
                      kind="confirmation" if confirmed else "human")


def _customer_check(step: Step, tx, confirmed: bool) -> senders.Check:
    """Whether the intake message is the transaction's customer's own: her From and envelope
    sender (or authentication vouching for her From), or her answer to our confirmation
    request; under the `confirm` intake mode, only authentication or her answer."""
    sender = step.sender
    if sender is None:
        return senders.Check(senders.Trust.HOLD, "no sender information")
    if confirmed and not senders.authentication_fails(sender):
        return senders.Check(senders.Trust.ACCEPT_FLAGGED, "her answer to our confirmation request", authenticated=True)
    policy = step.settings.gateway.sender_policy
    check = senders.check(sender, [tx.customer_email], "strict", shared_domains=policy.shared_domains)
    if check.is_party and not check.authenticated and policy.intake == "confirm":
        return senders.Check(senders.Trust.HOLD, "nothing authenticates the From (the confirm intake mode asks)")
    return check


def _join(step: Step, case: Case, check: senders.Check, category: str | None) -> None:
    """A second intake message about an open case joins it only when authentication (or her
    answer to our question) vouches for it; otherwise it is held and she is asked, from her
    case address, whether she wrote it."""
    if check.is_party and check.authenticated:
        party_mail.handle(step, case, "c", joined=True, category=category)  # the same path as a reply on the case
        return
    confirmation.ask_before_relaying(step, case, check.reason if not check.is_party else
                                     "it did not come through the case address and nothing authenticates it")


@dataclass(frozen=True)
class EarlierAttempt:
    """An intake message of the same sender that we answered "which transaction?"."""

    inbound: Inbound
    parsed: ParsedMessage
    category: str | None


MAX_EARLIER = 5  # messages followed back through our "which transaction?" answers


def earlier_attempts(step: Step, sender: str) -> tuple[list[EarlierAttempt], bool]:
    """The sender's earlier intake messages this one answers, oldest first, and whether one
    of our questions it answers was "did you write this?" (`confirmed`: only the
    registered customer received it). Each earlier message was answered with an
    unknown-reference notice or a confirmation request to `sender`, which this message (or
    one further along the chain) replies to. Her first complaint then opens the case with
    its subject and is relayed, not only the reply that named the reference."""
    found: list[EarlierAttempt] = []
    confirmed = False
    ids = list(step.parsed.in_reply_to + step.parsed.references)
    since = step.now - timedelta(days=UNKNOWN_REFERENCE_LOOKBACK_DAYS)
    questions = (Notice.UNKNOWN_REFERENCE.value, Notice.CONFIRM_COMPLAINT.value)
    seen: set[int] = set()
    while ids and len(found) < MAX_EARLIER:
        notice = step.db.scalar(
            select(Outbox).where(Outbox.message_id.in_(ids[-50:]), Outbox.kind.in_(questions),
                                 Outbox.case_id.is_(None), Outbox.recipient == sender, Outbox.created_at >= since)
            .order_by(Outbox.id.desc()).limit(1))
        if notice is None or notice.inbound_id is None or notice.inbound_id in seen:
            break
        seen.add(notice.inbound_id)
        inbound = step.db.get(Inbound, notice.inbound_id)
        if inbound is None or inbound.case_id is not None:
            break
        parsed = parse(inbound.raw, step.settings.hygiene.limits)
        if parsed.from_address != sender:
            break
        confirmed = confirmed or notice.kind == Notice.CONFIRM_COMPLAINT.value
        local_parts = [r.split("@", 1)[0].lower() for r in inbound.rcpt_tos]
        category = next((step.settings.gateway.intake_local_parts.get(lp) for lp in local_parts
                         if step.settings.gateway.intake_local_parts.get(lp)), None)
        found.append(EarlierAttempt(inbound, parsed, category))
        ids = list(parsed.in_reply_to + parsed.references)
    return list(reversed(found)), confirmed


def _new_case(step: Step, tx, category: str | None, subject: str) -> Case | None:
    """A new open case for `tx`, or None when one was opened concurrently (unique index)."""
    for _ in range(5):
        case = Case(
            reference=addresses.random_base32(addresses.REFERENCE_CHARS),
            transaction_reference=tx.reference,
            merchant_id=tx.merchant_id,
            customer_email=tx.customer_email,
            category=category,
            dispute_type="other",
            state=CaseState.NEEDS_INFO.value,
            escalated=False,
            merchant_unreachable=False,
            frozen=False,
            subject=clean_subject(subject),
            customer_locale=tx.customer_locale or step.settings.gateway.default_locale,
            opened_at=step.now,
            waiting_since=step.now,
            last_customer_message_at=step.now,
            transaction_date=tx.transaction_date,
        )
        try:
            with step.db.begin_nested():
                step.db.add(case)
                step.db.flush()
            return case
        except IntegrityError:
            if store.open_case_for_transaction(step.db, tx.reference) is not None:
                return None
            continue  # reference collision (40 random bits): draw again
    raise RuntimeError("could not draw a unique case reference")


def _unknown_reference(step: Step, sender: str, *, unknown: bool) -> None:
    """Tell the sender the reference is missing or unknown; list only their own transactions.

    The notice goes to the From address only and never quotes the message (an attacker
    forging From can at most make us list a victim's transactions to that victim).
    """
    envelope_sender = step.inbound.mail_from.strip().strip("<>").lower()
    if envelope_sender != sender:
        # RFC 3834: answer the envelope sender. When it is not the From address (a forged
        # From on spam), answering either would send mail to a stranger: answer nobody.
        step.done(Disposition.UNPLACED, "unplaced: intake mail without a known reference whose From differs from its envelope sender; "
                  "not answered (no backscatter)")
        return
    if step.sender is not None and senders.authentication_fails(step.sender):
        step.done(Disposition.UNPLACED, "unplaced: intake mail without a known reference that fails DMARC; not answered")
        return
    mine = store.recent_transactions(step.db, sender)
    context = {
        "reason": "unknown" if unknown else "missing",
        "transactions": [
            {"reference": t.reference, "merchant": _merchant_name(step, t.merchant_id), "date": t.transaction_date,
             "amount": t.amount, "currency": t.currency}
            for t in mine
        ],
        "intake_address": addresses.intake_address(step.settings.gateway.domain),
    }
    sent = step.mailer.notice_outside_case(
        Notice.UNKNOWN_REFERENCE, sender, step.settings.gateway.default_locale, context,
        in_reply_to=step.parsed.message_id, inbound_id=step.inbound.id,
    )
    reference = f"reference {'unknown' if unknown else 'missing'}"
    if sent is None:
        step.done(Disposition.INTAKE, f"intake: {reference}; answer suppressed (the per-address limit of automatic answers is reached; "
                  "staff are told)")
        return
    step.done(Disposition.INTAKE, f"intake: {reference}; sender told ({len(mine)} transactions listed)")


def _merchant_name(step: Step, merchant_id: str) -> str:
    merchant = store.merchant(step.db, merchant_id)
    return merchant.name if merchant else merchant_id
