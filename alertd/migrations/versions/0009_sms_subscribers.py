"""sms subscribers, their areas, console texts and gateway status

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa
import alertd.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sms_subscribers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('language', sa.String(length=10), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('opted_in_via', sa.String(length=20), nullable=False),
    sa.Column('opted_in_at', alertd.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('opted_out_at', alertd.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('invalid', sa.Boolean(), nullable=False),
    sa.Column('created_at', alertd.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('phone')
    )
    with op.batch_alter_table('sms_subscribers', schema=None) as batch_op:
        batch_op.create_index('ix_sms_subscribers_point', ['lat', 'lon'], unique=False)
    op.create_table('sms_subscriber_areas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('scheme', sa.String(length=40), nullable=False),
    sa.Column('value', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['sms_subscribers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subscriber_id', 'scheme', 'value')
    )
    with op.batch_alter_table('sms_subscriber_areas', schema=None) as batch_op:
        batch_op.create_index('ix_sms_subscriber_areas_code', ['scheme', 'value'], unique=False)
    op.create_table('sms_console_texts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('to', sa.String(length=20), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', alertd.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delivery_id')
    )
    with op.batch_alter_table('sms_console_texts', schema=None) as batch_op:
        batch_op.create_index('ix_sms_console_texts_alert', ['alert_id', 'id'], unique=False)
    op.create_table('sms_gateway_status',
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('error_code', sa.String(length=10), nullable=False),
    sa.Column('updated_at', alertd.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], ),
    sa.PrimaryKeyConstraint('delivery_id')
    )
    with op.batch_alter_table('sms_gateway_status', schema=None) as batch_op:
        batch_op.create_index('ix_sms_gateway_status_alert_id', ['alert_id'], unique=False)


def downgrade() -> None:
    op.drop_table('sms_gateway_status')
    op.drop_table('sms_console_texts')
    op.drop_table('sms_subscriber_areas')
    op.drop_table('sms_subscribers')
