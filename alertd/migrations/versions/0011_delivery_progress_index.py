"""deliveries: (dispatch_id, state, finished_at) index for progress reads

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The console and API progress reads count a dispatch's rows per state and take the first
    # and last finished_at of those sent: with finished_at in the index, from the index alone.
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_dispatch_state')
        batch_op.create_index(
            'ix_delivery_dispatch_state', ['dispatch_id', 'state', 'finished_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_dispatch_state')
        batch_op.create_index('ix_delivery_dispatch_state', ['dispatch_id', 'state'], unique=False)
