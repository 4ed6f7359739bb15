"""PostgreSQL: the messages' bytes compressed with LZ4 instead of pglz

PostgreSQL compresses a value over about 2 KB before it stores it out of line (TOAST), with
pglz by default: 0.44 s of the server's CPU for a 25 MB message with photos, which pglz
then stores uncompressed anyway; LZ4 takes 0.13 s for the same and compresses text mail as
well. Each relayed message is stored twice (inbound, outbox). Applies to values written from
now on (PostgreSQL 14 or newer, built with LZ4; otherwise nothing changes). SQLite: nothing.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 20:05:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

COLUMNS = (("inbound", "raw"), ("outbox", "raw"))


def _postgresql_14(bind) -> bool:
    return bind.dialect.name == "postgresql" and bind.dialect.server_version_info >= (14,)


def _lz4_built_in(bind) -> bool:
    """Whether this server was built with LZ4 (the setting then lists it among its values)."""
    return bool(bind.execute(sa.text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                                     "WHERE name = 'default_toast_compression'")).scalar())


def _set(compression: str) -> None:
    bind = op.get_bind()
    if not _postgresql_14(bind) or (compression == "lz4" and not _lz4_built_in(bind)):
        return
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {compression}")


def upgrade() -> None:
    _set("lz4")


def downgrade() -> None:
    _set("pglz")
