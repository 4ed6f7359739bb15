"""Webhooks: case events become signed HTTP deliveries through the outbox, the same durable
queue as mail (claims, retries with backoff, the sweep, failures kept and shown by health).

Every event row (gateway.models.Event) is noted when its unit of work flushes; the kinds a
provider can subscribe to (`[[http.webhooks]] events`) are derived from it by `kinds_of`,
and one outbox row of kind "webhook" is written per subscribed endpoint just before the
unit of work commits, in the same transaction as the event: a case event is never recorded without its deliveries, nor a
delivery without its event. The row names the endpoint ("webhook:<name>"), never its
secret; the body is the JSON event, its `id` the one the receiver deduplicates on.

Signatures follow Standard Webhooks (https://www.standardwebhooks.com/):
    webhook-id: <event id>
    webhook-timestamp: <Unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>
The secret is the configured string's UTF-8 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from gateway import addresses
from gateway.models import Case, Event, Outbox
from gateway.transport import PermanentFailure, TemporaryFailure
from gateway.settings import HttpSettings, Settings, WebhookEndpoint

log = logging.getLogger(__name__)
OUTBOX_KIND = "webhook"
RECIPIENT_PREFIX = "webhook:"
# 4xx answers that mean "later", not "never" (RFC 9110; 425 and 429 from RFC 8470 and 6585)
RETRY_STATUSES = frozenset({408, 409, 425, 429})
_ESCALATING = ("escalated", "merchant_bounced")


def kinds_of(kind: str, detail: dict) -> list[str]:
    """The webhook event types a recorded case event amounts to (often none). Pure."""
    applied = detail.get("applied", True)
    found = []
    if kind == "case_opened":
        found.append("case.opened")
    if kind == "merchant_replied":
        found.append("case.answered")
    if kind in _ESCALATING and applied:
        found.append("case.escalated")
    if kind == "merchant_bounced":
        found.append("case.merchant_unreachable")
    if applied and detail.get("state_after") == "closed" and detail.get("state_before") not in (None, "closed"):
        found.append("case.closed")
    return found


def payload(event_id: str, kind: str, case: Case, event: Event, *, settings: Settings) -> dict:
    """The JSON body of one delivery: what the receiver needs to update its view, no
    real address of any party (the customer's own case address is given)."""
    state = event.detail.get("state_after") or case.state
    return {
        "id": event_id,
        "type": kind,
        "created_at": event.at.isoformat(),
        "data": {
            "case": {
                "reference": case.reference.upper(),
                "transaction_reference": case.transaction_reference,
                "merchant_id": case.merchant_id,
                "category": case.category,
                "state": state,
                "escalated": bool(case.escalated),
                "merchant_unreachable": bool(case.merchant_unreachable),
                "opened_at": case.opened_at.isoformat() if case.opened_at else None,
                "closed_reason": case.closed_reason if state == "closed" else None,
                "customer_address": addresses.case_address(case.reference, "c", domain=settings.gateway.domain,
                                                           keys=settings.gateway.secret_keys),
            },
            "event": {"kind": event.kind, "party": addresses.PARTY_NAMES.get(event.party) if event.party else None},
        },
    }


def rows_for(session: Session, event: Event, *, settings: Settings) -> list[Outbox]:
    """The outbox rows `event` calls for: one per endpoint subscribed to one of its kinds."""
    kinds = kinds_of(event.kind, event.detail or {})
    endpoints = settings.http.webhooks
    if not kinds or not endpoints or not settings.http.enabled:
        return []
    with session.no_autoflush:
        case = session.get(Case, event.case_id)
    if case is None:
        return []
    rows = []
    for kind in kinds:
        event_id = f"evt_{secrets.token_hex(12)}"
        body = json.dumps(payload(event_id, kind, case, event, settings=settings), sort_keys=True).encode()
        for endpoint in endpoints:
            if kind not in endpoint.events:
                continue
            rows.append(Outbox(
                case_id=None,  # not mail of the case: exports and transcripts list mail only
                inbound_id=None, party=None, kind=OUTBOX_KIND, recipient=RECIPIENT_PREFIX + endpoint.name,
                verp_token=addresses.random_base32(addresses.TOKEN_CHARS), message_id=event_id, raw=body,
                status="pending", attempts=0, next_attempt_at=event.at,
                lease_until=event.at + timedelta(seconds=settings.workers.lease_seconds), created_at=event.at))
    return rows


def install(sessions, settings: Settings, enqueue=None) -> None:
    """Have every unit of work made by `sessions` (a sessionmaker) write the webhook rows of
    the events it records; after its commit, `enqueue(outbox_id)` hands them to the
    delivery actor at once (without it, or if that fails, the sweep does)."""
    if not settings.http.enabled or not settings.http.webhooks:
        return

    def before_flush(session: Session, _context, _instances) -> None:
        for obj in list(session.new):
            if isinstance(obj, Event) and not obj.__dict__.get("_webhooks_seen"):
                obj._webhooks_seen = True
                session.info.setdefault("webhook_events", []).append(obj)

    def before_commit(session: Session) -> None:
        # At the end of the unit of work, so a delivery says the state the work left the
        # case in (a case opened and sent to the merchant in one go: "awaiting_merchant");
        # a savepoint's release (begin_nested) is not the end.
        if session.in_nested_transaction():
            return
        session.flush()
        rows = [row for event in session.info.pop("webhook_events", [])
                for row in rows_for(session, event, settings=settings)]
        if rows:
            session.add_all(rows)
            session.flush()
            session.info.setdefault("webhook_rows", []).extend(rows)

    def after_commit(session: Session) -> None:
        rows = session.info.pop("webhook_rows", [])
        if enqueue is None:
            return
        for row in rows:
            try:
                enqueue(row.id)
            except Exception as error:  # the broker is down: the sweep takes the row up after its lease
                log.warning("webhook outbox %s not enqueued (%s); the sweep will", row.id, error)

    def after_rollback(session: Session) -> None:
        session.info.pop("webhook_rows", None)
        session.info.pop("webhook_events", None)

    sa_event.listen(sessions, "before_flush", before_flush)
    sa_event.listen(sessions, "before_commit", before_commit)
    sa_event.listen(sessions, "after_commit", after_commit)
    sa_event.listen(sessions, "after_soft_rollback", lambda session, _previous: after_rollback(session))


def sign(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks signature header value of one attempt."""
    mac = hmac.new(secret.encode(), f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signatures(endpoint: WebhookEndpoint, event_id: str, timestamp: int, body: bytes) -> str:
    """The header value: one signature per secret, the current one first, space separated
    (Standard Webhooks), so a receiver verifying with the old secret or the new one accepts
    the delivery while a secret is being rotated."""
    return " ".join(sign(secret, event_id, timestamp, body) for secret in (endpoint.secret, *endpoint.old_secrets))


def verify(secret: str, headers, body: bytes, *, tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """What a receiver does: recompute the signature, compare in constant time, refuse an
    old timestamp (a replay). `headers`: a case-insensitive mapping."""
    event_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not event_id or not timestamp.isdigit():
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > tolerance_seconds:
        return False
    expected = sign(secret, event_id, int(timestamp), body).split(",", 1)[1]
    return any(hmac.compare_digest(expected, part.split(",", 1)[-1])
               for part in headers.get("webhook-signature", "").split())


class WebhookSender:
    """Delivers webhook outbox rows: the Transport protocol (send(mail_from, recipient, raw)),
    so the outbox's claim, retry and failure recording apply unchanged. 2xx: delivered;
    a timeout, a refused connection, 5xx, 408, 409, 425 or 429: retried with backoff for as
    long as it takes (health shows the wait); any other answer fails the row for good."""

    def __init__(self, http: HttpSettings, *, clock=None) -> None:
        self._endpoints = {e.name: e for e in http.webhooks}
        self._timeout = http.webhook_timeout_seconds
        self._clock = clock

    def endpoint(self, recipient: str) -> WebhookEndpoint:
        endpoint = self._endpoints.get(recipient.removeprefix(RECIPIENT_PREFIX))
        if endpoint is None:
            raise PermanentFailure(f"webhook endpoint {recipient.removeprefix(RECIPIENT_PREFIX)!r} is no longer "
                                   "configured ([[http.webhooks]])")
        return endpoint

    def _now(self) -> datetime | None:
        return self._clock() if self._clock else None

    def send(self, mail_from: str, recipient: str, raw: bytes) -> str:
        endpoint = self.endpoint(recipient)
        event_id = json.loads(raw)["id"]
        now = self._now()
        timestamp = int(now.timestamp()) if now else int(time.time())
        request = urllib.request.Request(endpoint.url, data=raw, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "dispute-gateway-webhooks/1",
            "webhook-id": event_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures(endpoint, event_id, timestamp, raw)})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
            if status in RETRY_STATUSES or status >= 500:
                raise TemporaryFailure(f"webhook {endpoint.name}: HTTP {status}", status) from None
            raise PermanentFailure(f"webhook {endpoint.name}: HTTP {status} (not retried)", status) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise TemporaryFailure(f"webhook {endpoint.name}: {reason}") from None
        log.info("webhook %s delivered to %s: HTTP %s", event_id, endpoint.name, status)
        return f"HTTP {status}"
