"""What the commands share: the config they read, the database they open, the --config option,
and JSON lines in and out."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from core.config import Config
from monitors.registry import load_config
from storage.db import database_url, open_database

DEFAULT_CONFIG = "config.toml"


def config_of(args: argparse.Namespace) -> Config:
    """The config named by --config, else $HALLMONITOR_CONFIG, else config.toml."""
    return load_config(args.config or os.environ.get("HALLMONITOR_CONFIG") or DEFAULT_CONFIG)


def open_db(config: Config) -> Engine:
    """The config's database, migrated to this version's schema."""
    return open_database(database_url(config.database()))


def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give a command the --config option."""
    p.add_argument("--config", help=f"config file (default $HALLMONITOR_CONFIG or {DEFAULT_CONFIG})")
    return p


def with_database(func: Callable[[argparse.Namespace, Config, Any], int]) -> Callable[[argparse.Namespace], int]:
    """A command handler given the config and an open, migrated database."""

    def run(args: argparse.Namespace) -> int:
        config = config_of(args)
        return func(args, config, open_db(config))

    return run


def map_jsonl(field: str, name: str, process: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> int:
    """Read JSON lines from stdin, process the good ones in one batch, write one line per input
    line in order (a line that cannot be read gets an error line). Exit 1 if any line failed."""
    numbers, rows = _read_jsonl(field)
    results = iter(process([r for r in rows if isinstance(r, dict)]))
    bad = []
    for number, row in zip(numbers, rows, strict=True):
        if isinstance(row, dict):
            out = {"id": row.get("id"), **next(results)}
        else:
            out = {"id": None, "line": number, "error": row}
            bad.append(str(number))
        print(json.dumps(out, ensure_ascii=False), flush=True)
    if bad:
        print(f"hallmonitor {name}: {len(bad)} line(s) could not be read: line {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


def _read_jsonl(field: str) -> tuple[list[int], list[dict[str, Any] | str]]:
    """The numbers of stdin's non-blank lines, and each one read: a row, or why it cannot be."""
    rows: list[dict[str, Any] | str] = []
    numbers: list[int] = []
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        numbers.append(number)
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            rows.append(f"line {number} is not JSON")
            continue
        if not isinstance(row, dict) or not isinstance(row.get(field), str):
            rows.append(f'line {number}: each line needs {{"id": ..., "{field}": "..."}}')
        else:
            rows.append(row)
    return numbers, rows
