"""who minted each API token; the token that acted, in a field of its own in the audit trail

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        # Tokens minted before this are of unknown origin: NULL, as for the operator's CLI.
        batch_op.add_column(sa.Column('created_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            'fk_api_tokens_created_by_id_users', 'users', ['created_by_id'], ['id']
        )

    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_id', sa.Integer(), nullable=True))

    # The audit trail says who minted each existing token (an admin at the console, or nobody:
    # the command line). Recording it closes the one-admin-two-tokens hole for old tokens too.
    audit = sa.table(
        'audit_entries', sa.column('actor_id', sa.Integer()), sa.column('action', sa.String()),
        sa.column('detail', sa.JSON()),
    )
    tokens = sa.table('api_tokens', sa.column('id', sa.Integer()), sa.column('created_by_id', sa.Integer()))
    conn = op.get_bind()
    for actor_id, detail in conn.execute(
        sa.select(audit.c.actor_id, audit.c.detail).where(audit.c.action == 'token.create')
    ):
        token_id = (detail or {}).get('token_id')
        if actor_id is not None and isinstance(token_id, int):
            conn.execute(
                tokens.update().where(tokens.c.id == token_id).values(created_by_id=actor_id)
            )


def downgrade() -> None:
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_column('token_id')

    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_constraint('fk_api_tokens_created_by_id_users', type_='foreignkey')
        batch_op.drop_column('created_by_id')
