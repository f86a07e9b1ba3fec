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

import httpx
import uvicorn
from sqlalchemy import Engine

from bot.console import ConsoleCommands, ConsoleSurface
from bot.slack import SlackSurface, slack_settings, web_client
from bot.teams import TeamsSurface, make_adapter
from bot.view import view
from core.chat import Card, ChatSurface, Place
from core.config import Config, Nation, Role
from core.errors import ConfigError, HallMonitorError
from hallmonitor.app import create_app
from hallmonitor.checks import readiness_problems
from hallmonitor.cli_records import add_commands
from hallmonitor.doctor import Finding, config_findings, reach_accounts, send_tests, summary, token_expiry
from hallmonitor.scoring import format_policy, format_triage, run_policy_eval, run_triage_eval
from hallmonitor.service import Service
from hallmonitor.surfaces import Kit, Options, build_kits, wanted
from handlers.deadline import reply_by, why_due
from handlers.policy import ask, index_for
from handlers.policy.document import load_policy
from handlers.policy.show import render
from handlers.polling import PollSummary
from handlers.triage import default_classifier
from monitors.http import USER_AGENT
from monitors.registry import load_config
from storage import backup
from storage.db import database_url, open_database, session_scope
from storage.models import Item
from storage.queries import open_items
from storage.types import utcnow

log = logging.getLogger("hallmonitor")
DEFAULT_CONFIG = "config.toml"
FIRST_YEAR, LAST_YEAR = 2000, 2099


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config or os.environ.get("HALLMONITOR_CONFIG") or DEFAULT_CONFIG)


def _open(config: Config) -> Engine:

    return open_database(database_url(config.database()))


def _service(config: Config, engine: Engine, *, web: bool, options: Options) -> tuple[Service, list[Kit]]:
    """The service with every chat surface it runs (`hallmonitor.surfaces`). Teams needs the web
    app to receive installs, so a one-off command leaves its deliveries waiting for `run`."""
    names = wanted(config, web=web)
    kits = build_kits([n for n in names if web or n != "teams"], options)
    service = Service(config=config, engine=engine, surfaces={kit.name: kit.surface(engine) for kit in kits})
    return service, kits


def cmd_check_config(args: argparse.Namespace) -> int:
    """The file's own rules and each platform's watch schema (as at start-up), plus each account's
    credentials against its platform's schema; unset environment variables are only noted."""
    config = _config(args)
    problems = readiness_problems(config)
    if problems:
        raise ConfigError(problems)
    print(
        f"{config.path}: OK: {len(config.schools)} school(s), {len(config.accounts)} account(s), "
        f"{len(config.staff)} staff"
    )
    return 0


async def _doctor_surface(config: Config, engine: Engine) -> tuple[ChatSurface | None, list[Finding]]:
    """The surface the service would deliver with, and what its service says about our token."""
    surface = config.chat.surface
    if surface == "console":
        return ConsoleSurface(), [Finding("ok", "chat", "console: cards are printed by `hallmonitor run`")]
    if surface == "teams":
        try:
            adapter, settings = make_adapter()
        except ConfigError as exc:  # outbound test messages only: say so, and still send them to the connector
            adapter, settings = make_adapter(allow_unauthenticated=True)
            return TeamsSurface(engine, adapter, settings.APP_ID), [Finding("warn", "chat teams", exc.problems[0])]
        return TeamsSurface(engine, adapter, settings.APP_ID), []
    try:
        token, _, api_url = slack_settings()
    except ConfigError as exc:
        return None, [Finding("fail", "chat slack", exc.problems[0])]
    client = web_client(token, api_url)
    try:
        me = await client.auth_test()
    except Exception as exc:  # slack_sdk raises its own errors for a bad token or no network
        return None, [Finding("fail", "chat slack", f"auth.test failed: {exc}")]
    who = f"connected as {me.get('user')} in team {me.get('team_id')}"
    return SlackSurface(client), [Finding("ok", "chat slack", who)]


def cmd_doctor(args: argparse.Namespace) -> int:
    config = _config(args)
    engine = _open(config)

    async def go() -> list[Finding]:
        findings = config_findings(config)
        async with httpx.AsyncClient(
            timeout=config.service.http_timeout.total_seconds(), headers={"User-Agent": USER_AGENT}
        ) as client:
            findings += await reach_accounts(config, client)
            findings += await token_expiry(config, client, now=utcnow())
        surface, seen = await _doctor_surface(config, engine)
        findings += seen
        if args.send_test and surface is not None:
            findings += await send_tests(config, surface)
        return findings

    findings = asyncio.run(go())
    for finding in findings:
        print(finding.line())
    line, code = summary(findings)
    print(line)
    return code


def cmd_backup(args: argparse.Namespace) -> int:
    config = _config(args)
    made = backup.backup(backup.sqlite_file(database_url(config.database())), to=Path(args.to) if args.to else None)
    print(f"backup written and checked: {made}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    config = _config(args)
    database = backup.sqlite_file(database_url(config.database()))
    if not args.yes:
        raise HallMonitorError(
            f"this replaces the database at {database} with {args.backup}; stop the service first, then add --yes"
        )
    kept = backup.restore(Path(args.backup), database)
    _open(config).dispose()  # brings a backup from an older version up to this version's schema
    print(f"restored {args.backup} into {database}" + (f"; the database it replaced is kept at {kept}" if kept else ""))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    options = Options(teams_without_auth=args.teams_local_testing_without_auth)
    host = args.host
    if options.teams_without_auth and "teams" in wanted(config, web=True) and not os.environ.get("MICROSOFT_APP_ID"):
        host = "127.0.0.1"  # the opt-in never reaches beyond this machine
        log.warning(
            "teams_authentication_off: Teams requests are NOT verified (--teams-local-testing-without-auth); "
            "listening on 127.0.0.1 only. Never use this in production."
        )
    engine = _open(config)
    service, kits = _service(config, engine, web=True, options=options)
    routers = [r for r in (kit.router(service) for kit in kits) if r is not None]
    app = create_app(service, routers=routers)
    if "console" in service.surfaces and config.chat.read_commands and not args.no_commands:
        commands = ConsoleCommands(service)
        threading.Thread(target=commands.loop, name="console-commands", daemon=True).start()
        print(
            f"Hall Monitor is watching {len(config.accounts)} account(s). Type `help` for commands; "
            f"health at http://{host}:{args.port}/healthz",
            flush=True,
        )
    # idle keep-alive connections are closed after 5 s; bodies have their own read timeout (hallmonitor.edge)
    uvicorn.run(app, host=host, port=args.port, log_level="warning", timeout_keep_alive=5)
    return 0


def cmd_poll(args: argparse.Namespace) -> int:

    config = _config(args)
    service, _ = _service(config, _open(config), web=False, options=Options())

    async def once() -> PollSummary:
        try:
            return await service.tick(all_sources=True)
        finally:
            await service.stop()

    summary = asyncio.run(once())
    print(summary.line())
    for error in summary.errors:
        print(f"  failed: {error}")
    return 1 if summary.errors else 0


def cmd_queue(args: argparse.Namespace) -> int:

    config = _config(args)
    if args.school and args.school not in {s.id for s in config.schools}:
        known = ", ".join(s.id for s in config.schools)
        raise HallMonitorError(f"no school has id {args.school!r} in {config.path}; use one of {known}")
    engine = _open(config)
    now = utcnow()
    with session_scope(engine) as session:
        rows = [
            _queue_row(config, item, view(session, config, item, None, Place.CHANNEL, now=now))
            for item in open_items(session, school_id=args.school)
        ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=None))
    else:
        for r in rows:
            print(
                f"#{r['id']:<5} {r['category']:<12} reply={r['needs_reply']!s:<5} escalate={r['escalate']:<4} "
                f"by={r['reply_by'] or '-':<25} {(r['text'] or '(details withheld: safeguarding)')[:60]}"
            )
        if not rows:
            print("nothing open")
    return 0


def _queue_row(config: Config, item: Item, card: Card | None) -> dict[str, Any]:
    """A queue row as the moderators' shared view shows it: a safeguarding item's text, author
    and link are withheld here too (the DSLs see them in their own messages)."""
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
        "author": card.author if card else None,
        "text": card.text if card else None,
        "url": card.url if card else None,
        "received_at": item.received_at.isoformat(),
    }


def _map_jsonl(field: str, name: str, process: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> int:
    """Read JSON lines from stdin, process the good ones in one batch, write one line per input
    line in order (a line that cannot be read gets an error line). Exit 1 if any line failed."""
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
    good = [r for r in rows if isinstance(r, dict)]
    results = iter(process(good))
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
    if not FIRST_YEAR <= received.year <= LAST_YEAR:
        raise HallMonitorError(
            f"--received {args.received!r} is outside {FIRST_YEAR}-{LAST_YEAR}, the years whose bank holidays are known"
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
        try:
            figures = run_policy_eval(gold, Path(args.policies) if args.policies else None)
        except ValueError as exc:
            raise HallMonitorError(str(exc)) from None
        if args.no_misses:  # figures only: no question text leaves the run (the lead scores blind sets so)
            figures.pop("misses", None)
        text = format_policy(figures, show_misses=not (args.quiet or args.no_misses))
    else:
        figures = run_triage_eval(gold)
        if args.no_misses:
            figures.pop("misses")
        text = format_triage(figures, show_misses=not (args.quiet or args.no_misses))
    print(json.dumps(figures, indent=2) if args.json else text)
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    print(render(load_policy(Path(args.file)), full=args.full))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hallmonitor", description="Keeps a school's social media safe and answered.")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL", "WARNING"),
        help="DEBUG, INFO, WARNING or ERROR (default $LOG_LEVEL, or INFO for run and WARNING otherwise)",
    )
    parser.add_argument("--env-file", help="read NAME=value secrets from this file first (the systemd EnvironmentFile)")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", help=f"config file (default $HALLMONITOR_CONFIG or {DEFAULT_CONFIG})")
        return p

    p = with_config(sub.add_parser("run", help="web app + scheduler"))
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="port (default $PORT or 8000)")
    p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="address (default $HOST or 127.0.0.1)")
    p.add_argument("--no-commands", action="store_true", help="do not read console commands from stdin")
    p.add_argument(
        "--teams-local-testing-without-auth",
        action="store_true",
        help="LOCAL TESTING ONLY: serve Teams without MICROSOFT_APP_ID (requests unverified); binds 127.0.0.1",
    )
    p.set_defaults(func=cmd_run, default_level="INFO")
    with_config(sub.add_parser("poll", help="one polling pass, then print a summary")).set_defaults(func=cmd_poll)
    with_config(
        sub.add_parser("check-config", help="validate the config file against what would break at run time")
    ).set_defaults(func=cmd_check_config)
    p = with_config(sub.add_parser("doctor", help="reach each platform and chat surface live (read-only)"))
    p.add_argument(
        "--send-test",
        action="store_true",
        help="also send a test card to each moderators' channel and a test DM to each DSL",
    )
    p.set_defaults(func=cmd_doctor)
    p = with_config(sub.add_parser("backup", help="a consistent copy of the SQLite database, safe while running"))
    p.add_argument("--to", help="a file or folder for the copy (default: backups/ beside the database)")
    p.set_defaults(func=cmd_backup)
    p = with_config(sub.add_parser("restore", help="replace the SQLite database with a backup (service stopped)"))
    p.add_argument("backup", help="the backup file to restore")
    p.add_argument("--yes", action="store_true", help="confirm: the current database is kept beside it, then replaced")
    p.set_defaults(func=cmd_restore)
    p = with_config(sub.add_parser("queue", help="open items"))
    p.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    p.add_argument("--school", help="only this school's items (a school id from the config)")
    p.set_defaults(func=cmd_queue)
    p = sub.add_parser("triage", help="triage JSON lines from stdin")
    p.add_argument("--jsonl", action="store_true", required=True, help='read {"id","text"} lines; one verdict a line')
    p.set_defaults(func=cmd_triage)
    p = sub.add_parser("deadline", help="reply-by time for a received time")
    p.add_argument("--received", required=True, help="when the comment arrived, ISO 8601 with an offset")
    p.add_argument(
        "--region", choices=[n.value for n in Nation], default="england", help="whose bank holidays (default england)"
    )
    p.add_argument("--explain", action="store_true", help="say why on stderr")
    p.set_defaults(func=cmd_deadline)
    p = with_config(sub.add_parser("ask", help="answer a question from a school's social media policy"))
    p.add_argument("question", nargs="*", help="the question, in plain words")
    p.add_argument("--policy", help="the policy file (.txt, .md, .docx, .pdf)")
    p.add_argument("--school", help="use this school's policy from the config instead")
    p.add_argument("--json", action="store_true", help="the answer and its citations as JSON")
    p.add_argument("--jsonl", action="store_true", help='read {"id","question"} lines, write one answer per line')
    p.set_defaults(func=cmd_ask)
    p = sub.add_parser("score", help="score an evaluation set")
    p.add_argument("what", choices=["triage", "policy"], help="which evaluation set")
    p.add_argument("--gold", help="labelled set (default ../shared/eval/<what>_dev.jsonl)")
    p.add_argument(
        "--policies", help="folder of the policies a policy set names (default beside the eval folder, else ../shared)"
    )
    p.add_argument("--json", action="store_true", help="figures as JSON")
    p.add_argument("--quiet", action="store_true", help="figures only, without the misses")
    p.add_argument(
        "--no-misses",
        action="store_true",
        help="figures only, never an item or question text (blind sets)",
    )
    p.set_defaults(func=cmd_score)
    p = sub.add_parser("policy", help="how a policy document was read")
    p.add_argument("action", choices=["show"], help="show: print the clause tree with warnings")
    p.add_argument("file", help="the policy file (.pdf, .docx, .doc, .md, .txt)")
    p.add_argument("--full", action="store_true", help="print every clause in full")
    p.set_defaults(func=cmd_policy)
    add_commands(sub, _with_database, with_config)
    return parser


def _with_database(func: Callable[[argparse.Namespace, Config, Any], int]) -> Callable[[argparse.Namespace], int]:
    """A command handler given the config and an open, migrated database."""

    def run(args: argparse.Namespace) -> int:
        config = _config(args)
        return func(args, config, _open(config))

    return run


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


if __name__ == "__main__":
    sys.exit(main())
