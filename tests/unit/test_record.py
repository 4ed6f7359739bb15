"""casework/record.py, the only writer of case state: every change through the state machine,
every change an event; checked on an in-memory database with a fixed clock."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.cases import timers
from gateway.cases.machine import CaseState, EventKind
from gateway.casework import record
from gateway.mail.bounces.reasons import REPORT_REASONS, Reason
from gateway.mail.classify import Kind
from gateway.models import Case, Event
from tests.unit.casework_db import NOW, add_case, session, settings, work

ROOT = Path(__file__).resolve().parents[2]
CASE_FIELDS = {column.name for column in Case.__table__.columns}


@pytest.fixture
def unit(tmp_path):
    db = session()
    yield work(db, settings(tmp_path))
    db.close()


def events(unit, case) -> list[Event]:
    unit.db.flush()
    return list(unit.db.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.id)))


def _writes(tree: ast.AST) -> list[tuple[int, str]]:
    """Assignments to a case's column (`case.state = ...`, `other.frozen = ...`, setattr)."""
    found = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr in CASE_FIELDS and \
                    isinstance(target.value, ast.Name) and target.value.id in ("case", "other"):
                found.append((node.lineno, target.attr))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr" and \
                node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in ("case", "other"):
            found.append((node.lineno, "setattr"))
    return found


def test_nothing_but_record_writes_a_case():
    writers = {}
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in ("gateway/casework/record.py",) or relative.startswith("gateway/migrations/"):
            continue
        if found := _writes(ast.parse(path.read_text(encoding="utf-8"))):
            writers[relative] = found
    assert writers == {}


def test_the_writer_check_sees_a_write():
    assert _writes(ast.parse("case.state = 'closed'\nother.frozen = True\nsetattr(case, 'x', 1)")) == \
        [(1, "state"), (2, "frozen"), (3, "setattr")]


def test_a_move_goes_through_the_machine_and_is_an_event(unit):
    case = add_case(unit.db, state=CaseState.AWAITING_MERCHANT, waiting_since=NOW - timedelta(days=2))
    assert record.move(unit, case, EventKind.MERCHANT_REPLIED, party="m")
    assert (case.state, case.waiting_since) == ("awaiting_customer", NOW)
    [event] = events(unit, case)
    assert (event.kind, event.party, event.at) == ("merchant_replied", "m", NOW)
    assert event.detail == {"state_before": "awaiting_merchant", "state_after": "awaiting_customer", "applied": True}


def test_a_refused_move_changes_nothing_and_keeps_the_machines_reason(unit):
    case = add_case(unit.db, state=CaseState.CLOSED, closed_reason="expired", closed_at=NOW)
    assert not record.move(unit, case, EventKind.MERCHANT_REPLIED, party="m")
    assert (case.state, case.closed_reason) == ("closed", "expired")
    [event] = events(unit, case)
    assert event.detail["applied"] is False
    assert event.detail["refused"] == "merchant_replied ignored in closed"


def test_closing_and_reopening_set_and_clear_the_closed_fields(unit):
    case = add_case(unit.db, state=CaseState.WITH_STAFF)
    assert record.move(unit, case, EventKind.STAFF_CLOSED, party="s", note="agreed")
    assert (case.state, case.closed_reason, case.closed_at) == ("closed", "staff_agreement", NOW)
    assert record.move(unit, case, EventKind.REOPENED, party="s")
    assert (case.state, case.closed_reason, case.closed_at, case.escalated) == ("with_staff", None, None, True)
    assert [e.kind for e in events(unit, case)] == ["staff_closed", "reopened"]


def test_a_merchant_bounce_flags_the_case_through_the_machine(unit):
    case = add_case(unit.db)
    assert record.move(unit, case, EventKind.MERCHANT_BOUNCED, party=None, reason="merchant_bounced")
    assert (case.state, case.escalated, case.merchant_unreachable) == ("with_staff", True, True)


@pytest.mark.parametrize("kind, field, before, after", [
    (EventKind.CASE_FROZEN, "frozen", False, True),
    (EventKind.CASE_UNFROZEN, "frozen", True, False),
    (EventKind.MERCHANT_ADDRESS_CLEARED, "merchant_unreachable", True, False),
    (EventKind.DELIVERY_RETRIED, "merchant_unreachable", True, False),
])
def test_flag_events_set_their_flag_and_are_recorded(unit, kind, field, before, after):
    case = add_case(unit.db, state=CaseState.WITH_STAFF)
    setattr(case, field, before)
    record.flag(unit, case, kind, party="s", messages=2)
    assert getattr(case, field) is after and case.state == "with_staff"
    [event] = events(unit, case)
    assert (event.kind, event.detail) == (kind.value, {"messages": 2})


def test_a_state_event_is_not_a_flag(unit):
    case = add_case(unit.db)
    with pytest.raises(ValueError, match="not a flag event"):
        record.flag(unit, case, EventKind.ESCALATED)
    assert events(unit, case) == []


def test_a_received_message_sets_when_its_party_last_wrote(unit):
    case = add_case(unit.db)
    record.received(unit, case, "m", None, joined=False)
    assert case.last_merchant_message_at == NOW and case.last_customer_message_at is None
    [event] = events(unit, case)
    assert (event.kind, event.party, event.detail) == ("message_received", "m", {"joined": False})


def _string_kinds(tree: ast.AST) -> list[int]:
    """Lines recording an event whose kind is written as a string, not an EventKind."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("note", "add_event") and len(node.args) >= 3 and \
                isinstance(node.args[2], (ast.Constant, ast.JoinedStr)):
            found.append(node.lineno)
    return found


def test_every_event_kind_is_an_event_kind():
    found = {path.relative_to(ROOT).as_posix(): lines for path in sorted((ROOT / "gateway").rglob("*.py"))
             if (lines := _string_kinds(ast.parse(path.read_text(encoding="utf-8"))))}
    assert found == {}
    assert _string_kinds(ast.parse('record.note(work, case, "staff_note")\nrecord.note(w, c, f"{k}_recorded")')) == [1, 2]


def test_the_kinds_built_from_names_exist():
    """Automatic mail by its kind or report reason, and timers by their kind, name members."""
    recorded = [k.value for k in Kind] + [r.value for r in REPORT_REASONS - {Reason.DELIVERED, Reason.EXPANDED,
                                                                             Reason.FEEDBACK}]
    assert all(EventKind.recorded(name) for name in recorded)
    assert all(EventKind.timer(kind) for kind in set(timers.CHAINS) | {timers.CARD_WINDOW, timers.PRECLOSE,
                                                                      timers.AUTOCLOSE})
