"""Deliveries that may have gone (`maybe_sent`: their worker died mid-send, or a send failed in a
way that may have posted): looked for in the chat together, then finished without posting twice.

When a claimed batch holds such deliveries on a surface that can look (`find_sent`; Slack), up to
`RECOVER` more of them are claimed with them and all are looked for in one pass: Slack scans each
conversation's history once for all of its deliveries (bot.slack_history), not once per delivery.
A found message is recorded sent, and a direct message's files that had not been uploaded after
it (digest charts, a record) are uploaded then (`complete`); one found missing is sent normally.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from bot.notify import build_note
from core.chat import ChatSurface, Found, Notification
from core.config import Config
from core.errors import FilesNotSent
from storage.db import session_scope
from storage.leases import claim_deliveries, release, retrying
from storage.models import Delivery

log = logging.getLogger(__name__)

RECOVER = 200  # deliveries looked for in one pass, beside the batch's own


@dataclass(slots=True)
class Looked:
    """What one pass found: delivery id -> the message already posted, which ids were looked for
    (found or not), and the extra deliveries claimed for the look."""

    found: dict[int, Found] = field(default_factory=dict)
    looked: set[int] = field(default_factory=set)
    extra: list[Delivery] = field(default_factory=list)


def _notes(engine: Engine, config: Config, deliveries: list[Delivery], now: datetime) -> dict[int, Notification]:
    with session_scope(engine) as session:
        built = {d.id: build_note(session, config=config, delivery=d, now=now) for d in deliveries}
    return {i: n for i, n in built.items() if i is not None and n is not None and n.copy is None}


async def look(
    engine: Engine,
    *,
    config: Config,
    surfaces: Mapping[str, ChatSurface],
    claimed: list[Delivery],
    claim_more: dict[str, object],
    now: datetime,
) -> Looked:
    """Look for the batch's maybe-sent deliveries, with up to RECOVER more (claimed here with
    `claim_more`, the batch's own claim arguments), one `find_sent` per surface."""
    lookable = [name for name, s in surfaces.items() if getattr(s, "find_sent", None) is not None]
    if not any(d.maybe_sent and d.surface in lookable for d in claimed):
        return Looked()

    def claim(session: Session) -> list[Delivery]:
        args = {**claim_more, "surfaces": lookable, "limit": RECOVER, "maybe_sent_only": True}
        return claim_deliveries(session, **args)  # type: ignore[arg-type]

    result = Looked(extra=await asyncio.to_thread(retrying, engine, claim))
    suspects = [d for d in claimed + result.extra if d.maybe_sent and d.surface in lookable]
    notes = await asyncio.to_thread(_notes, engine, config, suspects, now)
    for name in lookable:
        wanted = [(notes[d.id], d.created_at) for d in suspects if d.surface == name and d.id in notes]
        if not wanted:
            continue
        try:
            result.found |= await surfaces[name].find_sent(wanted)  # type: ignore[attr-defined]
        except Exception as exc:  # each is looked for again on its own when it is sent
            log.warning("delivery_lookup_failed surface=%s deliveries=%d error=%r", name, len(wanted), exc)
            continue
        result.looked |= {n.delivery_id for n, _since in wanted}
    counts = (len(result.looked), len(result.found), len(result.extra))
    log.warning("deliveries_looked_for looked=%d found=%d extra_claimed=%d", *counts)
    return result


def give_back(engine: Engine, looked: Looked, *, owner: str) -> list[Delivery]:
    """Release the extra deliveries not found (looked for: sent normally later; not looked for:
    still `maybe_sent`); the found ones are returned, to be finished by the caller."""
    if not looked.extra:
        return []
    missing = [d.id for d in looked.extra if d.id is not None and d.id in looked.looked and d.id not in looked.found]
    unseen = [d.id for d in looked.extra if d.id is not None and d.id not in looked.looked]

    def work(session: Session) -> None:
        release(session, Delivery, missing, owner=owner, status="pending", maybe_sent=False)
        release(session, Delivery, unseen, owner=owner, status="pending")

    retrying(engine, work)
    return [d for d in looked.extra if d.id in looked.found]


async def complete(surface: ChatSurface, note: Notification, found: Found) -> None:
    """Upload the direct message's files that were not seen after the found message."""
    missing = [a for a in note.attachments if a.filename not in found.files] if note.recipient else []
    if not missing:
        return
    attach = getattr(surface, "attach", None)
    names = [a.filename for a in missing]
    if attach is None:
        raise FilesNotSent(
            f"the message was posted but {len(names)} file(s) were not uploaded ({', '.join(names)}): "
            f"{surface.name} cannot add files to a posted message",
            conversation=found.posted.conversation,
            message_id=found.posted.message_id,
            missing=names,
            retry=False,
        )
    await attach(found.posted, missing)
    log.warning("delivery_files_completed delivery=%s files=%s", note.delivery_id, ",".join(names))
