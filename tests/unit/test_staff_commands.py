"""casework/staff_commands.py: each staff command on its own (in-memory database, fixed
clock, the real command reader and templates)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway import rights
from gateway.cases.machine import CaseState
from gateway.casework import staff_commands
from gateway.casework.record import record_inbound
from gateway.models import Event, Message, Outbox
from tests.unit.casework_db import add_case, db, NOW, settings, step  # db: the fixture


@pytest.fixture
def config(tmp_path):
    return settings(tmp_path)


def staff(db, config, case, text):
    mail = step(db, config, case, "s", text)
    staff_commands.handle(mail, case, False)
    db.flush()
    return mail


def kinds(db, case) -> list[str]:
    return [e.kind for e in db.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.id))]


def sent(db, case) -> list[tuple[str, str]]:
    return [(r.kind, r.party) for r in db.scalars(select(Outbox).where(Outbox.case_id == case.id).order_by(Outbox.id))]


def test_the_commands_apply_in_this_order():
    assert list(staff_commands.COMMANDS) == ["export", "note", "reopen", "unfreeze", "type", "release", "retry",
                                             "close"]


def test_note_is_kept_from_the_parties(db, config):
    case = add_case(db)
    mail = staff(db, config, case, "#note\nthe merchant called us")
    assert "internal staff note recorded" in mail.inbound.disposition
    assert kinds(db, case)[-1] == "staff_note" and sent(db, case) == []


def test_close(db, config):
    case = add_case(db, state=CaseState.WITH_STAFF)
    mail = staff(db, config, case, "#close refunded")
    assert (case.state, case.closed_reason, case.closed_at) == ("closed", "staff_agreement", NOW)
    assert "closed by staff" in mail.inbound.disposition
    assert ("case_closed", "c") in sent(db, case)


def test_reopen(db, config):
    case = add_case(db, state=CaseState.CLOSED, closed_reason="expired", closed_at=NOW)
    staff(db, config, case, "#reopen")
    assert (case.state, case.closed_reason, case.closed_at) == ("with_staff", None, None)


def test_unfreeze(db, config):
    case = add_case(db, frozen=True)
    staff(db, config, case, "#unfreeze")
    assert case.frozen is False and "case_unfrozen" in kinds(db, case)


def test_type(db, config):
    case = add_case(db)
    staff(db, config, case, "#type not delivered")
    assert case.dispute_type == rights.parse_type_name("not delivered") == "not_delivered"
    assert "type_set" in kinds(db, case)


def test_release(db, config):
    case = add_case(db)
    held = record_inbound(step(db, config, case, "m", "we shipped it"), case, "m", held_reason="unverified")
    db.flush()
    staff(db, config, case, f"#release {held.id}")
    assert db.get(Message, held.id).released_at == NOW
    assert ("relay", "c") in sent(db, case) and "message_released" in kinds(db, case)


def test_release_of_nothing_held_is_refused_and_staff_told(db, config):
    case = add_case(db)
    mail = staff(db, config, case, "#release 99")
    assert "refused: #release 99" in mail.inbound.disposition
    assert sent(db, case) == [("staff_unknown_command", "s")]


def test_retry_with_nothing_failed_is_refused(db, config):
    case = add_case(db)
    mail = staff(db, config, case, "#retry")
    assert "refused: #retry: nothing to send again" in mail.inbound.disposition


def test_a_misplaced_command_does_nothing(db, config):
    case = add_case(db)
    mail = staff(db, config, case, "Hello both,\n#note this was meant to stay internal")
    assert "staff command refused" in mail.inbound.disposition
    assert sent(db, case) == [("staff_unknown_command", "s")]


def test_plain_text_goes_to_both_parties(db, config):
    case = add_case(db)
    mail = staff(db, config, case, "Please send the tracking number.")
    assert sorted(sent(db, case)) == [("relay", "c"), ("relay", "m")]
    assert kinds(db, case)[-1] == "staff_wrote" and "relayed to c,m" in mail.inbound.disposition
