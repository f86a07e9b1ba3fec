"""engine: leases on the rows workers claim (sources, webhook events, outbox), a job lease table

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01

A worker claims a row by setting `lease_owner` and `lease_until` in one short transaction
(Postgres: SELECT ... FOR UPDATE SKIP LOCKED inside the claiming UPDATE), does the work with no
transaction open, and clears the lease when it records the result. A crashed worker's lease runs
out and another worker picks the row up. `joblease` holds one row per singleton job (the reply
clocks) so only one process runs it at a time. `outbox.sending_at` is set, committed, before a
send starts: a row reclaimed with it set may already have been delivered.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types


revision = '0006'
down_revision = '0004'
branch_labels = None
depends_on = None

LEASED = ("source", "webhookevent", "outbox")


def upgrade() -> None:
    for table in LEASED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
            batch_op.add_column(sa.Column('lease_until', storage.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sending_at', storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reference', sa.Text(), nullable=True))
        batch_op.create_index('ix_outbox_due', ['status', 'next_attempt_at'], unique=False)
    with op.batch_alter_table('source', schema=None) as batch_op:
        batch_op.create_index('ix_source_due', ['enabled', 'next_check_at'], unique=False)
    op.create_table('joblease',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('until', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('joblease')
    with op.batch_alter_table('source', schema=None) as batch_op:
        batch_op.drop_index('ix_source_due')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_due')
        batch_op.drop_column('reference')
        batch_op.drop_column('sending_at')
    for table in LEASED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('lease_until')
            batch_op.drop_column('lease_owner')
