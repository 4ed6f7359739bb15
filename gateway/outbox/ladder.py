"""The rate ladder: how many automatic answers one address may receive per hour and per
day ([hygiene] notices_per_address_per_hour / _per_day), so two autoresponders never answer
each other for ever. Only answers to unverified senders count (notices.ANSWERS); staff
addresses are exempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway import store
from gateway.config import Settings
from gateway.models import SendLog
from gateway.notices import ANSWERS, Notice

SUPPRESSION_REPORTED = "suppression_reported"  # a send_log row: staff were told answers to the address are held


@dataclass(frozen=True)
class Rung:
    """The ladder's answer for one notice to one address: `allowed`, with what was counted."""

    allowed: bool
    last_hour: int = 0
    last_day: int = 0


def climb(db: Session, settings: Settings, recipient: str, notice: Notice, *, now: datetime) -> Rung:
    """Whether one more `notice` may go to `recipient` at `now`; an allowed one is counted."""
    if notice not in ANSWERS or recipient.lower() in settings.gateway.staff_addresses:
        return Rung(True)
    hygiene = settings.hygiene
    recipient = recipient.lower()
    store.lock_name(db, f"ladder:{recipient}")  # two workers must not both see room for one more
    day, hour = store.sends_to(db, recipient, now=now, excluding=SUPPRESSION_REPORTED)
    if hour < hygiene.notices_per_address_per_hour and day < hygiene.notices_per_address_per_day:
        db.add(SendLog(recipient=recipient, at=now, kind=notice.value))
        return Rung(True, hour, day)
    return Rung(False, hour, day)


def first_suppression_this_hour(db: Session, recipient: str, *, now: datetime) -> bool:
    """Whether staff are still to hear, this hour, that answers to `recipient` are held back
    (then it is marked as told)."""
    recipient = recipient.lower()
    if store.logged_since(db, recipient, SUPPRESSION_REPORTED, since=now - timedelta(hours=1)):
        return False
    db.add(SendLog(recipient=recipient, at=now, kind=SUPPRESSION_REPORTED))
    return True
