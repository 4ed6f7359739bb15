"""The JSON API over real HTTP: open by API then the merchant answers by mail (real SMTP),
idempotent retries, bad tokens, bad input, all-or-nothing upserts, reads and lists."""

from __future__ import annotations

import base64
from datetime import timedelta

from sqlalchemy import func, select

from gateway.models import Case, Transaction
from tests.harness import CUSTOMER, MERCHANT, STAFF, build_mail, tx_date
from tests.http.conftest import READER_TOKEN


def _count(api, model, *where) -> int:
    with api.gateway.runtime.database.unit_of_work() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


def test_open_by_api_then_the_merchant_answers_by_mail(api):
    with api.client() as http:
        answer = http.post("/v1/cases", json={"reference": "TX-1001", "category": "delivery",
                                              "text": "The parcel never came. Tracking says nothing.",
                                              "attachments": [{"filename": "receipt.txt", "content_type": "text/plain",
                                                               "content_base64": base64.b64encode(b"paid").decode()}]})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["customer_address"].startswith(f"case+{body['reference'].lower()}-c-")
        assert body["state"] == "awaiting_merchant" and body["joined"] is False
        assert answer.headers["location"] == f"/v1/cases/{body['reference']}"
        # the customer gets the acknowledgement from her case address, the merchant the complaint
        sink = api.sink
        sink.wait(lambda _: len(sink.to(MERCHANT)) >= 2 and sink.to(CUSTOMER) and sink.to(STAFF[0]))
        ack = sink.to(CUSTOMER)[-1]
        assert body["customer_address"] in ack.header("From") and "/status/" in ack.text()
        relay = next(r for r in sink.to(MERCHANT) if "Auto-Submitted" not in r.message)
        assert "The parcel never came." in relay.text() and CUSTOMER not in relay.message.as_string()
        # the merchant answers by mail to its case address, over SMTP
        merchant_address = relay.header("Reply-To") or relay.header("From").split("<")[1].rstrip(">")
        before = len(sink.to(CUSTOMER))
        api.gateway.send(build_mail(sender=MERCHANT, to=merchant_address, subject="Re: " + relay.header("Subject"),
                                    body="We are sorry: a new parcel left today.",
                                    in_reply_to=relay.header("Message-ID")), to=merchant_address, sender=MERCHANT)
        sink.wait(lambda _: len(sink.to(CUSTOMER)) > before)
        api.gateway.settle()
        case = http.get(f"/v1/cases/{body['reference']}").json()
        assert case["state"] == "awaiting_customer" and case["must_act"] == "customer"
        assert [m["author"] for m in case["messages"]] == ["customer", "merchant"]
        assert "a new parcel left today" in case["messages"][1]["text"]
        text = str(case)
        assert CUSTOMER not in text and MERCHANT not in text and "staff@" not in text
        assert {"case_opened", "merchant_replied"} <= {h["kind"] for h in case["history"]}


def test_a_retry_with_the_same_idempotency_key_opens_nothing_twice(api):
    call = {"reference": "TX-2001", "category": "payment", "text": "I was charged twice."}
    with api.client() as http:
        first = http.post("/v1/cases", json=call, headers={"Idempotency-Key": "order-77-attempt"})
        again = http.post("/v1/cases", json=call, headers={"Idempotency-Key": "order-77-attempt"})
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
        assert _count(api, Case, Case.transaction_reference == "TX-2001") == 1
        other = http.post("/v1/cases", json={**call, "text": "Something else"},
                          headers={"Idempotency-Key": "order-77-attempt"})
        assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
        # without a key, a second complaint about the same transaction joins the open case
        joined = http.post("/v1/cases", json={**call, "text": "Also: the second charge is 15 EUR."})
        assert joined.status_code == 201 and joined.json()["joined"] is True
        assert joined.json()["reference"] == first.json()["reference"]
        assert _count(api, Case, Case.transaction_reference == "TX-2001") == 1
        listed = http.get("/v1/customers/dave@other.test/cases").json()
        assert [c["reference"] for c in listed["items"]] == [first.json()["reference"]] and listed["total"] == 1
        by_merchant = http.get("/v1/merchants/shop1/cases").json()
        assert first.json()["reference"] in [c["reference"] for c in by_merchant["items"]]


def test_bad_tokens_are_refused_with_problem_details(api):
    call = {"reference": "TX-1002", "category": "payment", "text": "x"}
    for token in (None, "wrong-token-wrong-token-wrong", ""):
        with api.client(token) as http:
            answer = http.post("/v1/cases", json=call)
            assert answer.status_code == 401, token
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["status"] == 401 and answer.json()["title"] and answer.json()["detail"]
            assert answer.headers["www-authenticate"].startswith("Bearer")
    with api.client(READER_TOKEN) as http:  # a token without the scope
        answer = http.post("/v1/cases", json=call)
        assert answer.status_code == 403 and "cases:write" in answer.json()["detail"]
        assert http.get("/v1/merchants/shop1/cases").status_code == 200
    assert _count(api, Case, Case.transaction_reference == "TX-1002") == 0


def test_bad_input_is_a_clear_problem_and_never_half_applies(api):
    with api.client() as http:
        for body, field in (({"reference": "TX-1002", "category": "refund", "text": "x"}, "category"),
                            ({"reference": "TX-1002", "category": "payment"}, "text"),
                            ({"reference": "TX-1002", "category": "payment", "text": "x", "extra": 1}, "extra")):
            answer = http.post("/v1/cases", json=body)
            assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == field, answer.text
        unknown = http.post("/v1/cases", json={"reference": "TX-9999", "category": "payment", "text": "x"})
        assert unknown.status_code == 404 and unknown.json()["type"].endswith("/unknown-transaction")
        stranger = http.post("/v1/cases", json={"reference": "TX-1002", "category": "payment", "text": "x",
                                                "customer_email": "mallory@evil.test"})
        assert stranger.status_code == 404 and stranger.json()["errors"][0]["field"] == "customer_email"
        assert http.get("/v1/cases/zzzzzzzz").status_code == 404
        # all or nothing: one bad transaction, nothing saved; the CSV import's messages
        good = {"reference": "TX-3001", "merchant_id": "shop1", "customer_email": "erin@customer.test",
                "customer_name": "Erin", "amount": "10.00", "currency": "EUR", "transaction_date": _day(api)}
        bad = {**good, "reference": "TX-3002", "merchant_id": "nope", "amount": "ten"}
        answer = http.post("/v1/transactions", json={"items": [good, bad]})
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"] == [{"index": 1, "field": "merchant_id",
                                            "problem": "unknown merchant 'nope' (import merchants first)"}]
        assert _count(api, Transaction, Transaction.reference.in_(["TX-3001", "TX-3002"])) == 0
        assert http.post("/v1/transactions", json={"items": [good]}).json() == {"created": 1, "updated": 0}
        assert http.post("/v1/transactions", json={"items": [{**good, "amount": 12}]}).json() == {
            "created": 0, "updated": 1}
        merchants = http.post("/v1/merchants", json={"items": [
            {"merchant_id": "shop3", "name": "Shop Three", "support_email": "help@three.test", "locale": "fr"},
            {"merchant_id": "shop3", "name": "Shop Four", "support_email": "four@four.test", "locale": "en"}]})
        assert merchants.status_code == 422 and merchants.json()["errors"][0]["field"] == "merchant_id"
        assert "merchants[1].merchant_id: 'shop3' appears twice" in merchants.json()["detail"]
        shape = http.post("/v1/merchants", json={"items": [
            {"merchant_id": "shop4", "name": "Shop Four", "support_email": "not-an-address", "locale": "en"}]})
        assert shape.status_code == 422 and shape.json()["errors"][0]["field"] == "items.0.support_email"
        assert http.post("/v1/merchants", json={"items": [
            {"merchant_id": "shop3", "name": "Shop Three", "support_email": "help@three.test", "locale": "fr"}]}
        ).json() == {"created": 1, "updated": 0}


def _day(api) -> str:
    """A purchase date a few days before the test clock's now."""
    return str(tx_date(api.gateway.clock.now(), 4).date())


def test_an_idempotency_key_is_forgotten_after_its_hours(api):
    """Kept [http] idempotency_hours (24): a retry within them replays the answer, the
    scheduler's sweep forgets the key after them, and the same key then makes a new call.
    (Moves this module's clock on a day: keep it last.)"""
    call = {"reference": "TX-2001", "category": "payment", "text": "Charged twice for one order."}
    later = {**call, "text": "Now charged a third time."}
    with api.client() as http:
        first = http.post("/v1/cases", json=call, headers={"Idempotency-Key": "order-91"})
        assert first.status_code == 201
        clock = api.gateway.clock
        clock.set(clock.now() + timedelta(hours=23))
        api.gateway.sweep()
        replay = http.post("/v1/cases", json=call, headers={"Idempotency-Key": "order-91"})
        assert replay.headers.get("idempotent-replayed") == "true" and replay.json() == first.json()
        assert http.post("/v1/cases", json=later, headers={"Idempotency-Key": "order-91"}).status_code == 422
        clock.set(clock.now() + timedelta(hours=2))
        api.gateway.sweep()
        again = http.post("/v1/cases", json=later, headers={"Idempotency-Key": "order-91"})
        assert again.status_code == 201 and "idempotent-replayed" not in again.headers
        assert again.json()["reference"] == first.json()["reference"]  # a new call, which joins the open case
