"""What a case looks like from outside: to the provider's API (every party's own words, no
real address) and to one party on its status page (the conversation as that party sees it).
Reads only; nothing staff-only (held mail, staff notes, sender checks) is ever shown."""

from __future__ import annotations

import re
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway import addresses
from gateway.mail.scrub import LABELS, AddressScrubber
from gateway.models import Case, Event, Merchant, Message, Outbox
from gateway.settings import Settings

PARTY = {"c": "customer", "m": "merchant", "s": "staff"}
MUST_ACT = {"needs_info": "c", "awaiting_merchant": "m", "awaiting_customer": "c", "with_staff": "s", "closed": None}
_ADDRESS_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# case events the provider may see (the rest are staff-only or mail plumbing)
PUBLIC_EVENTS = frozenset({
    "case_opened", "category_delivery", "category_payment", "customer_replied", "merchant_replied", "staff_wrote",
    "escalated", "merchant_bounced", "resolved", "staff_closed", "expired", "reopened", "notice_sent", "relayed",
})


def scrubber_for(db: Session, case: Case, settings: Settings, *, keep: str | None, locale: str) -> AddressScrubber:
    """The relay's own scrubber for what is shown of `case`: the parties' and staff's real
    addresses in every written form, and the case addresses (this case's become `keep`)."""
    merchant = db.get(Merchant, case.merchant_id)
    hidden = [case.customer_email, merchant.support_email if merchant else "", *settings.gateway.staff_addresses]
    return AddressScrubber.build(hidden, domain=settings.gateway.domain, case_reference=case.reference,
                                 own_address=keep or "", locale=locale)


def hide_addresses(text: str, scrubber: AddressScrubber, *, keep: str | None = None, locale: str = "en") -> str:
    """`text` as the relay would show it (`scrubber`), then every other plain email address
    but `keep` (the reader's own case address) replaced too."""
    hidden = LABELS.get(locale, LABELS["en"])
    text = scrubber.text(text)
    return _ADDRESS_RE.sub(lambda m: m.group(0) if keep and m.group(0).lower() == keep.lower() else hidden, text)


def summary(case: Case) -> dict:
    return {
        "reference": case.reference.upper(), "transaction_reference": case.transaction_reference,
        "merchant_id": case.merchant_id, "category": case.category, "state": case.state,
        "must_act": PARTY.get(MUST_ACT.get(case.state)), "escalated": bool(case.escalated),
        "opened_at": case.opened_at, "closed_at": case.closed_at,
    }


def conversation(db: Session, case: Case, viewer: str | None, settings: Settings, *, keep: str | None = None,
                 locale: str = "en") -> list[dict]:
    """The messages of `case`, oldest first, as `viewer` ("c", "m") sees them: its own, the
    others' that were relayed to it, and the notices it was sent. `viewer` None (the
    provider): every party's messages that reached another party or were its own, no notices."""
    scrubber = scrubber_for(db, case, settings, keep=keep, locale=locale)
    relayed_to: dict[int, set[str]] = {}
    for inbound_id, party in db.execute(select(Outbox.inbound_id, Outbox.party).where(
            Outbox.case_id == case.id, Outbox.kind == "relay", Outbox.inbound_id.is_not(None))):
        relayed_to.setdefault(inbound_id, set()).add(party)
    found = []
    for message in db.scalars(select(Message).where(Message.case_id == case.id).order_by(Message.created_at,
                                                                                       Message.id)):
        if message.held and message.released_at is None:
            continue
        if message.direction == "out":
            if viewer is None or message.party != viewer:
                continue
            found.append({"at": message.created_at, "author": "staff", "direction": "out",
                          "subject": message.subject, "text": ""})
            continue
        if message.kind != "human":
            continue
        reached = relayed_to.get(message.inbound_id or -1, set())
        own = message.party == viewer
        if viewer is None:
            visible = message.party in ("c", "m") or bool(reached & {"c", "m"})
        else:
            visible = own or viewer in reached
        if not visible:
            continue
        found.append({"at": message.created_at, "author": PARTY[message.party], "direction": "in",
                      "subject": hide_addresses(message.subject, scrubber, keep=keep, locale=locale),
                      "text": hide_addresses(message.new_text, scrubber, keep=keep, locale=locale)})
    return found


def detail(db: Session, case: Case, settings: Settings) -> dict:
    """The API's view of one case."""
    gateway = settings.gateway
    history = [{"at": e.at, "kind": e.kind, "party": PARTY.get(e.party) if e.party else None,
                "notice": (e.detail or {}).get("notice")}
               for e in db.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.at, Event.id))
               if e.kind in PUBLIC_EVENTS and (e.detail or {}).get("applied", True)]
    return {
        **summary(case),
        "dispute_type": case.dispute_type, "merchant_unreachable": bool(case.merchant_unreachable),
        "closed_reason": case.closed_reason, "waiting_since": case.waiting_since, "next_due_at": case.next_due_at,
        "customer_address": addresses.case_address(case.reference, "c", domain=gateway.domain,
                                                   keys=gateway.secret_keys),
        "history": history,
        "messages": conversation(db, case, None, settings),
    }


def listing(db: Session, where, *, limit: int, offset: int) -> dict:
    total = db.scalar(select(func.count()).select_from(Case).where(where)) or 0
    cases = db.scalars(select(Case).where(where).order_by(Case.opened_at.desc(), Case.id.desc())
                       .limit(limit).offset(offset))
    return {"items": [summary(c) for c in cases], "total": total, "limit": limit, "offset": offset}
