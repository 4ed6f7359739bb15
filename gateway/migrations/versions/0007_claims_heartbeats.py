"""claim holders and heartbeats: who is sending an outbox row (or made the last attempt
at an inbound one), whether a delivery's last outcome is unknown, the processes'
heartbeats, and the installation's id (the sent journal)

Revision ID: 0007
Revises: 0010
Create Date: 2026-11-27 09:00:00
"""

import uuid
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbound', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holder', sa.String(length=80), nullable=True))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holder', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('uncertain', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.create_index(batch_op.f('ix_outbox_holder'), ['holder'], unique=False)
    op.create_table('process_heartbeats',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('queues', sa.JSON(), nullable=False),
    sa.Column('broker_id', sa.String(length=64), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('beat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stop_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_process_heartbeats'))
    )
    with op.batch_alter_table('process_heartbeats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_process_heartbeats_beat_at'), ['beat_at'], unique=False)
    instance = op.create_table('gateway_instance',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gateway_instance'))
    )
    created = datetime.now(timezone.utc)
    if op.get_bind().dialect.name == "sqlite":  # stored naive UTC there, like every other time
        created = created.replace(tzinfo=None)
    op.bulk_insert(instance, [{'id': uuid.uuid4().hex, 'created_at': created}])


def downgrade() -> None:
    op.drop_table('gateway_instance')
    with op.batch_alter_table('process_heartbeats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_process_heartbeats_beat_at'))
    op.drop_table('process_heartbeats')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_holder'))
        batch_op.drop_column('uncertain')
        batch_op.drop_column('holder')
    with op.batch_alter_table('inbound', schema=None) as batch_op:
        batch_op.drop_column('holder')
