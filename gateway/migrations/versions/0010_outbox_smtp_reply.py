"""the smarthost's answer to each delivered message (the delivery ledger of an export)

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-27 08:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('smtp_reply', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('smtp_reply')
