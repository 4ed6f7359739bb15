"""The middle layer on an in-memory SQLite database and a fixed clock: a real session, real
settings, the real templates and mailer; no SMTP, no broker (casework and outbox unit tests)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from gateway import addresses, config, pipeline
from gateway.cases.machine import CaseState
from gateway.casework.work import Step, Work
from gateway.mail.templating import Renderer
from gateway.models import Base, Case, Inbound, Merchant, Transaction
from gateway.outbox.mailer import Mailer
from gateway.settings import DEFAULT_TEMPLATES_DIR

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)  # a Tuesday
DOMAIN = "disputes.example.org"
STAFF = "staff@psp.example"
CUSTOMER = "carol@customer.example"
MERCHANT = "support@shop.example"


def settings(tmp_path: Path, **tables) -> config.Settings:
    data = {"gateway": {"domain": DOMAIN, "secret_keys": ["k" * 32], "staff_addresses": [STAFF]},
            "outbound": {"maildir": "out"}, "database": {"url": "sqlite://"}}
    for name, table in tables.items():
        data[name] = {**data.get(name, {}), **table}
    return config.from_dict(data, source="unit.toml", base_dir=tmp_path)


def session() -> Session:
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    return Session(engine)


@pytest.fixture
def db():
    """A session on a fresh in-memory database (import this fixture into a test module)."""
    db = session()
    yield db
    db.close()


def work(db: Session, the_settings: config.Settings, now: datetime = NOW) -> Work:
    mailer = Mailer(db=db, settings=the_settings, renderer=Renderer(DEFAULT_TEMPLATES_DIR), now=now)
    return Work(db=db, now=now, settings=the_settings, mailer=mailer)


def add_case(db: Session, *, state: CaseState = CaseState.AWAITING_MERCHANT, category: str | None = "delivery",
             now: datetime = NOW, **fields) -> Case:
    """A merchant, a transaction and one open case of them."""
    if db.get(Merchant, "shop") is None:
        db.add(Merchant(merchant_id="shop", name="Shop", support_email=MERCHANT, locale="en", updated_at=now))
        db.add(Transaction(reference="TX-1001", reference_key="tx-1001", merchant_id="shop", customer_email=CUSTOMER,
                           customer_name="Carol", amount=Decimal("49.90"), currency="EUR", transaction_date=now,
                           updated_at=now))
    values = dict(reference=addresses.random_base32(addresses.REFERENCE_CHARS), transaction_reference="TX-1001",
                  merchant_id="shop", customer_email=CUSTOMER, category=category, dispute_type="other",
                  state=state.value, escalated=False, merchant_unreachable=False, frozen=False, subject="Parcel",
                  customer_locale="en", opened_at=now, waiting_since=now, transaction_date=now)
    case = Case(**{**values, **fields})
    db.add(case)
    db.flush()
    return case


def step(db: Session, the_settings: config.Settings, case: Case, party: str, text: str, *, subject: str = "Re: Parcel",
         sender: str | None = None, envelope: str | None = None, headers: str = "", now: datetime = NOW) -> Step:
    """One inbound message by `party` on `case`, stored and read as the pipeline reads it."""
    address = sender or {"c": CUSTOMER, "m": MERCHANT, "s": STAFF}[party]
    raw = (f"From: {address}\r\nTo: case@{DOMAIN}\r\nSubject: {subject}\r\nMessage-ID: <{now.timestamp()}.{party}"
           f"@{address.split('@')[1]}>\r\nDate: Tue, 24 Nov 2026 09:30:00 +0000\r\n{headers}"
           f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n").encode()
    mail_from = envelope if envelope is not None else address
    inbound = Inbound(received_at=now, source="smtp", mail_from=mail_from, rcpt_tos=[f"case@{DOMAIN}"], raw=raw,
                      size=len(raw), dedupe_key=f"{len(raw)}-{now.timestamp()}-{party}-{text[:20]}")
    db.add(inbound)
    db.flush()
    prepared = pipeline.prepare(raw, mail_from, the_settings)
    base = work(db, the_settings, now)
    return Step(db=db, now=now, settings=the_settings, mailer=base.mailer, inbound=inbound, parsed=prepared.parsed,
                classification=prepared.classification, verdict=prepared.verdict, sender=prepared.sender)
