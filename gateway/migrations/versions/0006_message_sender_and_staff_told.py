"""inbound: the client that handed the message over (its address and HELO, for SPF);
messages: who a held message says it is from (envelope, From, display name,
authentication results, reason) and when staff were told of it (hourly digests per case)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('staff_told_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('inbound', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_address', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('client_helo', sa.String(length=255), nullable=True))
    # messages held before were reported one by one
    op.execute("UPDATE messages SET staff_told_at = created_at WHERE held")


def downgrade() -> None:
    with op.batch_alter_table('inbound', schema=None) as batch_op:
        batch_op.drop_column('client_helo')
        batch_op.drop_column('client_address')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('staff_told_at')
        batch_op.drop_column('sender')
