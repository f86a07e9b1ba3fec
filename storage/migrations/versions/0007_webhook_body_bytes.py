"""webhook body as bytes: a delivery is kept exactly as it arrived

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

`webhookevent.body` was text decoded with replacement characters, so bytes that were not UTF-8
were lost, and a body in UTF-16 (which JSON allows) held NULs that PostgreSQL text refuses. It is
now the raw bytes (bytea on PostgreSQL, BLOB on SQLite), the same bytes its digest is of. Stored
bodies are converted as their UTF-8 encoding.

Downgrading keeps every body: one that is UTF-8 text without NUL goes back as that text; any
other (not UTF-8, holding a NUL, or text that itself starts with the marker) is stored as MARK
followed by its base64, and a warning says how many. Code of revision 0006 cannot parse such a
body (a delivery still pending then fails its retries and is given up), but its bytes are kept:
upgrading again turns MARK + base64 back into the exact bytes.
"""
from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

MARK = "hallmonitor-0007-base64:"
BATCH = 500
log = logging.getLogger("alembic.runtime.migration")


def as_text(body: bytes) -> str:
    """The text a body is kept as below 0007: itself when it is UTF-8 text without NUL (and not
    mistakable for a marked body), else MARK and its base64."""
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError:
        decoded = None
    if decoded is not None and "\x00" not in decoded and not decoded.startswith(MARK):
        return decoded
    return MARK + base64.b64encode(body).decode("ascii")


def from_text(stored: bytes) -> bytes:
    """The bytes of a body kept by `as_text` (given as its UTF-8 encoding, as upgrade stores it)."""
    if stored.startswith(MARK.encode("ascii")):
        return base64.b64decode(stored[len(MARK):], validate=True)
    return stored


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE webhookevent ALTER COLUMN body TYPE bytea USING convert_to(body, 'UTF8')")
    else:
        with op.batch_alter_table('webhookevent', schema=None) as batch_op:
            batch_op.alter_column('body', existing_type=sa.Text(), type_=sa.LargeBinary(), existing_nullable=False)
        op.execute("UPDATE webhookevent SET body = CAST(body AS BLOB) WHERE typeof(body) = 'text'")
    _rewrite(from_text)


def downgrade() -> None:
    changed = _rewrite(lambda body: as_text(body).encode("utf-8"))
    if changed:
        log.warning(
            "webhook_bodies_kept_as_base64 count=%d: these bodies were not UTF-8 text; they are stored as %r "
            "followed by their base64, and upgrading to 0007 again restores their bytes",
            changed,
            MARK,
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE webhookevent ALTER COLUMN body TYPE text USING convert_from(body, 'UTF8')")
        return
    with op.batch_alter_table('webhookevent', schema=None) as batch_op:
        batch_op.alter_column('body', existing_type=sa.LargeBinary(), type_=sa.Text(), existing_nullable=False)
    op.execute("UPDATE webhookevent SET body = CAST(body AS TEXT) WHERE typeof(body) = 'blob'")


def _rewrite(change: Callable[[bytes], bytes]) -> int:
    """Apply `change` to every stored body (a bytes column at this point), writing back only those
    it alters; how many it altered."""
    bind = op.get_bind()
    table = sa.table("webhookevent", sa.column("id", sa.Integer()), sa.column("body", sa.LargeBinary()))
    changed = 0
    for rows in _batches(bind, table):
        updates = [{"key": key, "new": new} for key, body in rows if (new := change(body)) != body]
        if updates:
            bind.execute(
                table.update().where(table.c.id == sa.bindparam("key")).values(body=sa.bindparam("new", type_=sa.LargeBinary())),
                updates,
            )
            changed += len(updates)
    return changed


def _batches(bind: sa.engine.Connection, table: sa.TableClause) -> Iterator[list[tuple[int, bytes]]]:
    last = 0
    while True:
        rows = [
            (int(key), bytes(body))
            for key, body in bind.execute(
                sa.select(table.c.id, table.c.body).where(table.c.id > last).order_by(table.c.id).limit(BATCH)
            )
        ]
        if not rows:
            return
        yield rows
        last = rows[-1][0]
