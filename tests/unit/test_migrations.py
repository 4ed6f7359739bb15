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
