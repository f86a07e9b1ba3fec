"""`hallmonitor` command line. Expected failures print one clear sentence and
exit 2; nothing here prints a traceback for a mistake a person can fix."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from slack_bolt.async_app import AsyncApp
from sqlalchemy import Engine

from bot.console import ConsoleCommands, ConsoleSurface
from bot.slack import SlackSurface, build_slack_app, slack_settings, web_client
from bot.teams import HallMonitorTeamsBot, TeamsSurface, make_adapter
from core.chat import ChatSurface
from core.config import Config, Nation, Role
from core.errors import ConfigError, HallMonitorError
from hallmonitor.app import create_app
from hallmonitor.cli_records import add_commands
from hallmonitor.scoring import format_policy, format_triage, run_policy_eval, run_triage_eval
from hallmonitor.service import Service
from handlers.deadline import reply_by, why_due
from handlers.policy import ask, index_for
from handlers.polling import PollSummary
from handlers.triage import default_classifier
from monitors.registry import credential_problems, load_config
from storage.db import database_url, open_database, session_scope
from storage.models import Item
from storage.queries import open_items

log = logging.getLogger("hallmonitor")
DEFAULT_CONFIG = "config.toml"


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("alembic", "apscheduler", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config or os.environ.get("HALLMONITOR_CONFIG") or DEFAULT_CONFIG)


def _open(config: Config) -> Engine:

    return open_database(database_url(config.service.database_url))


def _surface(config: Config) -> ChatSurface:
    if config.chat.surface == "slack":
        token, _, api_url = slack_settings()
        return SlackSurface(web_client(token, api_url))
    if config.chat.surface == "teams":
        raise ConfigError(['chat.surface = "teams" is served by `hallmonitor run` (it needs the web app)'])

    return ConsoleSurface()


def _teams_configured(config: Config) -> bool:
    """Teams is served when it delivers the cards, or when an app id is set (answers and actions only)."""
    return config.chat.surface == "teams" or bool(os.environ.get("MICROSOFT_APP_ID"))


def _slack_app(service: Service) -> AsyncApp | None:
    """The bolt app when Slack is configured (always when chat.surface is slack), else None."""
    if service.config.chat.surface != "slack" and not os.environ.get("SLACK_SIGNING_SECRET"):
        return None

    token, secret, api_url = slack_settings()
    return build_slack_app(service, token=token, signing_secret=secret, client=web_client(token, api_url))


def cmd_check_config(args: argparse.Namespace) -> int:
    """The file's own rules and each platform's watch schema (as at start-up), plus each account's
    credentials against its platform's schema; unset environment variables are only noted."""
    config = _config(args)
    name = config.path.name if config.path else "config"
    problems = credential_problems(config)
    if problems:
        raise ConfigError([f"{name}: {p}" for p in problems])
    print(
        f"{config.path}: OK: {len(config.schools)} school(s), {len(config.accounts)} account(s), "
        f"{len(config.staff)} staff"
    )
    for account in config.accounts:
        missing = [env for env in account.credentials.values() if not os.environ.get(env)]
        if missing:
            print(f"  note: accounts {account.id}: environment variable(s) {', '.join(missing)} not set yet")
    return 0


def cmd_run(args: argparse.Namespace) -> int:

    config = _config(args)
    engine = _open(config)
    teams = None
    if _teams_configured(config):
        adapter, settings = make_adapter()
        surface = TeamsSurface(engine, adapter, settings.APP_ID) if config.chat.surface == "teams" else _surface(config)
        service = Service(config=config, engine=engine, surface=surface)
        teams = (adapter, HallMonitorTeamsBot(service))
    else:
        service = Service(config=config, engine=engine, surface=_surface(config))
    app = create_app(service, slack=_slack_app(service), teams=teams)
    if config.chat.surface == "console" and config.chat.read_commands and not args.no_commands:
        commands = ConsoleCommands(engine=engine, config=config, platform=service.platform_call)
        threading.Thread(target=commands.loop, name="console-commands", daemon=True).start()
        print(
            f"Hall Monitor is watching {len(config.accounts)} account(s). Type `help` for commands; "
            f"health at http://{args.host}:{args.port}/healthz",
            flush=True,
        )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_poll(args: argparse.Namespace) -> int:

    config = _config(args)
    service = Service(config=config, engine=_open(config), surface=_surface(config))

    async def once() -> PollSummary:
        try:
            return await service.tick(all_sources=True)
        finally:
            await service.stop()

    summary = asyncio.run(once())
    print(summary.line())
    for error in summary.errors:
        print(f"  failed: {error}")
    return 0


def cmd_queue(args: argparse.Namespace) -> int:

    config = _config(args)
    engine = _open(config)
    with session_scope(engine) as session:
        rows = [_queue_row(config, item) for item in open_items(session, school_id=args.school)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=None))
    else:
        for r in rows:
            print(
                f"#{r['id']:<5} {r['category']:<12} reply={r['needs_reply']!s:<5} escalate={r['escalate']:<4} "
                f"by={r['reply_by'] or '-':<25} {r['text'][:60]}"
            )
        if not rows:
            print("nothing open")
    return 0


def _queue_row(config: Config, item: Item) -> dict[str, Any]:
    school = config.school(item.school_id)
    return {
        "id": item.id,
        "school": item.school_id,
        "account": item.account_id,
        "platform": item.platform,
        "kind": item.kind,
        "status": item.status,
        "category": item.category,
        "needs_reply": item.needs_reply,
        "escalate": item.escalate,
        "reply_by": item.reply_by.astimezone(school.zone).isoformat() if item.reply_by else None,
        "author": item.author,
        "text": item.text,
        "url": item.url,
        "received_at": item.received_at.isoformat(),
    }


def _map_jsonl(field: str, name: str, process: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> int:
    """Read JSON lines from stdin, process the good ones in one batch, write one line per input
    line in order (a line that cannot be read gets an error line). Exit 1 if any line failed."""
    rows: list[dict[str, Any] | str] = []
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get(field), str):
                raise ValueError(f'each line needs {{"id": ..., "{field}": "..."}}')
            rows.append(row)
        except (json.JSONDecodeError, ValueError) as exc:
            rows.append(str(exc))
    good = [r for r in rows if isinstance(r, dict)]
    results = iter(process(good))
    for n, row in enumerate(rows, 1):
        out = {"id": row.get("id"), **next(results)} if isinstance(row, dict) else {"id": None, "line": n, "error": row}
        print(json.dumps(out, ensure_ascii=False), flush=True)
    failed = len(rows) - len(good)
    if failed:
        print(f"hallmonitor {name}: {failed} line(s) could not be read", file=sys.stderr)
    return 1 if failed else 0


def cmd_triage(args: argparse.Namespace) -> int:

    classifier = default_classifier()
    return _map_jsonl(
        "text", "triage", lambda rows: [v.as_dict() for v in classifier.classify_many([r["text"] for r in rows])]
    )


def cmd_deadline(args: argparse.Namespace) -> int:

    try:
        received = datetime.fromisoformat(args.received)
    except ValueError:
        raise HallMonitorError(
            f"--received {args.received!r} is not an ISO 8601 time; write it like 2026-03-28T10:00:00+00:00"
        ) from None
    if received.tzinfo is None:
        raise HallMonitorError(
            f"--received {args.received!r} has no UTC offset; add one, e.g. 2026-03-28T10:00:00+00:00 or ...Z"
        )
    due = reply_by(received, nation=args.region)
    print(json.dumps({"received": received.isoformat(), "reply_by": due.isoformat()}))
    if args.explain:
        print(why_due(received, nation=args.region), file=sys.stderr)
    return 0


def _policy_path(args: argparse.Namespace) -> tuple[Path, str]:
    """The policy file and who to ask instead, from --policy or --school."""
    if args.policy:
        return Path(args.policy), "your headteacher or line manager"
    if not args.school:
        raise HallMonitorError("say which policy: --policy PATH, or --school ID with --config")
    config = _config(args)
    try:
        school = config.school(args.school)
    except KeyError:
        raise HallMonitorError(f"no school has id {args.school!r} in {config.path}") from None
    if not school.policy:
        raise HallMonitorError(f"school {school.id!r} has no `policy` path in {config.path}; add one")
    heads = [s.name for s in config.staff_with_role(school.id, Role.SLT)]
    return config.resolve_path(school.policy), (heads[0] if heads else "your headteacher or line manager")


def cmd_ask(args: argparse.Namespace) -> int:

    path, ask_instead = _policy_path(args)
    index_for(path)  # a missing, empty or unreadable policy fails here, clearly
    if args.jsonl:
        return _map_jsonl(
            "question", "ask", lambda rows: [ask(path, r["question"], ask_instead=ask_instead).as_dict() for r in rows]
        )
    if not args.question:
        raise HallMonitorError('ask a question: hallmonitor ask --policy PATH "Can I accept a friend request?"')
    answer = ask(path, " ".join(args.question), ask_instead=ask_instead)
    print(json.dumps(answer.as_dict(), ensure_ascii=False, indent=2) if args.json else answer.answer)
    return 0


def cmd_score(args: argparse.Namespace) -> int:

    shared = Path(__file__).resolve().parents[1].parent / "shared"
    gold = Path(args.gold or shared / "eval" / f"{args.what}_dev.jsonl")
    if not gold.exists():
        raise HallMonitorError(f"{gold}: no such file; pass --gold PATH")
    if args.what == "policy":
        figures = run_policy_eval(gold, Path(args.policies or gold.parent.parent / "policies"))
        text = format_policy(figures, show_misses=not args.quiet)
    else:
        figures = run_triage_eval(gold)
        text = format_triage(figures, show_misses=not args.quiet)
    print(json.dumps(figures, indent=2) if args.json else text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hallmonitor", description="Keeps a school's social media safe and answered.")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "WARNING"))
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", help=f"config file (default $HALLMONITOR_CONFIG or {DEFAULT_CONFIG})")
        return p

    p = with_config(sub.add_parser("run", help="web app + scheduler"))
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    p.add_argument("--no-commands", action="store_true", help="do not read console commands from stdin")
    p.set_defaults(func=cmd_run, default_level="INFO")
    with_config(sub.add_parser("poll", help="one polling pass, then print a summary")).set_defaults(func=cmd_poll)
    with_config(sub.add_parser("check-config", help="validate the config file")).set_defaults(func=cmd_check_config)
    p = with_config(sub.add_parser("queue", help="open items"))
    p.add_argument("--json", action="store_true")
    p.add_argument("--school")
    p.set_defaults(func=cmd_queue)
    p = sub.add_parser("triage", help="triage JSON lines from stdin")
    p.add_argument("--jsonl", action="store_true", required=True)
    p.set_defaults(func=cmd_triage)
    p = sub.add_parser("deadline", help="reply-by time for a received time")
    p.add_argument("--received", required=True)
    p.add_argument("--region", choices=[n.value for n in Nation], default="england")
    p.add_argument("--explain", action="store_true", help="say why on stderr")
    p.set_defaults(func=cmd_deadline)
    p = with_config(sub.add_parser("ask", help="answer a question from a school's social media policy"))
    p.add_argument("question", nargs="*")
    p.add_argument("--policy", help="the policy file (.txt, .md, .docx, .pdf)")
    p.add_argument("--school", help="use this school's policy from the config instead")
    p.add_argument("--json", action="store_true")
    p.add_argument("--jsonl", action="store_true", help='read {"id","question"} lines, write one answer per line')
    p.set_defaults(func=cmd_ask)
    p = sub.add_parser("score", help="score an evaluation set")
    p.add_argument("what", choices=["triage", "policy"])
    p.add_argument("--gold", help="labelled set (default ../shared/eval/<what>_dev.jsonl)")
    p.add_argument("--policies", help="folder of the policies a policy set names (default beside the eval folder)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_score)
    add_commands(sub, _with_database, with_config)
    return parser


def _with_database(func: Callable[[argparse.Namespace, Config, Any], int]) -> Callable[[argparse.Namespace], int]:
    """A command handler given the config and an open, migrated database."""

    def run(args: argparse.Namespace) -> int:
        config = _config(args)
        return func(args, config, _open(config))

    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = args.log_level if args.log_level != "WARNING" else getattr(args, "default_level", "WARNING")
    _setup_logging(level)
    try:
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


if __name__ == "__main__":
    sys.exit(main())
