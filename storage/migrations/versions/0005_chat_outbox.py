"""chat: one delivery per recipient, posted card copies, seen interactions, lifted protection

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Outbox rows already delivered stay `sent` (nothing is re-sent); rows still pending are
fanned out into deliveries by the next delivery pass.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=False),
    sa.Column('school_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('surface', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('outbox_id', 'surface', 'target')
    )
    for column in ('outbox_id', 'school_id', 'item_id', 'status', 'next_attempt_at'):
        op.create_index(op.f(f'ix_delivery_{column}'), 'delivery', [column], unique=False)
    op.create_table('cardcopy',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('surface', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('place', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('viewer', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('audience', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('conversation', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('surface', 'conversation', 'message_id')
    )
    op.create_index(op.f('ix_cardcopy_item_id'), 'cardcopy', ['item_id'], unique=False)
    op.create_table('seeninteraction',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('seen_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index(op.f('ix_seeninteraction_seen_at'), 'seeninteraction', ['seen_at'], unique=False)
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('protection_lifted_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('protection_lifted_at', storage.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_column('protection_lifted_at')
        batch_op.drop_column('protection_lifted_by')
    op.drop_index(op.f('ix_seeninteraction_seen_at'), table_name='seeninteraction')
    op.drop_table('seeninteraction')
    op.drop_index(op.f('ix_cardcopy_item_id'), table_name='cardcopy')
    op.drop_table('cardcopy')
    for column in ('outbox_id', 'school_id', 'item_id', 'status', 'next_attempt_at'):
        op.drop_index(op.f(f'ix_delivery_{column}'), table_name='delivery')
    op.drop_table('delivery')
