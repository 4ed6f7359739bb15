"""inbound: when the current processing attempt started; staff_reports: quarantined and
unplaced messages staff are to hear of (at once, or in the next digest)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbound', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'staff_reports',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('inbound_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('problem', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('told_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['inbound_id'], ['inbound.id'], name=op.f('fk_staff_reports_inbound_id_inbound')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_reports')),
    )
    with op.batch_alter_table('staff_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_reports_told_at'), ['told_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('staff_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_reports_told_at'))
    op.drop_table('staff_reports')
    with op.batch_alter_table('inbound', schema=None) as batch_op:
        batch_op.drop_column('started_at')
