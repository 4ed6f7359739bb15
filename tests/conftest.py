"""Shared fixtures: backends (SQLite + in-memory broker, PostgreSQL + Redis), the smarthost
sink, a running gateway, and real .eml samples by name."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.harness import Backend, Gateway, Sink, TestClock, settings_for

MAIL_DIR = Path(__file__).parent / "mail"
PG_ADMIN_URL = os.environ.get("DG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("DG_TEST_REDIS", "redis://127.0.0.1:6379/15")


def _postgres_backend() -> Backend:
    import psycopg

    name = f"dg_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def cleanup() -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return Backend("postgres", f"{base}/{name}", REDIS_URL, cleanup)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])])
def backend(request, tmp_path) -> Backend:
    if request.param == "sqlite":
        backend = Backend("sqlite", f"sqlite:///{tmp_path / 'gateway.db'}", "memory://")
    else:
        backend = _postgres_backend()
    yield backend
    backend.cleanup()


@pytest.fixture
def sqlite_backend(tmp_path) -> Backend:
    return Backend("sqlite", f"sqlite:///{tmp_path / 'gateway.db'}", "memory://")


@pytest.fixture
def sink():
    sink = Sink()
    yield sink
    sink.stop()


@pytest.fixture
def clock() -> TestClock:
    """The test's one clock (real time shifted by DG_TEST_CLOCK_OFFSET_DAYS until a test sets it)."""
    return TestClock()


def pytest_collection_modifyitems(config, items):
    """Tests that read the clock are time-dependent: CI runs them again with the clock shifted."""
    for item in items:
        if "clock" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timed)


@pytest.fixture
def make_gateway(tmp_path, sink, clock):
    """Factory: make_gateway(backend, **settings overrides) -> a running, loaded Gateway on the
    test's clock."""
    started: list[Gateway] = []

    def make(backend: Backend, *, workers: bool = True, load: bool = True, resolver=None, **overrides) -> Gateway:
        settings = settings_for(tmp_path, backend, sink.port, **overrides)
        gateway = Gateway(settings, clock=clock, workers=workers, resolver=resolver)
        started.append(gateway)
        if load:
            gateway.load(tmp_path)
        return gateway

    yield make
    for gateway in started:
        gateway.stop()


@pytest.fixture
def gateway(backend, make_gateway) -> Gateway:
    return make_gateway(backend)


@pytest.fixture(scope="session")
def dovecot():
    """A real Dovecot on this run's own free port (tests.mailservers); stopped at the end."""
    from tests import mailservers

    mailservers.start("dovecot")
    yield mailservers.IMAP_PORT
    mailservers.stop_all()


@pytest.fixture(scope="session")
def postfix(dovecot):
    """A real Postfix in front of the gateway under test (tests.mailservers); stopped at the end."""
    from tests import mailservers

    mailservers.start("postfix")
    yield mailservers.POSTFIX_PORT
    mailservers.stop_all()


@pytest.fixture
def eml():
    def read(name: str) -> bytes:
        return (MAIL_DIR / name).read_bytes()

    return read
