"""The Alembic migrations build exactly the schema the models describe, and upgrade an
existing database without losing anything."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, text

from gateway.db import alembic_config, upgrade


def test_migrations_match_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    command.check(alembic_config(url))  # raises if the models need a migration that does not exist


def test_upgrading_a_database_with_duplicate_open_cases_keeps_the_newest(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, "0001")
    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(text("INSERT INTO merchants VALUES ('m1','M','m@x.test','en',0,NULL,NULL,'2026-01-01 00:00:00')"))
        db.execute(text("INSERT INTO transactions VALUES ('T1','t1','m1','c@x.test','C',10,'EUR',"
                        "'2026-01-01 00:00:00','2026-01-01 00:00:00')"))
        for reference in ("aaaaaaaa", "bbbbbbbb"):
            db.execute(text(
                "INSERT INTO cases (reference, transaction_reference, merchant_id, customer_email, dispute_type, "
                "state, escalated, merchant_unreachable, frozen, subject, customer_locale, opened_at, waiting_since) "
                f"VALUES ('{reference}','T1','m1','c@x.test','other','awaiting_merchant',0,0,0,'s','en',"
                "'2026-01-01 00:00:00','2026-01-01 00:00:00')"))
    upgrade(url)
    with engine.begin() as db:
        assert db.execute(text("SELECT reference, state FROM cases ORDER BY id")).all() == [
            ("aaaaaaaa", "closed"), ("bbbbbbbb", "awaiting_merchant")]
    assert "closed 1 duplicate open case" in capsys.readouterr().out
    engine.dispose()


def test_upgrading_gives_every_stored_message_its_outcome_from_the_words(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, "0007")
    engine = create_engine(url)
    words = {
        1: ("quarantined", "quarantined: processing failed 3 time(s)"),
        2: ("quarantined", "unplaced: too large for max_message_bytes; left in its mailbox"),
        3: ("processed", "unplaced: mail for no address of ours"),
        4: ("processed", "intake: reference missing; sender told (0 transactions listed)"),
        5: ("processed", "case ABCD2345: merchant message relayed to c"),
        6: ("processed", "delivery report (mailbox_full: trouble 4.2.2) for outbox 7 to the merchant"),
        7: ("processed", "auto_reply to the bounce address of outbox 3: recorded, not relayed"),
        8: ("queued", None),
    }
    with engine.begin() as db:
        for number, (status, disposition) in words.items():
            db.execute(text("INSERT INTO inbound (id, received_at, source, mail_from, rcpt_tos, raw, size, dedupe_key, "
                            "status, attempts, disposition) VALUES (:id, '2026-11-01 00:00:00', 'smtp', 'a@x.test', "
                            "'[]', x'00', 1, :key, :status, 0, :disposition)"),
                       {"id": number, "key": f"k{number}", "status": status, "disposition": disposition})
    upgrade(url)
    with engine.begin() as db:
        assert dict(db.execute(text("SELECT id, outcome FROM inbound ORDER BY id")).all()) == {
            1: "quarantined", 2: "too_large", 3: "unplaced", 4: "intake", 5: "case", 6: "report", 7: "report", 8: None}
    engine.dispose()
