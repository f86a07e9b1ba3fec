"""`hallmonitor report | export | audit | hold | subject-access | erase | purge`: reports, records
and retention from the command line. Every command writes to --out FILE, or standard output."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from core.config import Config
from core.errors import HallMonitorError
from hallmonitor.cli.common import with_config, with_database
from handlers.audit_export import audit_csv
from handlers.records import item_record, record_json, record_pdf
from handlers.reports.figures import Period
from handlers.reports.termly import report_data, report_html, report_pdf
from handlers.retention import purge_school, set_legal_hold
from handlers.subject_access import as_json, erase, subject_access, subject_access_pdf
from storage.db import session_scope
from storage.types import utcnow


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; write it like 2026-04-05") from None


def _write(out: str | None, content: str | bytes) -> None:
    if out:
        path = Path(out)
        try:
            path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
        except OSError as exc:
            raise HallMonitorError(f"cannot write {out}: {exc.strerror}") from None
        print(f"wrote {out} ({path.stat().st_size} bytes)", file=sys.stderr)
    elif isinstance(content, bytes):
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
    else:
        sys.stdout.write(content if content.endswith("\n") else content + "\n")


def cmd_report(args: argparse.Namespace, config: Config, engine: Any) -> int:

    if bool(args.school) == bool(args.trust):
        raise HallMonitorError("say whose report: --school ID, or --trust for every school in the config")
    try:
        schools = config.schools if args.trust else [config.school(args.school)]
        period = Period(args.start, args.end)
    except KeyError:
        raise HallMonitorError(
            f"no school has id {args.school!r}; use one of {', '.join(s.id for s in config.schools)}"
        ) from None
    except ValueError as exc:
        raise HallMonitorError(str(exc)) from None
    with session_scope(engine) as session:
        data = report_data(session, config=config, schools=schools, period=period, now=utcnow())
    _write(args.out, report_pdf(data) if args.format == "pdf" else report_html(data))
    return 0


def cmd_export(args: argparse.Namespace, config: Config, engine: Any) -> int:

    with session_scope(engine) as session:
        record = item_record(
            session, config=config, item_id=args.item, viewer_id=args.as_staff, surface="cli", now=utcnow()
        )
    _write(args.out, record_pdf(record) if args.format == "pdf" else record_json(record))
    return 0


def cmd_audit(args: argparse.Namespace, config: Config, engine: Any) -> int:

    zone = config.schools[0].zone
    start = datetime.combine(args.start, time(0), tzinfo=zone)
    end = datetime.combine(args.end, time(23, 59, 59, 999999), tzinfo=zone)
    with session_scope(engine) as session:
        _write(args.out, audit_csv(session, start=start, end=end, item_id=args.item))
    return 0


def cmd_hold(args: argparse.Namespace, config: Config, engine: Any) -> int:

    with session_scope(engine) as session:
        ok, message = set_legal_hold(
            session,
            config=config,
            actor=args.as_staff,
            item_id=args.item,
            hold=not args.release,
            reason=args.reason,
            surface="cli",
            now=utcnow(),
        )
    print(message)
    return 0 if ok else 2


def cmd_subject_access(args: argparse.Namespace, config: Config, engine: Any) -> int:

    with session_scope(engine) as session:
        data = subject_access(session, config=config, subject=args.subject, staff_id=args.as_staff, now=utcnow())
    _write(args.out, subject_access_pdf(data) if args.format == "pdf" else as_json(data))
    return 0


def cmd_erase(args: argparse.Namespace, config: Config, engine: Any) -> int:

    if not args.yes:
        raise HallMonitorError("erasure cannot be undone: run `hallmonitor subject-access` first, then add --yes")
    with session_scope(engine) as session:
        result = erase(session, config=config, subject=args.subject, staff_id=args.as_staff, now=utcnow())
    _write(args.out, as_json(result))
    return 0


def cmd_purge(args: argparse.Namespace, config: Config, engine: Any) -> int:
    for school in config.schools:
        with session_scope(engine) as session:
            print(asdict(purge_school(session, config=config, school=school, now=utcnow())))
    return 0


def add_commands(sub: Any) -> None:
    """Register the commands, each given the config and an open database (`with_database`)."""
    wrap = with_database
    p = with_config(sub.add_parser("report", help="governors' report over a period (counts only)"))
    p.add_argument("--from", dest="start", type=_date, required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="end", type=_date, required=True, help="last day, YYYY-MM-DD")
    p.add_argument("--school", help="one school's id (default: the only school)")
    p.add_argument("--trust", action="store_true", help="every school in the config, together and one by one")
    p.add_argument("--format", choices=["html", "pdf"], default="html", help="html (default) or pdf")
    p.add_argument("--out", help="file to write (default: standard output)")
    p.set_defaults(func=wrap(cmd_report))
    p = with_config(sub.add_parser("export", help="one item's record, as a given member of staff may have it"))
    p.add_argument("what", choices=["item"], help="what to export (an item)")
    p.add_argument("item", type=int, help="the item's number")
    p.add_argument("--as", dest="as_staff", required=True, help="staff id of the person asking")
    p.add_argument("--format", choices=["json", "pdf"], default="json", help="json (default) or pdf")
    p.add_argument("--out", help="file to write (default: standard output)")
    p.set_defaults(func=wrap(cmd_export))
    p = with_config(sub.add_parser("audit", help="the audit log as CSV"))
    p.add_argument("--from", dest="start", type=_date, required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="end", type=_date, required=True, help="last day, YYYY-MM-DD")
    p.add_argument("--item", type=int, help="only this item's rows")
    p.add_argument("--csv", action="store_true", help="CSV (the only format)")
    p.add_argument("--out", help="file to write (default: standard output)")
    p.set_defaults(func=wrap(cmd_audit))
    p = with_config(sub.add_parser("hold", help="place (or --release) a legal hold on an item"))
    p.add_argument("item", type=int, help="the item's number")
    p.add_argument("--as", dest="as_staff", required=True, help="staff id of the person placing the hold")
    p.add_argument("--reason", help="why (kept with the hold)")
    p.add_argument("--release", action="store_true", help="release the hold instead")
    p.set_defaults(func=wrap(cmd_hold))
    for name, func, helptext in (
        ("subject-access", cmd_subject_access, "everything held about a person"),
        ("erase", cmd_erase, "erase what a person wrote (legal holds respected)"),
    ):
        p = with_config(sub.add_parser(name, help=helptext))
        p.add_argument("--subject", required=True, help="author name or platform user id")
        p.add_argument("--as", dest="as_staff", required=True, help="staff id (SLT or DSL) making the request")
        p.add_argument("--out", help="file to write (default: standard output)")
        if name == "erase":
            p.add_argument("--yes", action="store_true", help="confirm the erasure")
        else:
            p.add_argument("--format", choices=["json", "pdf"], default="json", help="json (default) or pdf")
        p.set_defaults(func=wrap(func))
    p = with_config(sub.add_parser("purge", help="apply the retention periods now (the nightly job)"))
    p.set_defaults(func=wrap(cmd_purge))
