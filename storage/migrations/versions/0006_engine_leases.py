"""engine: leases on the rows workers claim (sources, webhook events, deliveries), delivery
priority and message reference, a job lease table

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

A worker claims a row by setting `lease_owner` and `lease_until` in one short transaction
(Postgres: SELECT ... FOR UPDATE SKIP LOCKED inside the claiming UPDATE), does the work with no
transaction open, and clears the lease when it records the result. A crashed worker's lease runs
out and another worker picks the row up. A claimed delivery is `sending`; one reclaimed in
`sending` gets `maybe_sent` and is looked for in the chat before it is sent again. `joblease`
holds one row per singleton job (the clocks) so only one process runs it at a time.
Existing deliveries get priority 2 (a card); new ones get theirs at fan-out.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

LEASED = ("source", "webhookevent", "delivery")


def upgrade() -> None:
    for table in LEASED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
            batch_op.add_column(sa.Column('lease_until', storage.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.Integer(), nullable=False, server_default='2'))
        batch_op.add_column(sa.Column('maybe_sent', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('reference', sa.Text(), nullable=True))
        batch_op.create_index('ix_delivery_claim', ['status', 'priority', 'id'], unique=False)
    op.create_table('joblease',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('until', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('joblease')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_claim')
        batch_op.drop_column('reference')
        batch_op.drop_column('maybe_sent')
        batch_op.drop_column('priority')
    for table in LEASED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('lease_until')
            batch_op.drop_column('lease_owner')
