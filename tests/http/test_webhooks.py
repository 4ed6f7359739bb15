"""Webhooks to a real local HTTP receiver: signed (Standard Webhooks), one event id per
event, delivered through the outbox; a receiver that is down for a while gets them later."""

from __future__ import annotations

from sqlalchemy import select

from gateway import webhooks
from gateway.models import Outbox
from tests.harness import CUSTOMER, build_mail, tx_date
from tests.http.conftest import OLD_WEBHOOK_SECRET, WEBHOOK_SECRET


def _open(api, reference: str, category: str = "delivery", *, answer: bool = False):
    with api.client() as http:
        opened = http.post("/v1/cases", json={"reference": reference, "category": category, "text": "Never came."})
        assert opened.status_code == 201, opened.text
        return opened.json() if answer else opened.json()["reference"]


def test_case_events_arrive_signed_with_an_event_id(api):
    opened_case = _open(api, "TX-1002", answer=True)
    reference = opened_case["reference"]
    receiver, clock = api.receiver, api.gateway.clock
    opened = receiver.wait(lambda: receiver.events("case.opened", reference), what="case.opened")[0]
    headers, body = opened["headers"], opened["body"]
    assert webhooks.verify(WEBHOOK_SECRET, headers, body, now=clock.now().timestamp())
    # while a secret is rotated, a receiver still on the old one accepts the delivery too
    assert len(headers["webhook-signature"].split()) == 2
    assert webhooks.verify(OLD_WEBHOOK_SECRET, headers, body, now=clock.now().timestamp())
    assert not webhooks.verify("another-secret-another-secret-00", headers, body, now=clock.now().timestamp())
    assert not webhooks.verify(WEBHOOK_SECRET, headers, body + b" ", now=clock.now().timestamp())
    assert headers["webhook-id"] == opened["json"]["id"] and headers["webhook-id"].startswith("evt_")
    case = opened["json"]["data"]["case"]
    assert case["transaction_reference"] == "TX-1002" and case["state"] == "awaiting_merchant"
    assert "carol" not in body.decode().lower() and "sav@boutique" not in body.decode()
    # the merchant (shop2, sav@boutique.test) answers by mail: case.answered
    relay = api.sink.wait(lambda _: [r for r in api.sink.to("sav@boutique.test")
                                     if "Auto-Submitted" not in r.message and reference in r.header("Subject")])
    relay = [r for r in api.sink.to("sav@boutique.test") if "Auto-Submitted" not in r.message
             and reference in r.header("Subject")][0]
    address = relay.header("From").split("<")[1].rstrip(">")
    api.gateway.send(build_mail(sender="sav@boutique.test", to=address, subject="Re: " + relay.header("Subject"),
                                body="Colis renvoyé.", in_reply_to=relay.header("Message-ID")), to=address,
                     sender="sav@boutique.test")
    answered = receiver.wait(lambda: receiver.events("case.answered", reference), what="case.answered")
    assert answered[0]["json"]["data"]["case"]["state"] == "awaiting_customer"
    # the customer writes #resolved to her case address: case.closed
    address = opened_case["customer_address"]
    api.gateway.send(build_mail(sender=CUSTOMER, to=address, subject="Re: thanks", body="#resolved\nThank you."),
                     to=address, sender=CUSTOMER)
    closed = receiver.wait(lambda: receiver.events("case.closed", reference), what="case.closed")
    assert closed[0]["json"]["data"]["case"]["state"] == "closed"
    assert closed[0]["json"]["data"]["case"]["closed_reason"] == "customer_resolved"
    ids = [r["json"]["id"] for r in receiver.events(reference=reference)]
    assert len(ids) == len(set(ids))  # one id per event; a redelivery would repeat it


def test_a_receiver_that_is_down_for_a_while_gets_every_event_later(api):
    receiver = api.receiver
    receiver.stop()  # connection refused
    try:
        with api.client() as http:  # a fresh transaction, so this test does not depend on the others
            assert http.post("/v1/transactions", json={"items": [{
                "reference": "TX-5001", "merchant_id": "shop1", "customer_email": "frank@customer.test",
                "customer_name": "Frank", "amount": "5", "currency": "EUR", "transaction_date": _day(api)}]}
            ).status_code == 200
        reference = _open(api, "TX-5001", "payment")
        database = api.gateway.runtime.database

        def failing():
            with database.unit_of_work() as db:
                rows = db.scalars(select(Outbox).where(Outbox.kind == "webhook", Outbox.status == "pending",
                                                       Outbox.attempts >= 2)).all()
                return [r for r in rows if reference in r.raw.decode()]

        rows = receiver.wait(failing, what="failed attempts recorded")
        assert "Connection refused" in (rows[0].last_error or "") or "refused" in (rows[0].last_error or "").lower()
    finally:
        receiver.start()  # back on the same port
    opened = receiver.wait(lambda: receiver.events("case.opened", reference), timeout=30, what="late delivery")
    assert webhooks.verify(WEBHOOK_SECRET, opened[0]["headers"], opened[0]["body"],
                           now=api.gateway.clock.now().timestamp())
    with database.unit_of_work() as db:
        rows = [r for r in db.scalars(select(Outbox).where(Outbox.kind == "webhook")) if reference in r.raw.decode()]
        assert rows and all(r.status == "sent" for r in rows if b'"case.opened"' in r.raw)


def test_an_endpoint_that_refuses_for_good_leaves_a_visible_failure(api):
    receiver = api.receiver
    receiver.status = 400
    try:
        with api.client() as http:
            assert http.post("/v1/transactions", json={"items": [{
                "reference": "TX-5002", "merchant_id": "shop1", "customer_email": "gina@customer.test",
                "customer_name": "Gina", "amount": "5", "currency": "EUR", "transaction_date": _day(api)}]}
            ).status_code == 200
        reference = _open(api, "TX-5002", "payment")

        def failed():
            with api.gateway.runtime.database.unit_of_work() as db:
                return [r for r in db.scalars(select(Outbox).where(Outbox.kind == "webhook",
                                                                  Outbox.status == "failed"))
                        if reference in r.raw.decode()]

        row = receiver.wait(failed, what="a failed webhook row")[0]
        assert "HTTP 400" in row.last_error and row.smtp_code == 400
    finally:
        receiver.status = 200


def _day(api) -> str:
    """A purchase date a few days before the test clock's now."""
    return str(tx_date(api.gateway.clock.now(), 4).date())
