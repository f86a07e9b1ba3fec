"""Deliveries that may have gone (`maybe_sent`: their worker died mid-send, or a send failed in a
way that may have posted): looked for in the chat together, then finished without posting twice.

When a claimed batch holds such deliveries on a surface that can look (`find_sent`; Slack), up to
`RECOVER` more of them are claimed with them and all are looked for in one pass: Slack scans each
conversation's history once for all of its deliveries (bot.slack_history), not once per delivery,
and one pass scans at most `CONVERSATIONS` conversations (Slack's history method is tier 3).
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
CONVERSATIONS = 20  # conversations scanned in one pass (Slack: at most 5 history calls each); the rest wait


@dataclass(slots=True)
class Looked:
    """What one pass found: delivery id -> the message already posted, which ids were looked for
    (found or not), the extra deliveries claimed for the look, and the ones left for a later pass."""

    found: dict[int, Found] = field(default_factory=dict)
    looked: set[int] = field(default_factory=set)
    extra: list[Delivery] = field(default_factory=list)
    later: set[int] = field(default_factory=set)


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
    every = [d for d in claimed + result.extra if d.maybe_sent and d.surface in lookable]
    suspects = _bounded(every)
    result.later = {d.id for d in every if d.id is not None} - {d.id for d in suspects}
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


def _bounded(suspects: list[Delivery]) -> list[Delivery]:
    """The suspects of the first CONVERSATIONS recipients (a recipient is one conversation), most
    urgent first; the others are looked for in a later pass."""
    chosen: list[Delivery] = []
    recipients: set[tuple[str, str]] = set()
    for delivery in sorted(suspects, key=lambda d: (d.priority, d.id or 0)):
        key = (delivery.surface, delivery.target)
        if key not in recipients and len(recipients) >= CONVERSATIONS:
            continue
        recipients.add(key)
        chosen.append(delivery)
    return chosen


def to_work_on(engine: Engine, looked: Looked, claimed: list[Delivery], *, owner: str) -> list[Delivery]:
    """The deliveries to finish now: the batch's own, but for those left for a later pass, and the
    extra ones found. The rest are given back: those looked for and not found to be sent normally
    later, those not looked for still `maybe_sent`."""
    keep = [d for d in claimed if d.id not in looked.later] + [d for d in looked.extra if d.id in looked.found]
    if len(keep) == len(claimed) and not looked.extra:
        return claimed
    kept = {d.id for d in keep}
    missing = [d.id for d in looked.extra if d.id is not None and d.id in looked.looked and d.id not in kept]
    unseen = [d.id for d in claimed + looked.extra if d.id is not None and d.id not in kept and d.id not in missing]

    def work(session: Session) -> None:
        release(session, Delivery, missing, owner=owner, status="pending", maybe_sent=False)
        release(session, Delivery, unseen, owner=owner, status="pending")

    retrying(engine, work)
    return keep


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
