"""What administrators read: cases, one case's full history, merchants. Dicts for --json,
text for a terminal."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway import store
from gateway.addresses import PARTY_NAMES
from gateway.casework import schedule
from gateway.display import UTC_DISPLAY, table
from gateway.evidence import collect
from gateway.models import Bounce, Case, Event, Inbound, Merchant, Message, Outbox

PARTY_ROLES = {"c": "customer", "m": "merchant", "s": "staff"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def case_summary(case: Case) -> dict:
    return {
        "reference": case.reference.upper(),
        "state": case.state,
        "category": case.category,
        "dispute_type": case.dispute_type,
        "escalated": case.escalated,
        "merchant_unreachable": case.merchant_unreachable,
        "frozen": case.frozen,
        "closed_reason": case.closed_reason,
        "customer_email": case.customer_email,
        "merchant_id": case.merchant_id,
        "transaction_reference": case.transaction_reference,
        "subject": case.subject,
        "transaction_date": _iso(case.transaction_date),
        "opened_at": _iso(case.opened_at),
        "closed_at": _iso(case.closed_at),
        "next_due_at": _iso(case.next_due_at),
    }


def list_cases(db: Session, *, state: str | None = None) -> list[dict]:
    query = select(Case).order_by(Case.opened_at.desc(), Case.id.desc())
    if state:
        query = query.where(Case.state == state)
    return [case_summary(c) for c in db.scalars(query)]


def show_case(db: Session, reference: str, *, settings=None, evidence: bool = False) -> dict | None:
    """A case with its history; with `settings`, also the timers still to come; with
    `evidence`, the facts found in the parties' messages and what the type still needs."""
    case = db.scalar(select(Case).where(Case.reference == reference.strip().lower()))
    if case is None:
        return None
    if settings is not None:
        upcoming = schedule.upcoming(db, case, settings)
    else:
        upcoming = None
    messages = {m.id: m for m in db.scalars(select(Message).where(Message.case_id == case.id).order_by(Message.id))}
    events = []
    for event in db.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.at, Event.id)):
        entry = {"kind": event.kind, "at": _iso(event.at), "party": event.party, "detail": event.detail or {}}
        if event.message_id and event.message_id in messages:
            message = messages[event.message_id]
            entry["message"] = {"id": message.id, "direction": message.direction, "kind": message.kind,
                                "subject": message.subject, "text": message.new_text}
        events.append(entry)
    held = [
        {"id": m.id, "party": m.party, "subject": m.subject, "reason": m.held_reason, "at": _iso(m.created_at),
         "released_at": _iso(m.released_at), "sender": m.sender or {}}
        for m in messages.values() if m.held
    ]
    bounces = [
        {"recipient": b.recipient, "kind": b.kind, "reason": b.reason, "status": b.status, "diagnostic": b.diagnostic,
         "detected_by": b.detected_by, "at": _iso(b.created_at)}
        for b in db.scalars(select(Bounce).where(Bounce.case_id == case.id).order_by(Bounce.id))
    ]
    found = {}
    if evidence:
        facts = collect.case_evidence(db, case, timezone=settings.timers.timezone if settings else "UTC")
        found = {"evidence": [f.as_dict() for f in facts], "missing_evidence": collect.missing(case, facts)}
    return {**case_summary(case), "events": events, "held_messages": held, "bounces": bounces,
            **({"upcoming_timers": upcoming} if upcoming is not None else {}), **found,
            "messages": [{"id": m.id, "direction": m.direction, "party": m.party, "kind": m.kind,
                          "subject": m.subject, "held": m.held, "at": _iso(m.created_at)} for m in messages.values()]}


def show_merchant(db: Session, merchant_id: str) -> dict | None:
    merchant = db.get(Merchant, merchant_id)
    if merchant is None:
        return None
    open_cases = db.scalars(select(Case.reference).where(Case.merchant_id == merchant_id, Case.state != "closed"))
    return {
        "merchant_id": merchant.merchant_id,
        "name": merchant.name,
        "support_email": merchant.support_email,
        "locale": merchant.locale,
        "address_status": "invalid" if merchant.address_invalid else "ok",
        "address_invalid_reason": merchant.address_invalid_reason,
        "address_invalid_at": _iso(merchant.address_invalid_at),
        "delivery_trouble": merchant.trouble_reason if merchant.trouble_since else None,
        "trouble_since": _iso(merchant.trouble_since),
        "trouble_reports": merchant.trouble_reports or 0,
        "unreachable_at": _iso(merchant.unreachable_at),
        "open_cases": [r.upper() for r in open_cases],
    }


def format_case_list(cases: list[dict], display=None) -> str:
    """The `cases list` table; times in `display`'s zone ([timers] timezone)."""
    return table(cases, ("reference", "state", "category", "escalated", "merchant_id", "opened_at", "subject"),
                 display=display or UTC_DISPLAY, empty="no cases")


_CASE_FIELDS = ("state", "category", "dispute_type", "escalated", "merchant_unreachable", "frozen", "closed_reason",
                "customer_email", "merchant_id", "transaction_reference", "transaction_date", "opened_at", "closed_at",
                "next_due_at")


def format_case(case: dict, display=None) -> str:
    """`cases show` as text; every time in `display`'s zone ([timers] timezone), with it."""
    show = display or UTC_DISPLAY
    lines = [f"Case {case['reference']}: {case['subject']}"]
    for key in _CASE_FIELDS:
        value = case.get(key)
        if key == "transaction_date" and value:
            value = show.date(value)
        lines.append(f"  {key.replace('_', ' ') + ':':24}{show.value(value, key)}")
    lines.append("History:")
    for event in case["events"]:
        detail = show.value(event["detail"])
        party = PARTY_NAMES.get(event["party"] or "", event["party"] or "-")
        lines.append(f"  {show.time(event['at'])}  {event['kind']:24} {party:9} {detail if detail != '-' else ''}"
                     .rstrip())
        if "message" in event and event["message"]["text"]:
            for text_line in event["message"]["text"].splitlines()[:20]:
                lines.append(f"      | {text_line}")
    if case["held_messages"]:
        lines.append("Held messages (release with #release <id> from the staff address):")
        for held in case["held_messages"]:
            state = f"released {show.time(held['released_at'])}" if held["released_at"] else "held"
            lines.append(f"  #{held['id']} from the {PARTY_NAMES.get(held['party'], held['party'])} side: "
                         f"{held['reason']} [{state}]")
            sender = held.get("sender") or {}
            if sender:
                auth = sender.get("authentication") or {}
                shown = ", ".join(f"{k}={v}" for k, v in auth.items() if k in ("dmarc", "spf", "dkim") and v)
                name = f"{sender.get('from_name')} " if sender.get("from_name") else ""
                lines.append(f"      From {name}<{sender.get('from', '')}>, envelope sender "
                             f"{sender.get('envelope_sender', '')}, authentication: {shown or 'none reported'}")
    if case["bounces"]:
        lines.append("Bounces:")
        for bounce in case["bounces"]:
            lines.append(f"  {show.time(bounce['at'])}  {bounce['kind']} ({bounce['reason']}) {bounce['recipient']} "
                         f"{bounce['status'] or ''} ({bounce['detected_by']}) {bounce['diagnostic'] or ''}"[:200].rstrip())
    if "evidence" in case:
        lines.append("Evidence found in the parties' messages:" if case["evidence"] else "Evidence: none recognised yet")
        for fact in case["evidence"]:
            what = fact["kind"].replace("_", " ")
            extra = "".join(f" ({x})" for x in (fact["carrier"] if fact["kind"] != "carrier" else None,
                                                fact["qualifier"]) if x)
            source = "text" if fact["source"] == "text" else f"attachment {fact['source']}"
            lines.append(f"  {what}: {fact['value']}{extra}  [{PARTY_ROLES.get(fact['party'], fact['party'])}, "
                         f"message #{fact['message']} of {show.time(fact['at'])}, {source}]")
        if case["missing_evidence"]:
            lines.append(f"Still missing for a {case['dispute_type'].replace('_', ' ')} dispute: "
                         + ", ".join(m.replace("_", " ") for m in case["missing_evidence"]))
    if case.get("upcoming_timers"):
        lines.append("Upcoming timers (what runs when, if nothing happens first; a day alone: during that day):")
        times = [show.time(timer["at"]) for timer in case["upcoming_timers"]]
        width = max(len(t) for t in times)
        for at, timer in zip(times, case["upcoming_timers"]):
            lines.append(f"  {at:{width}}  {timer['kind'].replace('_', ' ')} {timer['sequence']}")
    return "\n".join(lines)


QUARANTINE_PAGE = 50


def list_quarantine(db: Session, *, page: int = 1, per_page: int = QUARANTINE_PAGE) -> dict:
    """Messages that failed processing, and mail the gateway could not place, newest first,
    one page at a time: {"total", "page", "pages", "per_page", "messages"}."""
    kept = store.kept_for_staff()
    total = db.scalar(select(func.count()).select_from(Inbound).where(kept)) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    query = select(Inbound).where(kept).order_by(Inbound.id.desc()).offset((page - 1) * per_page).limit(per_page)
    return {"total": total, "page": page, "pages": pages, "per_page": per_page,
            "messages": [_inbound_summary(row) for row in db.scalars(query)]}


def _inbound_summary(row) -> dict:
    return {"id": row.id, "status": row.status, "received_at": _iso(row.received_at), "source": row.source,
            "mail_from": row.mail_from, "rcpt_tos": row.rcpt_tos, "message_id": row.message_id, "size": row.size,
            "disposition": row.disposition, "error": (row.error or "").strip().splitlines()[-1:] and
            (row.error or "").strip().splitlines()[-1]}


def show_inbound(db: Session, inbound_id: int) -> dict | None:
    row = db.get(Inbound, inbound_id)
    if row is None:
        return None
    return {**_inbound_summary(row), "attempts": row.attempts, "case_id": row.case_id, "traceback": row.error,
            "raw": row.raw.decode("utf-8", "replace")}


def list_outbox(db: Session, *, status: str | None = None, limit: int = 200) -> list[dict]:
    query = select(Outbox).order_by(Outbox.id.desc()).limit(limit)
    if status:
        query = query.where(Outbox.status == status)
    return [{"id": r.id, "status": r.status, "kind": r.kind, "party": r.party, "recipient": r.recipient,
             "attempts": r.attempts, "created_at": _iso(r.created_at), "next_attempt_at": _iso(r.next_attempt_at),
             "sent_at": _iso(r.sent_at), "smtp_code": r.smtp_code, "last_error": r.last_error}
            for r in db.scalars(query)]
