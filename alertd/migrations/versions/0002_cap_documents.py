"""cap documents: the published CAP messages behind /cap/<identifier>.xml and the feeds

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa
import alertd.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cap_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identifier', sa.String(length=120), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('msg_type', sa.String(length=10), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('sent_at', alertd.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', alertd.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('xml', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('created_at', alertd.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ),
    sa.ForeignKeyConstraint(['version_id'], ['versions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('identifier'),
    sa.UniqueConstraint('version_id')
    )
    with op.batch_alter_table('cap_documents', schema=None) as batch_op:
        batch_op.create_index('ix_cap_documents_alert', ['alert_id', 'version_id'], unique=False)
        batch_op.create_index('ix_cap_documents_expires', ['expires_at'], unique=False)
        batch_op.create_index('ix_cap_documents_sent', ['sent_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cap_documents', schema=None) as batch_op:
        batch_op.drop_index('ix_cap_documents_sent')
        batch_op.drop_index('ix_cap_documents_expires')
        batch_op.drop_index('ix_cap_documents_alert')

    op.drop_table('cap_documents')
