"""casework/party_mail.py: each gate a party's message passes, on its own (in-memory
database, fixed clock, the real sender check and templates)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.cases.machine import CaseState
from gateway.casework import party_mail
from gateway.mail.classify import Classification, Kind
from gateway.models import Event, Message, Outbox
from tests.unit.casework_db import add_case, db, NOW, settings, step  # db: the fixture

GATE_ORDER = ["loop", "automatic", "rejected", "held", "confirms", "closed", "frozen", "flood"]


@pytest.fixture
def config(tmp_path):
    return settings(tmp_path, hygiene={"authserv_id": "mx.test", "freeze_after_messages": 2})


def kinds(db, case) -> list[str]:
    db.flush()
    return [e.kind for e in db.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.id))]


def test_the_gates_run_in_this_order():
    assert list(party_mail.GATES) == GATE_ORDER


def test_loop(db, config):
    case = add_case(db)
    mail = step(db, config, case, "m", "hello")
    assert not party_mail.GATES["loop"](mail, case, "m")
    mail = replace(mail, classification=Classification(Kind.LOOP, "our own header"))
    assert party_mail.GATES["loop"](mail, case, "m")
    assert kinds(db, case) == ["loop_dropped"] and "came back" in mail.inbound.disposition
    assert mail.inbound.outcome == "case"


def test_automatic(db, config):
    case = add_case(db)
    mail = step(db, config, case, "m", "I am out of office", headers="Auto-Submitted: auto-replied\r\n")
    assert mail.classification.kind is Kind.AUTO_REPLY
    assert party_mail.GATES["automatic"](mail, case, "m")
    assert kinds(db, case) == ["auto_reply_recorded"]


def test_rejected(db, config):
    case = add_case(db)
    ok = step(db, config, case, "m", "hello")
    assert not party_mail.GATES["rejected"](ok, case, "m") and ok.check is not None
    forged = step(db, config, case, "m", "pay here", sender="boss@evil.example",
                  headers="Authentication-Results: mx.test; dmarc=fail header.from=evil.example\r\n")
    assert party_mail.GATES["rejected"](forged, case, "m")
    assert kinds(db, case) == ["message_rejected"]
    assert db.scalar(select(Message.held).where(Message.case_id == case.id)) is True


def test_held(db, config):
    case = add_case(db)
    stranger = step(db, config, case, "c", "it is me, really", sender="carol@elsewhere.example")
    assert not party_mail.GATES["rejected"](stranger, case, "c")
    assert party_mail.GATES["held"](stranger, case, "c")
    assert kinds(db, case) == ["message_held", "notice_sent"]
    assert db.scalar(select(Outbox.kind).where(Outbox.case_id == case.id)) == "staff_held_message"


def test_confirms_only_an_answer_to_our_question(db, config):
    case = add_case(db)
    mail = step(db, config, case, "c", "yes")
    party_mail.GATES["rejected"](mail, case, "c")
    assert not party_mail.GATES["confirms"](mail, case, "c")
    assert kinds(db, case) == []


def test_closed(db, config):
    case = add_case(db, state=CaseState.CLOSED, closed_reason="expired", closed_at=NOW)
    mail = step(db, config, case, "c", "any news?")
    assert party_mail.GATES["closed"](mail, case, "c")
    assert kinds(db, case) == ["mail_to_closed_case", "notice_sent"]
    assert db.scalar(select(Outbox.kind).where(Outbox.case_id == case.id)) == "closed_case_reply"
    reopen = step(db, config, case, "s", "#reopen\nlooking again")
    assert not party_mail.GATES["closed"](reopen, case, "s")


def test_frozen(db, config):
    case = add_case(db, frozen=True)
    mail = step(db, config, case, "m", "again")
    party_mail.GATES["rejected"](mail, case, "m")
    assert party_mail.GATES["frozen"](mail, case, "m")
    assert kinds(db, case) == ["frozen_message_kept"]
    unfreeze = step(db, config, case, "s", "#unfreeze")
    party_mail.GATES["rejected"](unfreeze, case, "s")
    assert not party_mail.GATES["frozen"](unfreeze, case, "s")


def test_flood(db, config):
    case = add_case(db)
    for n in range(2):
        party_mail.handle(step(db, config, case, "m", f"message {n}", now=NOW + timedelta(seconds=n)), case, "m")
    third = step(db, config, case, "m", "message 3", now=NOW + timedelta(seconds=3))
    assert party_mail.GATES["flood"](third, case, "m")
    assert case.frozen and "frozen after 3 messages" in third.inbound.disposition
    assert kinds(db, case)[-2:] == ["case_frozen", "notice_sent"]
