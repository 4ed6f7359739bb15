"""Composing outgoing mail: notices and relays become outbox rows, one per recipient, with
each party's thread kept intact (Message-ID, In-Reply-To, References per recipient).

The Mailer writes rows in the caller's unit of work (outbox/queue.py); the `deliver` actor
sends them after the commit. Who the parties are is outbox/parties.py, what a template
receives outbox/context.py, how many automatic answers an address may get outbox/ladder.py.
"""

from __future__ import annotations

import email
import logging
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message as MimeMessage
from email.policy import SMTP
from typing import Callable, Sequence

from sqlalchemy.orm import Session

from gateway import addresses, status_links, store
from gateway.cases.machine import EventKind
from gateway.config import Settings
from gateway.mail.attachments import BLOCKED_EXTENSIONS, AttachmentPolicy
from gateway.mail.compose import Envelope, compose_notice, compose_relay, new_message_id, readdress, thread_references
from gateway.mail.hygiene import relay_transform
from gateway.mail.scrub import AddressScrubber
from gateway.mail.templating import Renderer
from gateway.models import Case, Outbox
from gateway.notices import Notice
from gateway.outbox import ladder
from gateway.outbox.context import build_case_context, case_subject, timer_context
from gateway.outbox.parties import Parties
from gateway.outbox.queue import queue

log = logging.getLogger(__name__)


def with_attachments(raw: bytes, attachments: Sequence[tuple[str, str, bytes]]) -> bytes:
    """A composed notice with files attached (multipart/mixed around its text and HTML)."""
    if not attachments:
        return raw
    message = email.message_from_bytes(raw, policy=SMTP)
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    return message.as_bytes(policy=SMTP)


@dataclass
class Mailer:
    """Creates outbox rows in the current unit of work; `outbox_ids` lists what to deliver."""

    db: Session
    settings: Settings
    renderer: Renderer
    now: datetime
    outbox_ids: list[int] = field(default_factory=list)
    suppressed: list[Notice] = field(default_factory=list)  # what the ladder held back in this unit of work
    parties: Parties = field(init=False)

    def __post_init__(self) -> None:
        self.parties = Parties(self.db, self.settings)

    def case_context(self, case: Case, party: str) -> dict:
        """The plain dict every case notice template receives."""
        parties = self.parties
        context = build_case_context(
            case, parties.transaction_of(case), parties.merchant_of(case),
            party=party, brand=self.settings.gateway.display_name,
            case_addresses={p: parties.case_address(case, p) for p in ("c", "m", "s")},
        )
        return {**context, "timers": timer_context(self.settings),
                "status_link": status_links.for_notice(self.settings, case.reference, party, now=self.now)}

    def _envelope(self, case: Case, party: str, recipient: str, *, from_name: str, message_id: str,
                  auto: str | None) -> tuple[Envelope, object]:
        """The routing headers for the first of `party`'s addresses, and the party's thread row."""
        row = store.party(self.db, case, party)
        refs = list(row.thread_refs or [])
        # The To header is the recipient's own address, so its mail client picks the right
        # identity to answer from; copies of real addresses quoted in bodies are scrubbed
        # from relays (`party_addresses`).
        envelope = Envelope(
            from_name=from_name,
            from_address=self.parties.case_address(case, party),
            to_address=recipient,
            to_name=self.parties.party_name(case, party),
            subject=case_subject(case, reply=bool(refs)),
            message_id=message_id,
            date=self.now,
            in_reply_to=refs[-1] if refs else None,
            references=thread_references(refs),
            auto_submitted=auto,
        )
        return envelope, row

    def _queue(self, *, raw: bytes, recipient: str, kind: str, party: str | None, case: Case | None,
               message_id: str, inbound_id: int | None) -> int:
        outbox_id = queue(self.db, self.settings, raw=raw, recipient=recipient, kind=kind, party=party, case=case,
                          message_id=message_id, inbound_id=inbound_id, now=self.now)
        self.outbox_ids.append(outbox_id)
        return outbox_id

    def notice(self, notice: Notice, case: Case, party: str, extra: dict | None = None,
               *, inbound_id: int | None = None, only_to: str | None = None,
               attachments: Sequence[tuple[str, str, bytes]] = ()) -> list[int]:
        """Send `notice` to every address of `party` in `case` (or only to `only_to`, one of
        them), in the party's locale, with `attachments` ((file name, type, bytes)) if any."""
        recipients = self.parties.recipients(case, party)
        if only_to is not None:
            recipients = [r for r in recipients if r.lower() == only_to.lower()] or recipients[:1]
        if not recipients:
            return []
        recipients = [r for r in recipients if self.within_ladder(r, notice, case=case)]
        if not recipients:
            return []
        locale = self.parties.locale_for(case, party)
        rendered = self.renderer.render(notice.folder, locale, {**self.case_context(case, party), **(extra or {})})
        message_id = new_message_id(self.settings.gateway.domain, case.reference)
        key = self.settings.gateway.secret_keys[0]
        envelope, row = self._envelope(case, party, recipients[0], from_name=self.settings.gateway.display_name,
                                       message_id=message_id, auto="auto-generated")
        # written once, for the first address; the others get a copy with their own To
        composed = with_attachments(compose_notice(rendered, envelope, key=key), attachments)
        ids = [self._queue(raw=composed if recipient == recipients[0] else readdress(composed, envelope.to_name,
                                                                                      recipient),
                           recipient=recipient, kind=notice.value, party=party, case=case, message_id=message_id,
                           inbound_id=inbound_id)
               for recipient in recipients]
        store.remember_in_thread(row, message_id)
        message = store.add_message(self.db, case, direction="out", party=party, kind=notice.value,
                                    message_id=message_id, subject=rendered.subject, new_text="",
                                    held=False, created_at=self.now)
        store.add_event(self.db, case, EventKind.NOTICE_SENT.value, at=self.now, party=party, message=message, notice=notice.value)
        return ids

    def within_ladder(self, recipient: str, notice: Notice, *, case: Case | None) -> bool:
        """Whether one more automatic notice may go to `recipient` now (outbox/ladder.py).
        What it holds back is logged as suppressed, recorded on the case, and staff hear of
        it once per hour per address."""
        rung = ladder.climb(self.db, self.settings, recipient, notice, now=self.now)
        if rung.allowed:
            return True
        hour, day = rung.last_hour, rung.last_day
        log.warning("notice %s suppressed (%s automatic notices to this address in the last hour, %s in the "
                    "last day)%s", notice.value, hour, day, f" on case {case.reference.upper()}" if case else "")
        self.suppressed.append(notice)
        if case is not None:
            store.add_event(self.db, case, EventKind.NOTICE_SUPPRESSED.value, at=self.now, notice=notice.value,
                            last_hour=hour, last_day=day)
        if ladder.first_suppression_this_hour(self.db, recipient, now=self.now):
            hygiene = self.settings.hygiene
            self.staff_notice_outside_case(Notice.STAFF_NOTICES_SUPPRESSED, {"suppressed": {
                "address": recipient.lower(), "notice": notice.value, "case": case.reference.upper() if case else "",
                "last_hour": hour, "last_day": day, "per_hour": hygiene.notices_per_address_per_hour,
                "per_day": hygiene.notices_per_address_per_day}}, inbound_id=None)
        return False

    def relay(self, case: Case, raw: bytes, *, author: str, to_party: str, inbound_id: int,
              transform: Callable[[MimeMessage], None] | None = None, hide: Sequence[str] = ()) -> list[int]:
        """Relay a party's message to `to_party`, from the recipient's own case address."""
        recipients = self.parties.recipients(case, to_party)
        if not recipients:
            return []
        locale = self.parties.locale_for(case, to_party)
        message_id = new_message_id(self.settings.gateway.domain, case.reference)
        key = self.settings.gateway.secret_keys[0]
        # no real address of the case, no case address and no staff address reaches the
        # recipient; our case addresses quoted in the text become the recipient's own
        scrubber = AddressScrubber.build([*self.parties.party_addresses(case), *hide], domain=self.settings.gateway.domain,
                                         case_reference=case.reference, own_address=self.parties.case_address(case, to_party),
                                         locale=locale)
        safe, report = relay_transform(policy=self.attachment_policy(), locale=locale, also=transform,
                                       scrubber=scrubber, limits=self.settings.hygiene.limits,
                                       block_remote_images=self.settings.hygiene.block_remote_images)
        envelope, row = self._envelope(case, to_party, recipients[0], from_name=self.parties.author_name(case, author, locale),
                                       message_id=message_id, auto=None)
        composed = compose_relay(raw, envelope, key=key, transform=safe,  # parsed and filtered once
                                 limits=self.settings.hygiene.limits)
        ids = [self._queue(raw=composed if recipient == recipients[0] else readdress(composed, envelope.to_name,
                                                                                      recipient),
                           recipient=recipient, kind="relay", party=to_party, case=case, message_id=message_id,
                           inbound_id=inbound_id)
               for recipient in recipients]
        store.remember_in_thread(row, message_id)
        if report.removed_attachments or report.blocked_images or report.html_removed:
            store.add_event(self.db, case, EventKind.CONTENT_FILTERED.value, at=self.now, party=author, to=to_party,
                            removed=[f"{r.filename} ({r.reason})" for r in report.removed_attachments],
                            blocked_images=report.blocked_images, html_removed=sorted(set(report.html_removed)))
        return ids

    def attachment_policy(self) -> AttachmentPolicy:
        hygiene = self.settings.hygiene
        blocked = frozenset(hygiene.blocked_extensions) if hygiene.blocked_extensions is not None \
            else BLOCKED_EXTENSIONS
        return AttachmentPolicy(max_count=hygiene.max_attachments, max_total_bytes=hygiene.max_attachment_bytes,
                                blocked_extensions=blocked)

    def requeue(self, row: Outbox, *, raw: bytes, recipient: str) -> int:
        """Queue a copy of an earlier outbox row (same Message-ID) for a new recipient address."""
        case = self.db.get(Case, row.case_id) if row.case_id else None
        return self._queue(raw=raw, recipient=recipient, kind=row.kind, party=row.party, case=case,
                           message_id=row.message_id, inbound_id=row.inbound_id)

    def notice_outside_case(self, notice: Notice, recipient: str, locale: str, context: dict, *,
                            in_reply_to: str | None, inbound_id: int | None) -> int | None:
        """A notice to an address that has no case (yet), sent from the intake address."""
        gateway = self.settings.gateway
        if not self.within_ladder(recipient, notice, case=None):
            return None
        rendered = self.renderer.render(notice.folder, locale, {"brand": gateway.display_name, **context})
        message_id = new_message_id(gateway.domain)
        envelope = Envelope(
            from_name=gateway.display_name,
            from_address=addresses.intake_address(gateway.domain),
            to_address=recipient,
            subject=rendered.subject,
            message_id=message_id,
            date=self.now,
            in_reply_to=in_reply_to,
            references=(in_reply_to,) if in_reply_to else (),
            auto_submitted="auto-replied",
        )
        raw = compose_notice(rendered, envelope, key=gateway.secret_keys[0])
        return self._queue(raw=raw, recipient=recipient, kind=notice.value, party=None, case=None,
                           message_id=message_id, inbound_id=inbound_id)

    def staff_notice_outside_case(self, notice: Notice, context: dict, *, inbound_id: int | None) -> list[int]:
        locale = self.settings.gateway.default_locale
        ids = [self.notice_outside_case(notice, address, locale, context, in_reply_to=None, inbound_id=inbound_id)
               for address in self.settings.gateway.staff_addresses]
        return [i for i in ids if i is not None]
