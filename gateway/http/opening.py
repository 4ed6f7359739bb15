"""Opening a case by API: the customer's complaint becomes a message to the intake address,
stored like received mail and processed by the mail intake itself (gateway/casework/intake.py),
so the checks, the notices and the joining of an open case are the mail intake's own.

What differs from mail is only who vouches for the sender: the provider's account page has
logged the customer in, so the message is taken as authenticated for the transaction's
customer ("api token <name>" in the case history), the way an aligned DMARC pass is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway import addresses, pipeline, store
from gateway.http.problems import Problem
from gateway.http.schemas import OpenCase
from gateway.mail.compose import new_message_id
from gateway.mail.trust import AuthResults
from gateway.models import ApiIdempotency

log = logging.getLogger(__name__)
SOURCE = "api"


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    outbox_ids: tuple[int, ...] = ()
    replayed: bool = False


def request_hash(path: str, body: OpenCase) -> str:
    return hashlib.sha256(f"{path}\0{json.dumps(body.model_dump(), sort_keys=True)}".encode()).hexdigest()


def compose(body: OpenCase, tx, *, domain: str, now) -> bytes:
    """The complaint as the mail the customer would have written to the category's intake
    address: her text, a subject naming the transaction, her attachments."""
    message = EmailMessage(policy=SMTP)
    message["From"] = formataddr((tx.customer_name or "", tx.customer_email))
    message["To"] = f"{body.category}@{domain}"
    message["Subject"] = f"{tx.reference}: {body.subject}" if body.subject else f"Transaction {tx.reference}"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = new_message_id(domain)
    message.set_content(body.text)
    for index, attachment in enumerate(body.attachments):
        try:
            data = base64.b64decode(attachment.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise Problem(422, "invalid-attachment", "Invalid attachment",
                          f"attachments[{index}].content_base64 is not base64",
                          errors=[{"field": f"attachments[{index}].content_base64", "problem": "not base64"}]) from None
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return message.as_bytes()


def open_case(runtime, body: OpenCase, *, token_name: str, idempotency_key: str | None, path: str) -> Answer:
    """Open (or join) the case of `body.reference` in one unit of work; a retry with the same
    Idempotency-Key gets the first answer back and opens nothing."""
    digest = request_hash(path, body)
    for _ in range(2):  # a concurrent first call with the same key: read its answer
        try:
            with runtime.database.unit_of_work() as db:
                return _open(db, runtime, body, token_name=token_name, key=idempotency_key, digest=digest)
        except IntegrityError:
            if idempotency_key is None:
                raise
    raise Problem(409, "idempotency-conflict", "Call in progress",
                  "another call with this Idempotency-Key is in progress; try again")


def _open(db, runtime, body: OpenCase, *, token_name: str, key: str | None, digest: str) -> Answer:
    settings, now = runtime.settings, runtime.now()
    record = None
    if key is not None:
        earlier = db.scalar(select(ApiIdempotency).where(ApiIdempotency.token_name == token_name,
                                                         ApiIdempotency.key == key))
        if earlier is not None:
            if earlier.request_hash != digest:
                raise Problem(422, "idempotency-key-reused", "Idempotency-Key reused",
                              "this Idempotency-Key was used for a different request")
            return Answer(earlier.status_code, earlier.response, replayed=True)
        record = ApiIdempotency(token_name=token_name, key=key, request_hash=digest, status_code=0, response={},
                                created_at=now)
        db.add(record)
        db.flush()  # a concurrent call with the same key waits here (unique index), then fails
    found = store.transactions_by_keys(db, [body.reference])
    if not found:
        raise Problem(404, "unknown-transaction", "Unknown transaction",
                      f"no transaction has the reference {body.reference!r}",
                      errors=[{"field": "reference", "problem": "unknown transaction"}])
    tx = found[0]
    if body.customer_email is not None and body.customer_email.strip().lower() != tx.customer_email:
        raise Problem(404, "unknown-transaction", "Unknown transaction",
                      f"the customer has no transaction with the reference {body.reference!r}",
                      errors=[{"field": "customer_email", "problem": "not the transaction's customer"}])
    existing = store.open_case_for_transaction(db, tx.reference)
    raw = compose(body, tx, domain=settings.gateway.domain, now=now)
    inbound_id, _ = store.save_inbound(db, raw=raw, mail_from=tx.customer_email,
                                       rcpt_tos=[f"{body.category}@{settings.gateway.domain}"], source=SOURCE, now=now,
                                       lease_seconds=settings.workers.lease_seconds)
    prepared = pipeline.prepare(raw, tx.customer_email, settings)
    vouched = AuthResults(dmarc="pass", spf=None, dkim=None, source=f"api token {token_name}")
    prepared = replace(prepared, sender=replace(prepared.sender, auth=vouched))
    result = pipeline.process_inbound(db, inbound_id, settings=settings, renderer=runtime.renderer, now=now,
                                      prepared=prepared)
    case = store.case_by_id(db, result.case_id) if result.case_id is not None else None
    if case is None:
        log.warning("api open-case by %s for %s: no case (%s)", token_name, tx.reference, result.disposition)
        raise Problem(422, "not-opened", "Case not opened", result.disposition or "the complaint opened no case")
    gateway = settings.gateway
    answer = {
        "reference": case.reference.upper(),
        "customer_address": addresses.case_address(case.reference, "c", domain=gateway.domain, keys=gateway.secret_keys),
        "state": case.state,
        "joined": existing is not None and existing.id == case.id,
        "url": f"/v1/cases/{case.reference.upper()}",
    }
    if record is not None:
        record.status_code, record.response = 201, answer
    log.info("api open-case by %s: %s for transaction %s (%s)", token_name, answer["reference"], tx.reference,
             result.disposition)
    return Answer(201, answer, tuple(result.outbox_ids))
