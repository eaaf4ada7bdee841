"""deliveries: ix_delivery_due holds only rows still due, in doubt or failed

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""
from alembic import op
from sqlalchemy import text


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_STATES = "state IN ('pending', 'sending', 'retry_wait', 'unknown', 'failed')"


def upgrade() -> None:
    # Every delivery's outcome is written once; most are 'sent', which no reader of this index
    # looks for (the sweeper, health and the operator lists ask for the states above), so a
    # partial index spares each recorded outcome one index entry.
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_due')
        batch_op.create_index(
            'ix_delivery_due',
            ['state', 'next_attempt_at'],
            unique=False,
            postgresql_where=text(_STATES),
            sqlite_where=text(_STATES),
        )


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_due')
        batch_op.create_index('ix_delivery_due', ['state', 'next_attempt_at'], unique=False)
