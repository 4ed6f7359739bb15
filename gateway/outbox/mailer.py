"""Outgoing mail: notices and relays become outbox rows, one per recipient, with each
party's thread kept intact (Message-ID, In-Reply-To, References per recipient).

The Mailer writes rows in the caller's unit of work; the `deliver` actor sends them
after the commit.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import Message as MimeMessage
from typing import Callable, Sequence

from sqlalchemy import case as sql_case
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gateway import addresses, store
from gateway.config import Settings
from gateway.mail.attachments import BLOCKED_EXTENSIONS, AttachmentPolicy
from gateway.mail.hygiene import relay_transform
from gateway.mail.scrub import AddressScrubber
from gateway.mail.compose import (Envelope, compose_notice, compose_relay, header_text, new_message_id, readdress,
                                  thread_references)
from gateway.mail.templating import Renderer
from gateway.models import Case, Merchant, Outbox, SendLog, Transaction
from gateway.notices import ANSWERS, Notice

log = logging.getLogger(__name__)
ROLE_LABELS = {"en": {"c": "customer", "m": "merchant", "s": "staff"}, "fr": {"c": "client", "m": "marchand", "s": "équipe"}}
SUPPRESSION_REPORTED = "suppression_reported"  # a send_log row: staff were told answers to the address are held
_TAG_RE = re.compile(r"\[(case|dossier)\s+[a-z2-7]+\]\s*", re.IGNORECASE)
_REPLY_PREFIX_RE = re.compile(r"^((re|fwd?|tr|aw|wg|sv|rif|r)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def clean_subject(subject: str) -> str:
    """A case subject from a message subject: no reply prefixes, no case tag, no control
    characters, bounded."""
    subject = _TAG_RE.sub("", _REPLY_PREFIX_RE.sub("", header_text(subject or ""))).strip()
    return " ".join(subject.split())[:150] or "Dispute"


def case_subject(case: Case, *, reply: bool = True) -> str:
    tagged = f"[Case {case.reference.upper()}] {case.subject}"
    return f"Re: {tagged}" if reply else tagged


def build_case_context(case: Case, tx: Transaction | None, merchant: Merchant | None, *, party: str, brand: str,
                       case_addresses: dict[str, str]) -> dict:
    """The template context of a case notice for `party`. Pure: values in, dict out."""
    return {
        "brand": brand,
        "recipient_role": {"c": "customer", "m": "merchant", "s": "staff"}[party],
        "case": {
            "reference": case.reference.upper(),
            "subject": case.subject,
            "category": case.category or "",
            "dispute_type": case.dispute_type,
            "state": case.state,
            "escalated": case.escalated,
            "opened_at": case.opened_at,
            "customer_address": case_addresses["c"],
            "merchant_address": case_addresses["m"],
            "staff_address": case_addresses["s"],
        },
        "transaction": {
            "reference": tx.reference if tx else case.transaction_reference,
            "date": tx.transaction_date if tx else case.opened_at,
            "amount": tx.amount if tx else 0,
            "currency": tx.currency if tx else "",
            "customer_name": tx.customer_name if tx else "",
        },
        "merchant": {"name": merchant.name if merchant else case.merchant_id, "id": case.merchant_id},
    }


def timer_context(settings: Settings) -> dict:
    """The delays notices quote, from [timers], so a text never promises what is not configured."""
    timers = settings.timers
    return {
        "first_reminder_business_days": (timers.merchant_reminder_business_days or (0,))[0],
        "escalation_business_days": timers.escalation_business_days,
        "autoclose_days": timers.autoclose_days,
        "autoclose_quiet_days": timers.autoclose_quiet_days,
    }


def with_attachments(raw: bytes, attachments: Sequence[tuple[str, str, bytes]]) -> bytes:
    """A composed notice with files attached (multipart/mixed around its text and HTML)."""
    if not attachments:
        return raw
    import email
    from email.policy import SMTP

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
    _rows: dict = field(default_factory=dict, repr=False)  # merchant/transaction rows read in this unit of work

    def merchant_of(self, case: Case) -> Merchant | None:
        key = ("m", case.merchant_id)
        if key not in self._rows:
            self._rows[key] = store.merchant(self.db, case.merchant_id)
        return self._rows[key]

    def transaction_of(self, case: Case) -> Transaction | None:
        key = ("t", case.transaction_reference)
        if key not in self._rows:
            self._rows[key] = store.transaction(self.db, case.transaction_reference)
        return self._rows[key]

    # --- addresses -------------------------------------------------------------------------
    def case_address(self, case: Case, party: str) -> str:
        gateway = self.settings.gateway
        return addresses.case_address(case.reference, party, domain=gateway.domain, keys=gateway.secret_keys)

    def recipients(self, case: Case, party: str) -> list[str]:
        if party == "c":
            return [case.customer_email]
        if party == "m":
            merchant = self.merchant_of(case)
            if merchant is None or merchant.address_invalid:
                return []
            return [merchant.support_email]
        return list(self.settings.gateway.staff_addresses)

    def locale_for(self, case: Case, party: str) -> str:
        if party == "c":
            return case.customer_locale
        if party == "m":
            merchant = self.merchant_of(case)
            return merchant.locale if merchant else self.settings.gateway.default_locale
        return self.settings.gateway.default_locale

    def party_addresses(self, case: Case) -> list[str]:
        """Every real address of the case's parties: none may appear in what a relay carries."""
        merchant = self.merchant_of(case)
        return [case.customer_email, *(([merchant.support_email]) if merchant else []),
                *self.settings.gateway.staff_addresses]

    def party_name(self, case: Case, party: str) -> str:
        """How a party is named in the To header of what it receives (no address in it)."""
        if party == "c":
            tx = self.transaction_of(case)
            name = tx.customer_name if tx else ""
        elif party == "m":
            merchant = self.merchant_of(case)
            name = merchant.name if merchant else ""
        else:
            name = f"{self.settings.gateway.display_name} staff"
        return " ".join(name.replace("@", " ").split())

    def author_name(self, case: Case, author: str, locale: str) -> str:
        """Display name for a message written by `author`, as shown to another party."""
        label = ROLE_LABELS[locale][author]
        brand = self.settings.gateway.display_name
        if author == "c":
            tx = self.transaction_of(case)
            name = tx.customer_name if tx else ""
        elif author == "m":
            merchant = self.merchant_of(case)
            name = merchant.name if merchant else ""
        else:
            return f"{brand} ({label})"
        name = " ".join(name.replace("@", " ").split())  # never let a name carry an address
        return f"{name} ({label}) via {brand}" if name else f"{brand} ({label})"

    # --- context ---------------------------------------------------------------------------
    def case_context(self, case: Case, party: str) -> dict:
        """The plain dict every case notice template receives."""
        context = build_case_context(
            case, self.transaction_of(case), self.merchant_of(case),
            party=party, brand=self.settings.gateway.display_name,
            case_addresses={p: self.case_address(case, p) for p in ("c", "m", "s")},
        )
        return {**context, "timers": timer_context(self.settings)}

    # --- rows ------------------------------------------------------------------------------
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
            from_address=self.case_address(case, party),
            to_address=recipient,
            to_name=self.party_name(case, party),
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
        row = Outbox(
            case_id=case.id if case else None,
            inbound_id=inbound_id,
            party=party,
            kind=kind,
            recipient=recipient,
            verp_token=addresses.random_base32(addresses.TOKEN_CHARS),
            message_id=message_id,
            raw=raw,
            status="pending",
            attempts=0,
            next_attempt_at=self.now,
            lease_until=self.now + timedelta(seconds=self.settings.workers.lease_seconds),
            created_at=self.now,
        )
        self.db.add(row)
        self.db.flush()
        self.outbox_ids.append(row.id)
        return row.id

    def notice(self, notice: Notice, case: Case, party: str, extra: dict | None = None,
               *, inbound_id: int | None = None, only_to: str | None = None,
               attachments: Sequence[tuple[str, str, bytes]] = ()) -> list[int]:
        """Send `notice` to every address of `party` in `case` (or only to `only_to`, one of
        them), in the party's locale, with `attachments` ((file name, type, bytes)) if any."""
        recipients = self.recipients(case, party)
        if only_to is not None:
            recipients = [r for r in recipients if r.lower() == only_to.lower()] or recipients[:1]
        if not recipients:
            return []
        recipients = [r for r in recipients if self.within_ladder(r, notice, case=case)]
        if not recipients:
            return []
        locale = self.locale_for(case, party)
        rendered = self.renderer.render(notice.folder, locale, {**self.case_context(case, party), **(extra or {})})
        message_id = new_message_id(self.settings.gateway.domain, case.reference)
        key = self.settings.gateway.secret_keys[0]
        envelope, row = self._envelope(case, party, recipients[0], from_name=self.settings.gateway.display_name,
                                       message_id=message_id, auto="auto-generated")
        ids = [self._queue(raw=with_attachments(compose_notice(rendered, replace(envelope, to_address=recipient),
                                                             key=key), attachments),
                           recipient=recipient, kind=notice.value, party=party, case=case, message_id=message_id,
                           inbound_id=inbound_id)
               for recipient in recipients]
        store.remember_in_thread(row, message_id)
        message = store.add_message(self.db, case, direction="out", party=party, kind=notice.value,
                                    message_id=message_id, subject=rendered.subject, new_text="",
                                    held=False, created_at=self.now)
        store.add_event(self.db, case, "notice_sent", at=self.now, party=party, message=message, notice=notice.value)
        return ids

    def within_ladder(self, recipient: str, notice: Notice, *, case: Case | None) -> bool:
        """Whether one more automatic notice may go to `recipient` now (the per-hour and
        per-day ladder that stops two autoresponders from answering each other for ever).
        Only answers to unverified senders count (notices.ANSWERS); staff addresses are
        exempt. What it holds back is logged as suppressed, recorded on the case, and staff
        hear of it once per hour per address."""
        if notice not in ANSWERS or recipient.lower() in self.settings.gateway.staff_addresses:
            return True
        hygiene = self.settings.hygiene
        recipient = recipient.lower()
        if self.db.get_bind().dialect.name == "postgresql":  # two workers must not both see room for one more
            self.db.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"ladder:{recipient}"})
        last_hour = SendLog.at > self.now - timedelta(hours=1)
        day, hour = self.db.execute(
            select(func.count(), func.coalesce(func.sum(sql_case((last_hour, 1), else_=0)), 0))
            .where(SendLog.recipient == recipient, SendLog.kind != SUPPRESSION_REPORTED,
                   SendLog.at > self.now - timedelta(days=1))).one()
        if hour < hygiene.notices_per_address_per_hour and day < hygiene.notices_per_address_per_day:
            self.db.add(SendLog(recipient=recipient, at=self.now, kind=notice.value))
            return True
        log.warning("notice %s suppressed (%s automatic notices to this address in the last hour, %s in the "
                    "last day)%s", notice.value, hour, day, f" on case {case.reference.upper()}" if case else "")
        self.suppressed.append(notice)
        if case is not None:
            store.add_event(self.db, case, "notice_suppressed", at=self.now, notice=notice.value,
                            last_hour=hour, last_day=day)
        self._report_suppression(recipient, notice, case, hour=hour, day=day)
        return False

    def _report_suppression(self, recipient: str, notice: Notice, case: Case | None, *, hour: int, day: int) -> None:
        """Tell staff that answers to `recipient` are held back, at most once per hour per address."""
        reported = self.db.scalar(select(SendLog.id).where(
            SendLog.recipient == recipient, SendLog.kind == SUPPRESSION_REPORTED,
            SendLog.at > self.now - timedelta(hours=1)).limit(1))
        if reported is not None:
            return
        self.db.add(SendLog(recipient=recipient, at=self.now, kind=SUPPRESSION_REPORTED))
        hygiene = self.settings.hygiene
        self.staff_notice_outside_case(Notice.STAFF_NOTICES_SUPPRESSED, {"suppressed": {
            "address": recipient, "notice": notice.value, "case": case.reference.upper() if case else "",
            "last_hour": hour, "last_day": day, "per_hour": hygiene.notices_per_address_per_hour,
            "per_day": hygiene.notices_per_address_per_day}}, inbound_id=None)

    def relay(self, case: Case, raw: bytes, *, author: str, to_party: str, inbound_id: int,
              transform: Callable[[MimeMessage], None] | None = None, hide: Sequence[str] = ()) -> list[int]:
        """Relay a party's message to `to_party`, from the recipient's own case address."""
        recipients = self.recipients(case, to_party)
        if not recipients:
            return []
        locale = self.locale_for(case, to_party)
        message_id = new_message_id(self.settings.gateway.domain, case.reference)
        key = self.settings.gateway.secret_keys[0]
        # no real address of the case, no case address and no staff address reaches the
        # recipient; our case addresses quoted in the text become the recipient's own
        scrubber = AddressScrubber.build([*self.party_addresses(case), *hide], domain=self.settings.gateway.domain,
                                         case_reference=case.reference, own_address=self.case_address(case, to_party),
                                         locale=locale)
        safe, report = relay_transform(policy=self.attachment_policy(), locale=locale, also=transform,
                                       scrubber=scrubber, limits=self.settings.hygiene.limits,
                                       block_remote_images=self.settings.hygiene.block_remote_images)
        envelope, row = self._envelope(case, to_party, recipients[0], from_name=self.author_name(case, author, locale),
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
            store.add_event(self.db, case, "content_filtered", at=self.now, party=author, to=to_party,
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
