"""What the open cases' due times were last computed with

A scheduler recomputed every open case's next due time each time it started (0.6 ms a
case: ten minutes for a million open cases before its first sweep). The fingerprint of the
code's version and [timers] it last did so with lets the next start skip it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 19:45:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('gateway_instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timers_fingerprint', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('gateway_instance', schema=None) as batch_op:
        batch_op.drop_column('timers_fingerprint')
