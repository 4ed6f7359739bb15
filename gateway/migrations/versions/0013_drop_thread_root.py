"""parties.thread_root: written, never read (the first of thread_refs is the thread's root)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 15:25:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.drop_column('thread_root')


def downgrade() -> None:
    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.add_column(sa.Column('thread_root', sa.String(length=998), nullable=True))
