"""Plain sentences for config mistakes, in place of the validation library's own wording.

A school's part-time IT person reads these: each says what the value should look like,
never a regex or a library's type name."""

from __future__ import annotations

from typing import Any

_BY_TYPE = {
    "missing": "required; add it",
    "extra_forbidden": "unknown key; check its spelling against config.example.toml",
    "int_type": "must be a whole number, like 8",
    "int_parsing": "must be a whole number, like 8",
    "int_from_float": "must be a whole number, like 8",
    "float_type": "must be a number, like 0.5",
    "float_parsing": "must be a number, like 0.5",
    "bool_type": "must be true or false (no quotes)",
    "bool_parsing": "must be true or false (no quotes)",
    "string_type": 'must be text in quotes, like "example"',
    "list_type": 'must be a list in square brackets, like ["a", "b"]',
    "dict_type": 'must be a table, like { key = "value" }',
    "model_type": "must be a table of settings (a [section] or { ... })",
    "model_attributes_type": "must be a table of settings (a [section] or { ... })",
    "timedelta_type": 'must be a duration with a unit, like "30s", "5m", "2h" or "1d"',
    "time_type": 'must be a time of day, like "17:00"',
}


def _choices(ctx: dict[str, Any]) -> str:
    expected = str(ctx.get("expected", ""))
    return expected.replace("'", '"')


def plain(err: dict[str, Any]) -> str:
    """One sentence for one validation error (a pydantic error dict)."""
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    if kind in _BY_TYPE:
        return _BY_TYPE[kind]
    if kind == "value_error":
        return str(err.get("msg", "")).removeprefix("Value error, ")
    if kind in ("literal_error", "enum"):
        return f"must be one of {_choices(ctx)}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"must be at most {ctx.get('le', ctx.get('lt'))}"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return "must not be empty" if least == 1 else f"needs at least {least} entries"
    if kind == "too_long":
        return f"is too long; at most {ctx.get('max_length')}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"is too long; at most {ctx.get('max_length')} characters"
    return "is not a value this setting accepts; see config.example.toml for an example"
