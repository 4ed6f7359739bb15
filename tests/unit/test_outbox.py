"""outbox/: the rate ladder, the parties, queueing and composing a notice, on an in-memory
database with a fixed clock (no SMTP: rows are what is checked)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.models import Event, Merchant, Outbox, SendLog
from gateway.notices import Notice
from gateway.outbox import ladder
from gateway.outbox.context import case_subject, clean_subject
from gateway.outbox.queue import queue
from tests.unit.casework_db import add_case, CUSTOMER, db, MERCHANT, NOW, settings, STAFF, work  # db: the fixture

STRANGER = "someone@elsewhere.example"


@pytest.fixture
def strict(tmp_path):
    return settings(tmp_path, hygiene={"notices_per_address_per_hour": 2, "notices_per_address_per_day": 3})


def test_the_ladder_counts_answers_per_hour_and_per_day(db, strict):
    climbs = [ladder.climb(db, strict, STRANGER, Notice.UNKNOWN_REFERENCE, now=NOW) for _ in range(3)]
    assert [r.allowed for r in climbs] == [True, True, False]
    assert (climbs[2].last_hour, climbs[2].last_day) == (2, 2)
    later = NOW + timedelta(hours=2)  # the hour has passed, the day has not
    assert [ladder.climb(db, strict, STRANGER.upper(), Notice.UNKNOWN_REFERENCE, now=later).allowed
            for _ in range(2)] == [True, False]


def test_staff_and_case_notices_are_not_on_the_ladder(db, strict):
    assert all(ladder.climb(db, strict, STAFF, Notice.UNKNOWN_REFERENCE, now=NOW).allowed for _ in range(5))
    assert all(ladder.climb(db, strict, STRANGER, Notice.CASE_CLOSED, now=NOW).allowed for _ in range(5))
    assert db.scalars(select(SendLog)).all() == []


def test_staff_hear_of_a_suppression_once_an_hour(db):
    assert ladder.first_suppression_this_hour(db, STRANGER, now=NOW)
    db.flush()
    assert not ladder.first_suppression_this_hour(db, STRANGER, now=NOW + timedelta(minutes=59))
    assert ladder.first_suppression_this_hour(db, STRANGER, now=NOW + timedelta(minutes=61))


def test_a_merchant_with_an_invalid_address_receives_nothing(db, tmp_path):
    unit = work(db, settings(tmp_path))
    case = add_case(db)
    assert unit.parties.recipients(case, "m") == [MERCHANT]
    assert unit.parties.merchant_of(case) is unit.parties.merchant_of(case)  # read once per unit of work
    db.get(Merchant, "shop").address_invalid = True
    assert unit.parties.recipients(case, "m") == []
    assert unit.parties.recipients(case, "c") == [CUSTOMER] and unit.parties.recipients(case, "s") == [STAFF]


def test_names_shown_to_another_party_never_carry_an_address(db, tmp_path):
    unit = work(db, settings(tmp_path))
    case = add_case(db)
    db.get(Merchant, "shop").name = "Shop support@shop.example"
    assert unit.parties.author_name(case, "m", "fr") == "Shop support shop.example (marchand) via Disputes"
    assert unit.parties.author_name(case, "s", "en") == "Disputes (staff)"


def test_a_queued_row_is_pending_and_leased_to_its_unit_of_work(db, tmp_path):
    the_settings = settings(tmp_path)
    case = add_case(db)
    outbox_id = queue(db, the_settings, raw=b"x", recipient=CUSTOMER, kind="relay", party="c", case=case,
                      message_id="<m@x>", inbound_id=None, now=NOW)
    row = db.get(Outbox, outbox_id)
    assert (row.status, row.attempts, row.next_attempt_at, row.case_id) == ("pending", 0, NOW, case.id)
    assert row.lease_until == NOW + timedelta(seconds=the_settings.workers.lease_seconds)
    assert len(row.verp_token) > 10


def test_a_notice_is_one_row_per_address_a_message_and_an_event(db, tmp_path):
    unit = work(db, settings(tmp_path))
    case = add_case(db)
    ids = unit.mailer.notice(Notice.CASE_CLOSED, case, "c", {"closing": {"reason": "expired", "note": ""}})
    assert ids == unit.mailer.outbox_ids and len(ids) == 1
    row = db.get(Outbox, ids[0])
    assert (row.recipient, row.kind, row.party) == (CUSTOMER, "case_closed", "c")
    assert f"[Case {case.reference.upper()}] Parcel".encode() in row.raw
    db.flush()
    [event] = db.scalars(select(Event).where(Event.case_id == case.id)).all()
    assert (event.kind, event.detail["notice"]) == ("notice_sent", "case_closed")


def test_subjects():
    assert clean_subject("Re: RE: Fwd: [Case ABCD2345] My parcel") == "My parcel"
    assert clean_subject("AW: TR: ") == "Dispute"
    assert clean_subject("Sv[2]: \x07order   late") == "order late"


def test_a_row_is_claimed_once_in_one_statement_and_a_large_one_is_left_for_the_large_queue(db, tmp_path):
    from gateway import store

    config = settings(tmp_path)
    small = queue(db, config, raw=b"x" * 100, recipient=MERCHANT, kind="relay", party="m", case=None,
                  message_id="<a@x>", inbound_id=None, now=NOW)
    large = queue(db, config, raw=b"x" * 5000, recipient=MERCHANT, kind="relay", party="m", case=None,
                  message_id="<b@x>", inbound_id=None, now=NOW)
    later = queue(db, config, raw=b"x" * 100, recipient=MERCHANT, kind="relay", party="m", case=None,
                  message_id="<c@x>", inbound_id=None, now=NOW + timedelta(hours=1))
    db.commit()
    connection = db.connection()
    claimed = store.claim_outbox(connection, small, now=NOW, lease_seconds=60, holder="p1", below_bytes=1000)
    assert (claimed.recipient, claimed.attempts, claimed.kind, claimed.raw) == (MERCHANT, 1, "relay", b"x" * 100)
    assert store.claim_outbox(connection, small, now=NOW, lease_seconds=60, holder="p2") is None  # already sending
    with pytest.raises(store.TooLarge):
        store.claim_outbox(connection, large, now=NOW, lease_seconds=60, holder="p1", below_bytes=1000)
    assert store.claim_outbox(connection, later, now=NOW, lease_seconds=60, holder="p1", below_bytes=1000) is None
    assert store.claim_outbox(connection, large, now=NOW, lease_seconds=60, holder="p1").attempts == 1
    rows = {row.id: row for row in db.scalars(select(Outbox).execution_options(populate_existing=True))}
    assert (rows[small].status, rows[small].holder, rows[small].lease_until) == ("sending", "p1", NOW + timedelta(seconds=60))
    assert (rows[large].status, rows[later].status) == ("sending", "pending")
