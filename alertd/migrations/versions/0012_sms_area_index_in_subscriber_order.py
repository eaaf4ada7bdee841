"""sms area index in subscriber order, so a selection streams its first page

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # (scheme, value) alone made every page of a 100,000-subscriber selection read and sort
    # the whole area before its first row (4.1 s before the first text); with subscriber_id
    # last, one geocode's subscribers come from the index already in id order. The old index
    # is its prefix, so it goes.
    with op.batch_alter_table('sms_subscriber_areas', schema=None) as batch_op:
        batch_op.create_index(
            'ix_sms_subscriber_areas_code_subscriber',
            ['scheme', 'value', 'subscriber_id'],
            unique=False,
        )
        batch_op.drop_index('ix_sms_subscriber_areas_code')


def downgrade() -> None:
    with op.batch_alter_table('sms_subscriber_areas', schema=None) as batch_op:
        batch_op.create_index('ix_sms_subscriber_areas_code', ['scheme', 'value'], unique=False)
        batch_op.drop_index('ix_sms_subscriber_areas_code_subscriber')
