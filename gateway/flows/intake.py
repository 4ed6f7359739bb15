"""Mail to the intake address: check the transaction reference and the sender, then open
a case (or join the open one), or tell the sender what is missing."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError

from gateway import addresses, store
from gateway.cases.machine import CaseState
from gateway.flows import opening
from gateway.flows.step import Step
from gateway.mail import trust
from gateway.models import Case
from gateway.notices import Notice
from gateway.outgoing import clean_subject

_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{2,62}[A-Za-z0-9]")
MAX_TOKENS = 400


def reference_candidates(subject: str, text: str) -> list[str]:
    """Words that could be a transaction reference, in order of appearance."""
    tokens = _TOKEN_RE.findall(subject) + _TOKEN_RE.findall(text[:20_000])
    return list(dict.fromkeys(tokens))[:MAX_TOKENS]


def handle(step: Step, local_part: str) -> None:
    parsed = step.parsed
    if step.classification.automatic:
        step.done(f"unplaced: {step.classification.kind.value} to the intake ({step.classification.reason}); not answered")
        return
    sender = parsed.from_address
    if not sender:
        step.done("unplaced: intake mail without a readable From address")
        return
    candidates = reference_candidates(parsed.subject, parsed.new_text or parsed.text)
    found = store.transactions_by_keys(step.db, candidates)
    order = {c.lower(): i for i, c in enumerate(candidates)}
    owned = sorted((t for t in found if t.customer_email == sender), key=lambda t: order.get(t.reference_key, 0))
    if not owned:
        _unknown_reference(step, sender, had_candidate=bool(found))
        return
    tx = owned[0]
    category = step.settings.gateway.intake_local_parts.get(local_part)
    existing = store.open_case_for_transaction(step.db, tx.reference)
    if existing is not None:
        from gateway.flows import casemail  # the same path as a reply on the case

        casemail.handle(step, existing, "c", joined=True, category=category)
        return
    case = _new_case(step, tx, category)
    if case is None:  # another worker opened a case for this transaction a moment ago
        from gateway.flows import casemail

        casemail.handle(step, store.open_case_for_transaction(step.db, tx.reference), "c", joined=True,
                        category=category)
        return
    opening.open_case(step, case, first_message=True)


def _new_case(step: Step, tx, category: str | None) -> Case | None:
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
            subject=clean_subject(step.parsed.subject),
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


def _unknown_reference(step: Step, sender: str, *, had_candidate: bool) -> None:
    """Tell the sender the reference is missing or unknown; list only their own transactions.

    The notice goes to the From address only and never quotes the message (an attacker
    forging From can at most make us list a victim's transactions to that victim).
    """
    envelope_sender = step.inbound.mail_from.strip().strip("<>").lower()
    if envelope_sender != sender:
        # RFC 3834: answer the envelope sender. When it is not the From address (a forged
        # From on spam), answering either would send mail to a stranger: answer nobody.
        step.done("unplaced: intake mail without a known reference whose From differs from its envelope sender; "
                  "not answered (no backscatter)")
        return
    auth = trust.trusted_results(step.parsed.headers.get("authentication-results", ()),
                                 step.settings.hygiene.authserv_id)
    if auth is not None and auth.dmarc == "fail":
        step.done("unplaced: intake mail without a known reference that fails DMARC; not answered")
        return
    mine = store.recent_transactions(step.db, sender)
    context = {
        "reason": "unknown" if had_candidate else "missing",
        "transactions": [
            {"reference": t.reference, "merchant": _merchant_name(step, t.merchant_id), "date": t.transaction_date,
             "amount": t.amount, "currency": t.currency}
            for t in mine
        ],
        "intake_address": addresses.intake_address(step.settings.gateway.domain),
    }
    step.mailer.notice_outside_case(
        Notice.UNKNOWN_REFERENCE, sender, step.settings.gateway.default_locale, context,
        in_reply_to=step.parsed.message_id, inbound_id=step.inbound.id,
    )
    step.done(f"intake: reference {'unknown' if had_candidate else 'missing'}; sender told ({len(mine)} transactions listed)")


def _merchant_name(step: Step, merchant_id: str) -> str:
    merchant = store.merchant(step.db, merchant_id)
    return merchant.name if merchant else merchant_id
