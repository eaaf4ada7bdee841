"""idempotency keys; versions keep their approval time to the microsecond

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa
import alertd.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'idempotency_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('fingerprint', sa.String(length=300), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('status', sa.Integer(), nullable=True),
        sa.Column('response', sa.JSON(), nullable=True),
        sa.Column('created_at', alertd.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('finished_at', alertd.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('user_id', 'key'),
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_created', ['created_at'], unique=False)

    with op.batch_alter_table('versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approved_at', alertd.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('versions', schema=None) as batch_op:
        batch_op.drop_column('approved_at')

    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_created')
    op.drop_table('idempotency_keys')
