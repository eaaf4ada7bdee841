"""deliveries: no foreign keys on version_id and alert_id, copies of the dispatch's

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# SQLite's foreign keys carry no names: batch mode names the reflected ones by this
# convention so they can be dropped (the table is copied).
_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    # Planning writes a row per recipient; each foreign key is a trigger per row, and these two
    # cost 25 of 52 ms per 1,000 rows on PostgreSQL. The dispatch's key stays and pins both:
    # the dispatch names the version, the version its alert, and neither is ever deleted.
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint('deliveries_version_id_fkey', 'deliveries', type_='foreignkey')
        op.drop_constraint('deliveries_alert_id_fkey', 'deliveries', type_='foreignkey')
        return
    with op.batch_alter_table('deliveries', naming_convention=_NAMES) as batch_op:
        batch_op.drop_constraint('fk_deliveries_version_id_versions', type_='foreignkey')
        batch_op.drop_constraint('fk_deliveries_alert_id_alerts', type_='foreignkey')


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_foreign_key(
            'deliveries_version_id_fkey', 'versions', ['version_id'], ['id']
        )
        batch_op.create_foreign_key('deliveries_alert_id_fkey', 'alerts', ['alert_id'], ['id'])
