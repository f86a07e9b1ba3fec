"""`hallmonitor queue`: the open items, as the moderators' shared view shows them."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.view import view
from core.chat import Card, Place
from core.config import Config
from core.errors import HallMonitorError
from hallmonitor.cli.common import config_of, open_db, with_config
from storage.db import session_scope
from storage.models import Item
from storage.queries import open_items
from storage.types import utcnow


def cmd_queue(args: argparse.Namespace) -> int:
    config = config_of(args)
    if args.school and args.school not in {s.id for s in config.schools}:
        known = ", ".join(s.id for s in config.schools)
        raise HallMonitorError(f"no school has id {args.school!r} in {config.path}; use one of {known}")
    engine = open_db(config)
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


def add_commands(sub: Any) -> None:
    p = with_config(sub.add_parser("queue", help="open items"))
    p.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    p.add_argument("--school", help="only this school's items (a school id from the config)")
    p.set_defaults(func=cmd_queue)
