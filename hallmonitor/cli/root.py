"""`hallmonitor` command line: the parser, logging, --env-file, and how a failure is shown.
Expected failures print one clear sentence and exit 2; nothing here prints a traceback for a
mistake a person can fix. The commands live by group in the modules beside this one."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import ConfigError, HallMonitorError
from hallmonitor.cli import queue, records, running, tools, upkeep


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hallmonitor", description="Keeps a school's social media safe and answered.")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL", "WARNING"),
        help="DEBUG, INFO, WARNING or ERROR (default $LOG_LEVEL, or INFO for run and WARNING otherwise)",
    )
    parser.add_argument("--env-file", help="read NAME=value secrets from this file first (the systemd EnvironmentFile)")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (running, upkeep, queue, tools, records):  # the order `hallmonitor --help` lists them in
        group.add_commands(sub)
    return parser


def load_env_file(path: str) -> None:
    """NAME=value lines (blank lines and # comments skipped) into the environment, without overriding
    what is already set: the same file systemd reads as the unit's EnvironmentFile."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise HallMonitorError(f"--env-file {path}: cannot be read ({exc.strerror})") from None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, value = text.partition("=")
        if not sep or not name.strip().isidentifier():
            raise HallMonitorError(f"--env-file {path}: line {number} is not NAME=value")
        os.environ.setdefault(name.strip(), value.strip().strip("'\""))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = args.log_level if args.log_level != "WARNING" else getattr(args, "default_level", "WARNING")
    _setup_logging(level)
    try:
        if args.env_file:
            load_env_file(args.env_file)
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print("Config problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except HallMonitorError as exc:
        print(f"hallmonitor: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
