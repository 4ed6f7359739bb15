"""what became of each inbound message as a value (inbound.outcome); today's rows converted
from the words of their disposition, "unplaced:" and "quarantined:" prefixes included

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-03 14:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0007'
branch_labels = None
depends_on = None

# In the order they are tried: the first that matches a row's disposition gives its outcome.
_FROM_WORDS = (
    ("quarantined", "status = 'quarantined' AND disposition LIKE 'quarantined:%'"),
    ("too_large", "disposition LIKE 'unplaced: too large%'"),
    ("unplaced", "disposition LIKE 'unplaced:%'"),
    ("intake", "disposition LIKE 'intake:%'"),
    ("case", "disposition LIKE 'case %'"),
    ("report", "disposition LIKE 'delivery report%' OR disposition LIKE '% to the bounce address of outbox %'"),
)


def upgrade() -> None:
    with op.batch_alter_table('inbound', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))
    whens = " ".join(f"WHEN {condition} THEN '{outcome}'" for outcome, condition in _FROM_WORDS)
    op.execute(f"UPDATE inbound SET outcome = CASE {whens} ELSE NULL END WHERE disposition IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('inbound', schema=None) as batch_op:
        batch_op.drop_column('outcome')
