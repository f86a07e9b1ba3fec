"""retention: legal hold and anonymisation on items; a purge permit for the append-only tables

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

`audit` and `evidence` stay append-only: UPDATE is always refused. DELETE is
refused too, except inside a transaction that holds a row in `purgepermit` for
that table. Only the retention purge writes such a row, deletes what is past its
period, writes its own audit row and removes the permit in the same transaction,
so no other connection ever sees a permit (SQLite has one writer; Postgres never
shows another transaction's uncommitted rows).
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

APPEND_ONLY = ("audit", "evidence")


def upgrade() -> None:
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legal_hold', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('legal_hold_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('legal_hold_at', storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('legal_hold_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('anonymised_at', storage.types.UTCDateTime(timezone=True), nullable=True))
    op.create_table('purgepermit',
    sa.Column('tbl', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('granted_to', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('tbl')
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                f"WHEN NOT EXISTS (SELECT 1 FROM purgepermit WHERE tbl = '{table}') "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION hallmonitor_append_only() RETURNS trigger AS $$ "
            "BEGIN "
            "IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM purgepermit WHERE tbl = TG_TABLE_NAME) THEN "
            "RETURN OLD; END IF; "
            "RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION hallmonitor_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql"
        )
    op.drop_table('purgepermit')
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_column('anonymised_at')
        batch_op.drop_column('legal_hold_reason')
        batch_op.drop_column('legal_hold_at')
        batch_op.drop_column('legal_hold_by')
        batch_op.drop_column('legal_hold')
