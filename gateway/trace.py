"""`dispute-gateway trace FILE.eml`: run one raw message through every stage and print each
decision, without sending or keeping anything (the whole run is rolled back).

Administrators use it to answer "why did this mail do that?".
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime
from email.utils import getaddresses, parseaddr
from typing import Iterator

from sqlalchemy import func, select

from gateway import addresses, pipeline, sisimai, store
from gateway.cases.identify import identify
from gateway.config import Settings
from gateway.db import Database
from gateway.mail.parse import parse
from gateway.mail.templating import Renderer
from gateway.models import Case, Event, Outbox

SHOWN_HEADERS = ("from", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references",
                 "auto-submitted", "precedence", "content-type", "authentication-results")


def default_recipients(settings: Settings, raw_headers: dict[str, tuple[str, ...]]) -> list[str]:
    """Our own addresses among the message's Delivered-To, X-Original-To, To and Cc."""
    values = []
    for name in ("delivered-to", "x-original-to", "to", "cc"):
        values.extend(raw_headers.get(name, ()))
    found = [a.lower() for _, a in getaddresses(values) if a.lower().endswith("@" + settings.gateway.domain)]
    return list(dict.fromkeys(found))


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Only warnings from the gateway's own loggers while a trace runs: the trace prints
    every decision itself, and everything it did is rolled back."""
    logger = logging.getLogger("gateway")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def trace(settings: Settings, raw: bytes, *, rcpt: list[str] | None = None, mail_from: str | None = None,
          now: datetime) -> list[str]:
    """The decisions the gateway would take for `raw`, as lines of text."""
    lines: list[str] = []
    say = lines.append
    parsed = parse(raw, settings.hygiene.limits)
    say("== parsed")
    for name in SHOWN_HEADERS:
        for value in parsed.headers.get(name, ()):
            say(f"  {name}: {' '.join(value.split())[:300]}")
    say(f"  body: {len(parsed.text)} characters of text, html {'yes' if parsed.html else 'no'}, "
        f"{len(parsed.attachments)} attachment(s) {[a.filename for a in parsed.attachments]}")
    if parsed.defects:
        say(f"  defects: {', '.join(parsed.defects)}")
    if parsed.limited:
        say(f"  over the limits, not processed: {'; '.join(parsed.limited)}")
    say(f"  new text (commands are read from it): {parsed.new_text[:200]!r}")
    rcpt = rcpt or default_recipients(settings, parsed.headers)
    if mail_from is None:
        return_path = parsed.header("return-path")
        mail_from = parseaddr(return_path)[1] if return_path else parsed.from_address
    say("== envelope")
    say(f"  MAIL FROM: <{mail_from}>")
    gateway = settings.gateway
    for address in rcpt:
        verdict = addresses.parse(address, domain=gateway.domain, keys=gateway.secret_keys,
                                  intake=tuple(gateway.intake_local_parts))
        answer = f"550 refused ({verdict.reason})" if isinstance(verdict, addresses.Rejected) else "250 accepted"
        say(f"  RCPT TO: <{address}> -> {answer}: {type(verdict).__name__}")
    if not rcpt:
        say("  no recipient of ours: give one with --rcpt")
        return lines
    analyser = sisimai.analyser_for(settings.bounces)
    try:  # the pipeline's own reading, as a worker does it
        prepared = pipeline.prepare(raw, mail_from, settings, analyser=analyser)
    finally:
        if analyser is not None:
            analyser.close()
    classification, verdict = prepared.classification, prepared.verdict
    say("== classification")
    say(f"  {classification.kind.value}: {classification.reason}")
    auth = prepared.sender.auth
    say(f"  sender: From <{prepared.sender.address}>, envelope <{prepared.sender.envelope}>, authentication "
        + ("none" if auth is None else f"dmarc={auth.dmarc} spf={auth.spf} dkim={auth.dkim} ({auth.source})"))
    for failure in verdict.failures:
        say(f"  report: {failure.recipient or '-'} {failure.reason.value} ({failure.kind.value}) {failure.status or ''} "
            f"({verdict.detected_by}) {failure.diagnostic or ''}"[:300])
    database = Database(settings.database.url)
    try:
        with database.rolled_back() as db:
            match = identify(addresses.recipients_of(settings.gateway, rcpt), parsed.in_reply_to + parsed.references,
                             lambda ids: store.sent_message_owner(db, ids))
            say("== identified")
            say(f"  {type(match).__name__}: {match.how}")
            last_event = db.scalar(select(func.max(Event.id))) or 0
            last_outbox = db.scalar(select(func.max(Outbox.id))) or 0
            inbound_id, duplicate = store.save_inbound(db, raw=raw, mail_from=mail_from, rcpt_tos=rcpt, source="cli",
                                                       now=now, lease_seconds=settings.workers.lease_seconds)
            if duplicate:
                say(f"== duplicate of inbound {inbound_id}: the gateway would answer 250 and do nothing more")
                return lines
            states = {c.id: c.state for c in db.scalars(select(Case))}
            with _quiet_logs():  # the pipeline's "processed" lines would read as if it had happened
                result = pipeline.process_inbound(db, inbound_id, settings=settings, now=now, prepared=prepared,
                                                  renderer=Renderer(settings.gateway.templates_dir, settings.timers.timezone))
            say("== decision")
            say(f"  {result.disposition}")
            if result.case_id is not None:
                case = db.get(Case, result.case_id)
                before = states.get(case.id, "(new case)")
                say(f"  case {case.reference.upper()}: {before} -> {case.state}"
                    f"{' (escalated)' if case.escalated else ''}")
            for event in db.scalars(select(Event).where(Event.id > last_event).order_by(Event.id)):
                detail = ", ".join(f"{k}={v}" for k, v in (event.detail or {}).items())
                say(f"  event {event.kind} by {event.party or 'gateway'} {detail}".rstrip())
            say("== would send (nothing was sent)")
            outgoing = db.scalars(select(Outbox).where(Outbox.id > last_outbox).order_by(Outbox.id)).all()
            for row in outgoing:
                role = addresses.PARTY_NAMES.get(row.party or "", "sender")
                say(f"  {row.kind} to the {role} <{row.recipient}>")
            if not outgoing:
                say("  nothing")
    finally:
        database.dispose()
    return lines
