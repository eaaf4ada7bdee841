"""audit head MAC

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty until the next append (or `alertd init`) seals the head with the audit key.
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.drop_column('mac')
