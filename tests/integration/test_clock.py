"""One clock: the SMTP ingress, the workers, the scheduler and the CLI all read the one
clock the process was given, so a test that sets it sees every component at that time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from gateway.cli import main
from gateway.models import Inbound, Outbox
from tests.harness import CUSTOMER, DOMAIN, build_mail, write_config


def test_every_component_reads_the_clock_the_test_set(gateway, sink, tmp_path, capsys):
    at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=400)  # far from the real clock
    gateway.clock.set(at)
    gateway.send(build_mail(sender=CUSTOMER, to=f"delivery@{DOMAIN}", subject="TX-1001", body="TX-1001 lost"),
                 to=f"delivery@{DOMAIN}")
    gateway.settle()
    with gateway.runtime.database.unit_of_work() as db:
        inbound = db.scalar(select(Inbound))
        outbox = db.scalars(select(Outbox)).all()
    assert inbound.received_at == at  # the SMTP ingress
    assert inbound.processed_at == at  # the worker
    assert outbox and all(row.created_at == at and row.sent_at == at for row in outbox)  # delivery
    config = write_config(tmp_path / "cli.toml", gateway.settings)
    assert main(["--config", str(config), "cases", "list", "--json"], clock=gateway.clock) == 0
    assert at.isoformat() in capsys.readouterr().out  # the CLI shows the same instant
    assert main(["--config", str(config), "timers", "run"], clock=gateway.clock) == 0
    assert f"as of {at.isoformat()}" in capsys.readouterr().out  # the CLI's "now" is the test's


def test_the_runtime_clock_cannot_be_swapped_after_start(gateway):
    with pytest.raises(AttributeError):
        gateway.runtime.clock = gateway.clock  # a component that kept the old one would live at another time
