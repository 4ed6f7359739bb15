"""Engine and unit-of-work factory: the one place that begins, commits and rolls back.

SQLite (embedded default) runs in WAL mode and takes the write lock at BEGIN
(BEGIN IMMEDIATE), so two workers never both read a row as 'queued' and both act on
it. PostgreSQL uses row locks (SELECT ... FOR UPDATE [SKIP LOCKED]) in `store`.
"""

from __future__ import annotations

import sqlite3
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIN_SQLITE = (3, 35)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class DatabaseUnavailable(Exception):
    """The database cannot be reached or is locked: the caller should try later."""


def make_engine(url: str) -> Engine:
    """An engine for `url`, with SQLite set up for one writer at a time."""
    if url.startswith("sqlite"):
        if sqlite3.sqlite_version_info < MIN_SQLITE:  # the hot path's statements use RETURNING and ON CONFLICT
            raise DatabaseUnavailable(f"SQLite {sqlite3.sqlite_version} is too old: the gateway needs "
                                      f"{'.'.join(map(str, MIN_SQLITE))} or newer (Python's sqlite3 module)")
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _setup_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _setup_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - driver hook
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # pragma: no cover - driver hook
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Owns the engine and hands out units of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        Connection and lock errors surface as DatabaseUnavailable.
        """
        session = self._sessions()
        try:
            yield session
            session.commit()
        except OperationalError as error:
            session.rollback()
            raise DatabaseUnavailable(str(error.orig or error).splitlines()[0]) from error
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core connection in one transaction, committed on success, rolled back on error,
        with the errors of `unit_of_work`: for the hot path's statements built once (a row
        claimed or recorded in one statement costs a tenth of the ORM's load-change-flush)."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except OperationalError as error:
            raise DatabaseUnavailable(str(error.orig or error).splitlines()[0]) from error

    @contextmanager
    def rolled_back(self) -> Iterator[Session]:
        """A session whose work is always rolled back: for dry runs (`trace`)."""
        session = self._sessions()
        try:
            yield session
        except OperationalError as error:
            raise DatabaseUnavailable(str(error.orig or error).splitlines()[0]) from error
        finally:
            session.rollback()
            session.close()

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless a trivial query succeeds."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except DBAPIError as error:
            raise DatabaseUnavailable(str(error.orig or error).splitlines()[0]) from error

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str):
    from alembic.config import Config

    config = Config(stdout=sys.stdout)  # Alembic's default is the sys.stdout of its import time
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the Alembic migrations up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
