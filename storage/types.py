"""Column types shared by the tables."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

ESCAPE = "\U0010ffff"  # the last code point, a noncharacter: real text never holds it
_ESCAPED = re.compile(ESCAPE + "(.)", re.DOTALL)


class UTCDateTime(TypeDecorator[datetime]):
    """Always timezone-aware UTC in Python; naive UTC on SQLite, timestamptz on Postgres."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a time zone first")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def nul_escape(value: str) -> str:
    """`value` without NUL, reversibly: NUL becomes ESCAPE + "0" and ESCAPE itself is doubled."""
    if "\x00" not in value and ESCAPE not in value:
        return value
    return value.replace(ESCAPE, ESCAPE * 2).replace("\x00", ESCAPE + "0")


def nul_unescape(value: str) -> str:
    """The text `nul_escape` was given."""
    if ESCAPE not in value:
        return value
    return _ESCAPED.sub(lambda m: "\x00" if m.group(1) == "0" else m.group(1), value)


def _fit(value: str, length: int | None) -> str:
    """The escaped text, cut (at a whole character of the original) to `length` if it outgrew it."""
    escaped = nul_escape(value)
    if length is None or len(escaped) <= length:
        return escaped
    while len(escaped) > length:
        value = value[:-1]
        escaped = nul_escape(value)
    return escaped


class _KeepsNul(TypeDecorator[str]):
    """Text from outside (platform comments, authors, links, ids, error messages) kept as given.
    PostgreSQL text cannot hold NUL, so there a NUL is written escaped (see `nul_escape`) and read
    back as NUL; SQLite keeps it as it is. The column's SQL type is unchanged."""

    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or dialect.name != "postgresql":
            return value
        return _fit(value, getattr(self.impl, "length", None))

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or dialect.name != "postgresql":
            return value
        return nul_unescape(value)


class SafeText(_KeepsNul):
    """A TEXT column that keeps NUL on every database."""

    impl = Text
    cache_ok = True


class SafeString(_KeepsNul):
    """A VARCHAR(n) column that keeps NUL on every database (cut to n when escaping outgrows it)."""

    impl = String
    cache_ok = True


JSONType = JSON  # json (not jsonb) on PostgreSQL: it keeps "\u0000" escapes, which jsonb refuses


def utcnow() -> datetime:
    return datetime.now(UTC)
