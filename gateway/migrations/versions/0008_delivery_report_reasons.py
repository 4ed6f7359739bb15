"""delivery reports: a reason per bounce, delivery problems and evidence on outbox rows,
merchant delivery trouble

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-03 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None

# Failure kinds before reasons existed, and what they meant for the address.
_OLD_KINDS = {"hard": "dead", "spam": "trouble", "soft": "trouble", "delayed": "delayed"}


def upgrade() -> None:
    with op.batch_alter_table('bounces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.String(length=32), nullable=False, server_default='undefined'))
    bounces = sa.table('bounces', sa.column('kind', sa.String), sa.column('reason', sa.String))
    for old, new in _OLD_KINDS.items():
        op.execute(bounces.update().where(bounces.c.kind == old).values(kind=new))
    op.execute(bounces.update().where(bounces.c.kind == 'delayed').values(reason='delayed'))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_problem', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('delivery_problem_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('report_retries', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('delivery_report', sa.JSON(), nullable=True))
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trouble_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('trouble_reports', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('trouble_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('trouble_notified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('unreachable_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        for name in ('unreachable_at', 'trouble_notified_at', 'trouble_reason', 'trouble_reports', 'trouble_since'):
            batch_op.drop_column(name)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        for name in ('delivery_report', 'delivered_at', 'report_retries', 'delivery_problem_at', 'delivery_problem'):
            batch_op.drop_column(name)
    bounces = sa.table('bounces', sa.column('kind', sa.String))
    op.execute(bounces.update().where(bounces.c.kind == 'dead').values(kind='hard'))
    op.execute(bounces.update().where(bounces.c.kind.in_(('trouble', 'message'))).values(kind='soft'))
    with op.batch_alter_table('bounces', schema=None) as batch_op:
        batch_op.drop_column('reason')
