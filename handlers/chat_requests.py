"""Chat commands for records and the web view: `web`, `export N`, `hold N reason`, `release N`.

`web` and `export` queue a direct message (a signed link, a PDF record) that the outbox
delivers to the person who asked; nothing secret is stored in the outbox, since the
link and the record are made at delivery time. Holds take effect at once.
"""

from __future__ import annotations

from typing import Any

from core.config import StaffConfig
from core.errors import ConfigError, HallMonitorError
from handlers.records import EXPORT_ROLES, item_record
from handlers.retention import set_legal_hold
from handlers.visibility import Sight, view_for
from handlers.weblink import web_secret
from storage.db import session_scope
from storage.models import Item
from storage.queries import enqueue
from storage.types import utcnow

USAGE = {
    "export": "Say which item: `export 12` (the record comes to you by direct message as a PDF).",
    "hold": "Say which item and why: `hold 12 police request 26/114`.",
    "release": "Say which item: `release 12`.",
}


def _item_number(verb: str, text: str) -> tuple[int | None, str]:
    number, _, rest = text.strip().partition(" ")
    return (int(number.lstrip("#")) if number.lstrip("#").isdigit() else None), rest.strip()


def chat_request(service: Any, *, staff: StaffConfig, verb: str, text: str, surface: str) -> str:
    """Do or queue what `verb` asks and return the sentence to answer with."""
    now = utcnow()
    school_id = service.config.school_of(staff).id
    if verb == "web":
        try:
            web_secret()
        except ConfigError:
            return "The web view is not set up yet: ask your Hall Monitor admin to set HALLMONITOR_WEB_SECRET."
        with session_scope(service.engine) as session:
            enqueue(
                session,
                dedupe_key=f"weblink:{staff.id}:{now.isoformat()}",
                school_id=school_id,
                kind="weblink",
                audience="person",
                payload={"staff": staff.id},
                now=now,
            )
        return "I've sent you a sign-in link by direct message. It works once, for 10 minutes."
    item_id, rest = _item_number(verb, text)
    if item_id is None:
        return USAGE[verb]
    if verb in ("hold", "release"):
        with session_scope(service.engine) as session:
            return set_legal_hold(
                session,
                config=service.config,
                actor=staff.id,
                item_id=item_id,
                hold=verb == "hold",
                reason=rest or None,
                surface=surface,
                now=now,
            )[1]
    with session_scope(service.engine) as session:
        item = session.get(Item, item_id)
        view = view_for(service.config, session, viewer=staff, item=item) if item else None
        allowed = view is not None and view.sight is Sight.FULL and bool(set(staff.roles) & EXPORT_ROLES)
        if not allowed:
            try:  # the same refusal, worded and audited by the export itself
                item_record(
                    session, config=service.config, item_id=item_id, viewer_id=staff.id, surface=surface, now=now
                )
            except HallMonitorError as exc:
                return str(exc)
        enqueue(
            session,
            dedupe_key=f"export:{staff.id}:{item_id}:{now.isoformat()}",
            school_id=school_id,
            kind="export",
            audience="person",
            payload={"staff": staff.id, "item": item_id},
            now=now,
        )
    return f"I'll send you the record of item {item_id} as a PDF by direct message."
