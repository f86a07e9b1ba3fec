"""`hallmonitor triage | deadline | ask | score | policy`: the triage model, the reply clock and
the policy reader on their own, and the evaluation figures."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from core.config import Nation, Role
from core.errors import HallMonitorError
from hallmonitor.cli.common import config_of, map_jsonl, with_config
from hallmonitor.scoring import format_policy, format_triage, run_policy_eval, run_triage_eval
from handlers.deadline import reply_by, why_due
from handlers.policy import ask, index_for
from handlers.policy.document import load_policy
from handlers.policy.show import render
from handlers.triage import default_classifier

FIRST_YEAR, LAST_YEAR = 2000, 2099
SHARED = Path(__file__).resolve().parents[2].parent / "shared"  # beside the repo


def cmd_triage(args: argparse.Namespace) -> int:
    classifier = default_classifier()
    return map_jsonl(
        "text", "triage", lambda rows: [v.as_dict() for v in classifier.classify_many([r["text"] for r in rows])]
    )


def cmd_deadline(args: argparse.Namespace) -> int:
    received = _received(args.received)
    due = reply_by(received, nation=args.region)
    print(json.dumps({"received": received.isoformat(), "reply_by": due.isoformat()}))
    if args.explain:
        print(why_due(received, nation=args.region), file=sys.stderr)
    return 0


def _received(value: str) -> datetime:
    """--received as an aware time in the years whose bank holidays are known."""
    try:
        received = datetime.fromisoformat(value)
    except ValueError:
        raise HallMonitorError(
            f"--received {value!r} is not an ISO 8601 time; write it like 2026-03-28T10:00:00+00:00"
        ) from None
    if received.tzinfo is None:
        raise HallMonitorError(
            f"--received {value!r} has no UTC offset; add one, e.g. 2026-03-28T10:00:00+00:00 or ...Z"
        )
    if not FIRST_YEAR <= received.year <= LAST_YEAR:
        raise HallMonitorError(
            f"--received {value!r} is outside {FIRST_YEAR}-{LAST_YEAR}, the years whose bank holidays are known"
        )
    return received


def _policy_path(args: argparse.Namespace) -> tuple[Path, str]:
    """The policy file and who to ask instead, from --policy or --school."""
    if args.policy:
        return Path(args.policy), "your headteacher or line manager"
    if not args.school:
        raise HallMonitorError("say which policy: --policy PATH, or --school ID with --config")
    config = config_of(args)
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
        return map_jsonl(
            "question", "ask", lambda rows: [ask(path, r["question"], ask_instead=ask_instead).as_dict() for r in rows]
        )
    if not args.question:
        raise HallMonitorError('ask a question: hallmonitor ask --policy PATH "Can I accept a friend request?"')
    answer = ask(path, " ".join(args.question), ask_instead=ask_instead)
    print(json.dumps(answer.as_dict(), ensure_ascii=False, indent=2) if args.json else answer.answer)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    gold = Path(args.gold or SHARED / "eval" / f"{args.what}_dev.jsonl")
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


def add_commands(sub: Any) -> None:
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
    _add_ask(sub)
    _add_score(sub)
    p = sub.add_parser("policy", help="how a policy document was read")
    p.add_argument("action", choices=["show"], help="show: print the clause tree with warnings")
    p.add_argument("file", help="the policy file (.pdf, .docx, .doc, .md, .txt)")
    p.add_argument("--full", action="store_true", help="print every clause in full")
    p.set_defaults(func=cmd_policy)


def _add_ask(sub: Any) -> None:
    p = with_config(sub.add_parser("ask", help="answer a question from a school's social media policy"))
    p.add_argument("question", nargs="*", help="the question, in plain words")
    p.add_argument("--policy", help="the policy file (.txt, .md, .docx, .pdf)")
    p.add_argument("--school", help="use this school's policy from the config instead")
    p.add_argument("--json", action="store_true", help="the answer and its citations as JSON")
    p.add_argument("--jsonl", action="store_true", help='read {"id","question"} lines, write one answer per line')
    p.set_defaults(func=cmd_ask)


def _add_score(sub: Any) -> None:
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
