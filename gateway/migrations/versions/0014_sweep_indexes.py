"""Indexes for the scheduler pass: the claimed case timers, and held messages staff have not heard of

Each pass asks which case timers were claimed and not run (the lost-jobs check) and
which cases hold messages staff have not been told of (the held-mail digest). Without
these indexes both read the whole table (every case, every message) on every pass.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 01:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

LEASED = "timer_lease_until IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_timer_lease_until', ['timer_lease_until'], unique=False,
                              sqlite_where=sa.text(LEASED), postgresql_where=sa.text(LEASED))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_held_staff_told', ['held', 'staff_told_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_held_staff_told')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_timer_lease_until', sqlite_where=sa.text(LEASED),
                            postgresql_where=sa.text(LEASED))
