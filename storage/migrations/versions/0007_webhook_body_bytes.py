"""webhook body as bytes: a delivery is kept exactly as it arrived

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

`webhookevent.body` was text decoded with replacement characters, so bytes that were not UTF-8
were lost, and a body in UTF-16 (which JSON allows) held NULs that PostgreSQL text refuses. It is
now the raw bytes (bytea on PostgreSQL, BLOB on SQLite), the same bytes its digest is of. Stored
bodies are converted as their UTF-8 encoding.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE webhookevent ALTER COLUMN body TYPE bytea USING convert_to(body, 'UTF8')")
        return
    with op.batch_alter_table('webhookevent', schema=None) as batch_op:
        batch_op.alter_column('body', existing_type=sa.Text(), type_=sa.LargeBinary(), existing_nullable=False)
    op.execute("UPDATE webhookevent SET body = CAST(body AS BLOB) WHERE typeof(body) = 'text'")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE webhookevent ALTER COLUMN body TYPE text USING convert_from(body, 'UTF8')")
        return
    with op.batch_alter_table('webhookevent', schema=None) as batch_op:
        batch_op.alter_column('body', existing_type=sa.LargeBinary(), type_=sa.Text(), existing_nullable=False)
    op.execute("UPDATE webhookevent SET body = CAST(body AS TEXT) WHERE typeof(body) = 'blob'")
