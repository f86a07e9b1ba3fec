"""Notifications for one person or the SLT that carry files or links: the weekly digest
with its charts, an item record asked for from chat, and a web-view link.

`bot.notify.build_note` hands these outbox kinds here; the surfaces deliver
them by direct message only, never to a shared channel.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session

from core.chat import Attachment, Card, Notification
from core.config import Config, Role, StaffConfig
from core.errors import HallMonitorError
from handlers.records import item_record, record_pdf
from handlers.reports.digest import digest_charts, digest_text
from handlers.weblink import login_url, web_secret
from storage.models import Outbox


def _digest(session: Session, *, config: Config, row: Outbox, surface: str, now: datetime) -> Notification:
    payload = row.payload
    card = Card(
        item_id=None, kind="digest", headline=payload.get("headline", "Weekly digest"), text=digest_text(payload)
    )
    files = [
        Attachment(name, png, title=name.removesuffix(".png").replace("-", " ")) for name, png in digest_charts(payload)
    ]
    people = config.staff_with_role(row.school_id, Role.SLT)
    return Notification(
        row.id or 0, row.kind, row.audience, row.school_id, card, people, direct_only=True, attachments=files
    )


def _person(config: Config, row: Outbox) -> list[StaffConfig]:
    staff = config.staff_by_id(str(row.payload.get("staff")))
    return [staff] if staff else []


def _export(session: Session, *, config: Config, row: Outbox, surface: str, now: datetime) -> Notification:
    item_id = int(row.payload.get("item", 0))
    files: list[Attachment] = []
    try:
        record = item_record(
            session, config=config, item_id=item_id, viewer_id=str(row.payload.get("staff")), surface=surface, now=now
        )
        files.append(
            Attachment(
                f"item-{item_id}.pdf", record_pdf(record), mime="application/pdf", title=f"Record of item {item_id}"
            )
        )
        text = f"The record of item {item_id} is attached (PDF). Keep it somewhere only you and your DSL can read."
    except HallMonitorError as exc:
        text = str(exc)
    card = Card(item_id=None, kind="export", headline=f"Record of item {item_id}", text=text)
    return Notification(
        row.id or 0,
        row.kind,
        row.audience,
        row.school_id,
        card,
        _person(config, row),
        direct_only=True,
        attachments=files,
    )


def _weblink(session: Session, *, config: Config, row: Outbox, surface: str, now: datetime) -> Notification:
    people = _person(config, row)
    base = config.service.public_url or "http://127.0.0.1:8000"
    url = login_url(base, people[0].id, now=now, secret=web_secret()) if people else ""
    card = Card(
        item_id=None,
        kind="weblink",
        headline="Your Hall Monitor web view",
        text=f"Open this link within 10 minutes; it is for you only and signs you in for 8 hours:\n{url}",
    )
    return Notification(row.id or 0, row.kind, row.audience, row.school_id, card, people, direct_only=True)


PERSONAL_KINDS: dict[str, Callable[..., Notification]] = {"digest": _digest, "export": _export, "weblink": _weblink}
