"""The contents of a bundle as plain values, built from a CaseRecord: the overview and the
dates that matter (the summary), the transcript, the delivery ledger, the evidence, and
the event records the hash chain covers. Pure: a record and a redactor in, dicts out.
"""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway import __version__
from gateway.evidence.needs import REASON_CODES
from gateway.export.record import CaseRecord
from gateway.mail.parse import parse
from gateway.rights import TYPE_LABELS

FORMAT = "dispute-gateway-case/1"
CLOSING_EVENTS = ("resolved", "staff_closed", "expired")
ESCALATION_EVENTS = ("escalated", "merchant_bounced")
NOTICE_LABELS = {
    "merchant_new_case": "case sent to the merchant, with its obligations",
    "merchant_reminder": "reminder to the merchant",
    "escalation_merchant": "escalation notice to the merchant, with its obligations",
    "escalation_customer": "escalation notice to the customer, with their rights",
    "staff_escalation": "escalation to staff, with the case history",
    "case_closed": "closing notice",
    "ack_delivery": "acknowledgement to the customer",
    "ack_payment": "acknowledgement to the customer",
    "relay": "relayed message",
}
# Events the transcript shows between the messages (the full list is the case history).
STATE_EVENTS = frozenset({"case_opened", *ESCALATION_EVENTS, *CLOSING_EVENTS, "reopened", "type_set",
                          "message_held", "message_released", "message_rejected", "case_frozen", "case_unfrozen",
                          "case_exported", "sender_unverified", "delivery_failed", "content_filtered"})


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def local(value: datetime | None, timezone: str) -> str:
    """A time as a reader at the provider sees it: "2026-11-26 10:12 CET"."""
    return value.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z") if value else "-"


def overview(record: CaseRecord) -> dict:
    case, tx, merchant, gateway = record.case, record.transaction, record.merchant, record.settings.gateway
    return {
        "reference": record.reference, "subject": case.subject, "state": case.state, "category": case.category,
        "dispute_type": case.dispute_type, "dispute_label": TYPE_LABELS["en"].get(case.dispute_type, case.dispute_type),
        "dispute_label_local": TYPE_LABELS.get(gateway.default_locale, TYPE_LABELS["en"]).get(case.dispute_type, ""),
        "reason_codes": REASON_CODES.get(case.dispute_type, ""),
        "escalated": case.escalated, "merchant_unreachable": case.merchant_unreachable,
        "customer": {"name": tx.customer_name if tx else "", "address": case.customer_email,
                     "locale": case.customer_locale},
        "merchant": {"id": case.merchant_id, "name": merchant.name if merchant else case.merchant_id,
                     "address": merchant.support_email if merchant else "",
                     "address_invalid": bool(merchant and merchant.address_invalid)},
        "provider": {"name": gateway.display_name, "addresses": list(gateway.staff_addresses), "domain": gateway.domain},
        "transaction": {"reference": case.transaction_reference, "date": iso(tx.transaction_date if tx else None),
                        "amount": f"{tx.amount:.2f}" if tx else "", "currency": tx.currency if tx else "",
                        "merchant": merchant.name if merchant else case.merchant_id},
        "exported_at": iso(record.exported_at), "timezone": record.settings.timers.timezone,
        "software": f"dispute-gateway {__version__}",
    }


def dates(record: CaseRecord) -> dict:
    """The dates a chargeback analyst asks for, each with what it is."""
    case = record.case
    to_merchant = [item.row for item in record.outgoing if item.row.party == "m"]
    first = to_merchant[0] if to_merchant else None
    answer = next((m for m in record.messages.values() if m.direction == "in" and m.party == "m" and m.kind == "human"
                   and (not m.held or m.released_at)), None)
    reminders = sorted({(m.created_at, m.id) for m in record.messages.values()
                        if m.direction == "out" and m.kind == "merchant_reminder"})
    escalation = next((e for e in record.events if e.kind in ESCALATION_EVENTS and e.detail.get("applied", True)), None)
    closing = next((e for e in reversed(record.events) if e.kind in CLOSING_EVENTS and e.detail.get("applied", True)),
                   None)
    answer_item = record.inbound_of_message(answer.id) if answer else None
    return {
        "opened": iso(case.opened_at),
        "merchant_first_told": iso(first.sent_at or first.created_at) if first else None,
        "merchant_first_told_how": ", ".join(x for x in (first.kind.replace("_", " "), first.status, first.smtp_reply)
                                             if x) if first else None,
        "first_merchant_answer": iso(answer.created_at) if answer else None,
        "first_merchant_answer_file": answer_item.eml if answer_item else None,
        "merchant_reminders": [iso(at) for at, _ in reminders],
        "escalated": iso(escalation.at) if escalation else None,
        "escalation_reason": (escalation.detail.get("reason") or escalation.kind) if escalation else None,
        "closed": iso(case.closed_at) if case.state == "closed" else None,
        "closed_reason": case.closed_reason,
        "closing_note": (closing.detail.get("note") or "") if closing and case.state == "closed" else "",
    }


def evidence(record: CaseRecord) -> list[dict]:
    found = []
    for item in record.evidence:
        entry = item.as_dict()
        inbound = record.inbound_of_message(item.message_id)
        entry["file"] = inbound.eml if inbound else None
        entry["seq"] = inbound.seq if inbound else None
        found.append(entry)
    return found


def ledger(record: CaseRecord) -> list[dict]:
    """Every message the gateway sent on the case: to whom, when, the smarthost's answer,
    and any bounce or DSN that came back."""
    rows = []
    for item in record.outgoing:
        row = item.row
        rows.append({
            "seq": item.seq, "outbox_id": row.id, "kind": row.kind, "role": {"c": "customer", "m": "merchant",
                                                                             "s": "staff"}.get(row.party or "", "-"),
            "recipient": row.recipient, "message_id": row.message_id, "created_at": iso(row.created_at),
            "sent_at": iso(row.sent_at), "status": row.status, "attempts": row.attempts, "smtp_code": row.smtp_code,
            "smtp_answer": row.smtp_reply if row.status == "sent" else row.last_error,
            "file": item.eml, "sha256": hashlib.sha256(row.raw).hexdigest(),
            "bounces": [{"at": iso(b.created_at), "kind": b.kind, "status": b.status, "diagnostic": b.diagnostic,
                         "detected_by": b.detected_by,
                         "report": next((i.eml for i in record.inbound if i.inbound.id == b.inbound_id), None)}
                        for b in item.bounces],
        })
    return rows


def ledger_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["seq", "created_at", "sent_at", "role", "recipient", "kind", "status", "attempts", "smtp_code",
                     "smtp_answer", "bounces", "file"])
    for row in rows:
        bounces = "; ".join(f"{b['at']} {b['kind']} {b['status'] or ''} {b['diagnostic'] or ''}".strip()
                            for b in row["bounces"])
        writer.writerow([row["seq"], row["created_at"], row["sent_at"] or "", row["role"], row["recipient"], row["kind"],
                         row["status"], row["attempts"], row["smtp_code"] or "", row["smtp_answer"] or "", bounces,
                         row["file"]])
    return out.getvalue().encode("utf-8")


def event_records(record: CaseRecord) -> list[dict]:
    """The case history as the hash chain covers it: every event in the order it was
    recorded, with the SHA-256 of the raw message it is about (so the chain covers the
    .eml files too) and of what was sent for a notice."""
    raw_hash = {i.message.id: i.receipt["sha256"] for i in record.inbound if i.message}
    sent_hash: dict[str, list[str]] = {}
    for item in record.outgoing:
        sent_hash.setdefault(item.row.message_id, []).append(hashlib.sha256(item.row.raw).hexdigest())
    records = []
    for seq, event in enumerate(record.events, start=1):
        message = record.messages.get(event.message_id) if event.message_id else None
        entry = {"seq": seq, "event_id": event.id, "at": iso(event.at), "kind": event.kind, "party": event.party,
                 "message": event.message_id, "detail": event.detail or {}}
        if message is not None and message.direction == "in" and message.id in raw_hash:
            entry["message_sha256"] = raw_hash[message.id]
        elif message is not None and message.direction == "out":
            entry["sent_sha256"] = sent_hash.get(message.message_id or "", [])
        records.append(entry)
    return records


def describe(event: dict) -> str:
    """One line for an event: its kind in words and its details."""
    detail = {k: v for k, v in (event.get("detail") or {}).items()
              if k not in ("state_before", "state_after", "applied") and v not in (None, "", [], {})}
    words = event["kind"].replace("_", " ")
    if event.get("detail", {}).get("applied") is False:
        words += " (not applied)"
    return words + (": " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in detail.items()) if detail else "")


def _notice_text(raw: bytes) -> str:
    try:
        return parse(raw).text.strip()
    except Exception:
        return ""


def entries(record: CaseRecord) -> list[dict]:
    """The transcript: every message received, every notice sent, and the events that
    change the case, in time order."""
    found = [_message_entry(record, item) for item in record.inbound]
    first_row = {}
    for item in record.outgoing:
        first_row.setdefault(item.row.message_id, []).append(item)
    for message in record.messages.values():
        if message.direction == "out":
            items = first_row.get(message.message_id or "", [])
            found.append({
                "type": "notice", "at": iso(message.created_at), "role": {"c": "customer", "m": "merchant",
                                                                          "s": "staff"}.get(message.party, "-"),
                "kind": message.kind, "label": NOTICE_LABELS.get(message.kind, message.kind.replace("_", " ")),
                "subject": message.subject, "text": _notice_text(items[0].row.raw) if items else "",
                "deliveries": [_delivery(i) for i in items]})
    for event in event_records(record):
        if event["kind"] in STATE_EVENTS:
            found.append({"type": "event", "at": event["at"], "party": event["party"], "text": describe(event),
                          "seq": event["seq"]})
    order = {"message": 0, "event": 1, "notice": 2}  # at one instant: what came in, what it did, what was sent
    return sorted(found, key=lambda e: (e["at"] or "", order[e["type"]]))


def _delivery(item) -> dict:
    row = item.row
    return {"recipient": row.recipient, "status": row.status, "sent_at": iso(row.sent_at),
            "answer": row.smtp_reply if row.status == "sent" else row.last_error, "file": item.eml,
            "bounces": [f"{b.kind} {b.status or ''} {b.diagnostic or ''}".strip() for b in item.bounces]}


def _message_entry(record: CaseRecord, item) -> dict:
    message, inbound = item.message, item.inbound
    try:
        parsed = parse(inbound.raw)
    except Exception:
        parsed = None
    text = (message.new_text if message is not None and message.new_text else (parsed.text if parsed else ""))
    relayed = [_delivery(o) for o in record.outgoing if o.row.kind == "relay" and o.row.inbound_id == inbound.id]
    return {
        "type": "message", "at": iso(message.created_at if message else inbound.received_at), "seq": item.seq,
        "role": item.label, "kind": message.kind if message else "report",
        "from": (f"{parsed.from_name} <{parsed.from_address}>" if parsed.from_name else parsed.from_address)
        if parsed and parsed.from_address else inbound.mail_from, "to": ", ".join(inbound.rcpt_tos or []), "subject": parsed.subject if parsed else "",
        "date_header": parsed.date if parsed else None, "text": text.strip(),
        "quoted_omitted": bool(parsed and message is not None and message.new_text and parsed.text.strip() !=
                               message.new_text.strip()),
        "attachments": [a.name for a in item.attachments], "file": item.eml,
        "sender_check": item.receipt["sender_check"]["verdict"], "relayed": relayed,
        "held": bool(message and message.held and not message.released_at),
    }


def case_json(record: CaseRecord, *, linked: list[dict], head: str, redact, redacted: bool,
              chain_rule: str, genesis: str) -> dict:
    """case.json: the machine-readable case (every value redacted when `redacted`)."""
    messages = []
    for item in record.inbound:
        messages.append({
            "seq": item.seq, "role": item.label, "message": item.message.id if item.message else None,
            "kind": item.message.kind if item.message else "report", "file": None if redacted else item.eml,
            "receipt_file": item.eml.replace(".eml", ".receipt.json"), "withheld": redacted,
            **item.receipt,
            "attachments": [{"file": a.path, "name": a.name, "content_type": a.content_type, "size": len(a.data),
                             "sha256": a.sha256, "blocked": a.blocked} for a in item.attachments]})
    deliveries = ledger(record)
    if redacted:  # what was sent is withheld with the raw messages; its SHA-256 stays
        deliveries = [{**row, "file": None, "withheld": True} for row in deliveries]
    return redact({
        "format": FORMAT, "redacted": redacted, "case": overview(record), "dates": dates(record),
        "evidence": evidence(record), "missing_evidence": record.missing, "messages": messages,
        "deliveries": deliveries,
    }) | {"events": linked, "chain": {"algorithm": "SHA-256", "rule": chain_rule, "genesis": genesis,
                                      "head": head, "events": len(linked)}}
