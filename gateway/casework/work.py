"""The values all casework works on: a unit of work, and one inbound message, parsed and classified."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.dispositions import Disposition
from gateway.mail.bounces.base import Verdict
from gateway.mail.classify import Classification
from gateway.mail.parse import ParsedMessage
from gateway.mail import senders
from gateway.mail.senders import Sender
from gateway.models import Inbound
from gateway.outbox.mailer import Mailer
from gateway.outbox.parties import Parties


@dataclass
class Moment:
    """The session and the instant: what recording a change of a case needs."""

    db: Session
    now: datetime


@dataclass
class Work(Moment):
    """One unit of work on cases: the session, the instant, settings and the mailer."""

    settings: Settings
    mailer: Mailer

    @property
    def parties(self) -> Parties:
        """Who the case's parties are (their rows read once per unit of work)."""
        return self.mailer.parties


@dataclass
class Step(Work):
    """Work on one inbound message."""

    inbound: Inbound
    parsed: ParsedMessage
    classification: Classification
    verdict: Verdict = field(default_factory=Verdict.none)  # what a bounce reports
    sender: Sender | None = None  # who the message says wrote it (pipeline.sender_of)
    check: "senders.Check | None" = None  # the sender check's verdict on it, once made (party_mail)

    def done(self, outcome: Disposition, disposition: str, *, case_id: int | None = None) -> None:
        """Record what was decided for this message: the value, and in words."""
        self.inbound.outcome = outcome.value
        self.inbound.disposition = disposition
        if case_id is not None:
            self.inbound.case_id = case_id
