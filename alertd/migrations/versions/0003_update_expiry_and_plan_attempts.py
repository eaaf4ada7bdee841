"""proposal base expiry, plan attempts, longer case references

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
import alertd.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.alter_column('case_reference',
               existing_type=sa.VARCHAR(length=80),
               type_=sa.String(length=200),
               existing_nullable=False)

    with op.batch_alter_table('dispatches', schema=None) as batch_op:
        # Existing dispatches have made no counted attempts yet.
        batch_op.add_column(sa.Column('plan_attempts', sa.Integer(), nullable=False, server_default='0'))

    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('base_expires_at', alertd.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.drop_column('base_expires_at')

    with op.batch_alter_table('dispatches', schema=None) as batch_op:
        batch_op.drop_column('plan_attempts')

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.alter_column('case_reference',
               existing_type=sa.String(length=200),
               type_=sa.VARCHAR(length=80),
               existing_nullable=False)

