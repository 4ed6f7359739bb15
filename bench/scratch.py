"""A database of its own for one benchmark run: a file in the run's folder on SQLite, a new
database on the local PostgreSQL (127.0.0.1:5432, trust auth), dropped at the end."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def database(backend: str, folder: Path, *, prefix: str = "dg_bench") -> tuple[str, Callable[[], None]]:
    """(SQLAlchemy URL, drop) for `backend` ("sqlite" or "postgres")."""
    if backend == "sqlite":
        return f"sqlite:///{folder / 'gateway.db'}", lambda: None
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", drop
