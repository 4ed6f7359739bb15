"""What was recorded when a message arrived: its envelope, and the sender check's
verdict. The one place an export reads the verdict from, so a richer verdict recorded at
receipt can replace what is read here without touching the rest of the export.

The verdict is the one the sender check recorded on the case message at receipt
(`messages.sender`: envelope sender, From, authentication results, verdict and reason);
messages recorded before it existed fall back to the held flag and the
`sender_unverified` and `message_rejected` events written at the same instant.
"""

from __future__ import annotations

import hashlib

from gateway.mail import trust
from gateway.mail.parse import parse
from gateway.models import Event, Inbound, Message


def envelope(inbound: Inbound) -> dict:
    """The SMTP (or IMAP) envelope and receipt facts of one stored message."""
    return {
        "received_at": inbound.received_at.isoformat(),
        "source": inbound.source,
        "mail_from": inbound.mail_from,
        "rcpt_to": list(inbound.rcpt_tos or []),
        "size": inbound.size,
        "sha256": hashlib.sha256(inbound.raw).hexdigest(),
        "message_id": inbound.message_id,
        "processing": inbound.status,
        "disposition": inbound.disposition,
    }


def sender_check(message: Message | None, events: list[Event], *, authserv_id: str | None, raw: bytes) -> dict:
    """The sender check's verdict on `message`, as recorded when it arrived.

    verdict: accepted | accepted_unverified (relayed, flagged: no DMARC/SPF/DKIM pass) |
    held (staff decide) | rejected | not_checked (no party message: a bounce, an
    intake message); with the reason recorded and, when staff released a held message,
    when. `authentication_results`: what the administrator's own MTA wrote (the trusted
    Authentication-Results header), when `[hygiene] authserv_id` is set.
    """
    found = {"verdict": "not_checked", "reason": None, "released_at": None}
    recorded = (message.sender or {}) if message is not None else {}
    if recorded.get("verdict"):  # what the sender check recorded at receipt (gateway/mail/senders.py)
        verdicts = {"accept": "accepted", "accept_flagged": "accepted_unverified", "hold": "held",
                    "reject": "rejected"}
        found.update(verdict=verdicts.get(recorded["verdict"], recorded["verdict"]), reason=recorded.get("reason"),
                     released_at=message.released_at.isoformat() if message.released_at else None,
                     envelope_sender=recorded.get("envelope_sender"), from_address=recorded.get("from"),
                     from_name=recorded.get("from_name"), authentication=recorded.get("authentication"))
    elif message is not None and message.direction == "in":
        same_instant = [e for e in events if e.at == message.created_at and e.party == message.party]
        rejected = next((e for e in same_instant if e.kind == "message_rejected"), None)
        flagged = next((e for e in same_instant if e.kind == "sender_unverified"), None)
        if rejected is not None:
            found.update(verdict="rejected", reason=rejected.detail.get("reason") or message.held_reason)
        elif message.held:
            found.update(verdict="held", reason=message.held_reason,
                         released_at=message.released_at.isoformat() if message.released_at else None)
        elif flagged is not None:
            found.update(verdict="accepted_unverified", reason=flagged.detail.get("reason"))
        elif message.kind == "human":
            found.update(verdict="accepted", reason=None)
        else:
            found.update(verdict="not_checked", reason=f"{message.kind.replace('_', ' ')}: recorded, never relayed")
    results = None
    if authserv_id:
        try:
            headers = parse(raw).headers.get("authentication-results", ())
        except Exception:
            headers = ()
        trusted = trust.trusted_results(headers, authserv_id)
        if trusted is not None:
            results = {"authserv_id": authserv_id, "dmarc": trusted.dmarc, "spf": trusted.spf, "dkim": trusted.dkim}
    return {**found, "authentication_results": results}
