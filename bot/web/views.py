"""The read-only web view: queue, one item's record and timeline, reports and charts, monitor
health. Served by the same FastAPI app under /web.

Who you are comes from chat (`/hallmonitor web` DMs a signed 10-minute link that opens
an 8-hour session cookie: `bot.web.session`); what you see of each item is decided by
`handlers.visibility.item_view`, exactly as for exports. Nothing here changes data
except the audit row written at sign-in.
"""

from __future__ import annotations

import base64
import logging
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlmodel import col

from bot.cards import CATEGORY_LABEL, countdown
from bot.web.session import HEADERS, Page, add_session_routes, local_time
from core.config import Role, StaffConfig
from handlers.records import EXPORT_ROLES, RecordError, build_record, item_record, record_pdf
from handlers.reports.digest import digest_week
from handlers.reports.figures import Period, source_problems
from handlers.reports.termly import report_data
from handlers.visibility import FULL_ROLES, Sight, ever_safeguarding_ids, item_view
from storage.db import session_scope
from storage.models import Item, Source
from storage.queries import open_items
from storage.types import utcnow

log = logging.getLogger(__name__)


def web_router(service: Any) -> APIRouter:
    """The /web routes around a running service (config, engine)."""
    router = APIRouter(prefix="/web")
    page = Page()
    viewer = add_session_routes(router, service, page)

    @router.get("/")
    def queue(request: Request) -> Response:
        staff = viewer(request)
        if isinstance(staff, HTMLResponse):
            return staff
        school = service.config.school_of(staff)
        now = utcnow()
        with session_scope(service.engine) as session:
            items = open_items(session, school_id=school.id, limit=200)
            sensitive = ever_safeguarding_ids(session, [i.id for i in items if i.id is not None])
            rows = [_row(service, staff, item, item.id in sensitive, now) for item in items]
        return page("queue.html", staff=staff, school=school, rows=[r for r in rows if r], title="Queue")

    @router.get("/items/{item_id}")
    def item(request: Request, item_id: int) -> Response:
        staff = viewer(request)
        if isinstance(staff, HTMLResponse):
            return staff
        with session_scope(service.engine) as session:
            found = session.get(Item, item_id)
            sensitive = bool(found and ever_safeguarding_ids(session, [item_id]))
            view = item_view(service.config, viewer=staff, item=found, ever_safeguarding=sensitive) if found else None
            if found is None or view is None or view.sight is Sight.NONE:
                return page.message(
                    "No such item", f"There is no item {item_id} for you to see.", status=404, staff=staff
                )
            record = build_record(session, config=service.config, item=found, safeguarding=sensitive, media=view.media)
        return page(
            "item.html",
            staff=staff,
            record=record,
            view=view,
            title=f"Item {item_id}",
            zone=service.config.school(found.school_id).zone,
            can_export=view.content and bool(set(staff.roles) & EXPORT_ROLES),
            label=CATEGORY_LABEL.get(found.category or "", found.category or "untriaged"),
        )

    @router.get("/items/{item_id}/record.pdf")
    def item_pdf(request: Request, item_id: int) -> Response:
        staff = viewer(request)
        if isinstance(staff, HTMLResponse):
            return staff
        try:
            with session_scope(service.engine) as session:
                record = item_record(
                    session, config=service.config, item_id=item_id, viewer_id=staff.id, surface="web", now=utcnow()
                )
        except RecordError as exc:
            return page.message("Not available", str(exc), status=403, staff=staff)
        return Response(
            record_pdf(record),
            media_type="application/pdf",
            headers={**HEADERS, "Content-Disposition": f'attachment; filename="item-{item_id}.pdf"'},
        )

    @router.get("/reports")
    def reports(request: Request, start: date | None = None, end: date | None = None) -> Response:
        staff = viewer(request)
        if isinstance(staff, HTMLResponse):
            return staff
        if not set(staff.roles) & FULL_ROLES:
            return page.message(
                "Reports are for leaders",
                "Reports are for the school's SLT, moderators and DSLs.",
                status=403,
                staff=staff,
            )
        school = service.config.school_of(staff)
        now = utcnow()
        try:
            period = Period(start, end) if start and end else digest_week(school, now)[1]
        except ValueError as exc:
            return page.message("Check the dates", str(exc), status=400, staff=staff)
        with session_scope(service.engine) as session:
            data = report_data(session, config=service.config, schools=[school], period=period, now=now)
        images = {k: "data:image/png;base64," + base64.b64encode(v).decode() for k, v in data["charts"].items()}
        return page("reports.html", staff=staff, r=data, images=images, title="Reports", period=period)

    @router.get("/health")
    def health(request: Request) -> Response:
        staff = viewer(request)
        if isinstance(staff, HTMLResponse):
            return staff
        school = service.config.school_of(staff)
        accounts = [a.id for a in service.config.accounts if service.config.school_of(a).id == school.id]
        with session_scope(service.engine) as session:
            sources = list(
                session.scalars(
                    select(Source).where(col(Source.account_id).in_(accounts), col(Source.enabled).is_(True))
                )
            )
            problems = {
                (p.account, p.source): p
                for p in source_problems(session, config=service.config, schools=[school], now=utcnow())
            }
        rows = [
            {
                "account": s.account_id,
                "source": s.label or s.location,
                "problem": problems.get((s.account_id, s.label or s.location)),
                "last_success": local_time(s.last_success_at, school.zone),
                "last_new": local_time(s.last_new_item_at, school.zone),
            }
            for s in sources
        ]
        return page("health.html", staff=staff, rows=rows, title="Monitor health", school=school)

    return router


def _row(service: Any, staff: StaffConfig, item: Item, sensitive: bool, now: datetime) -> dict[str, Any] | None:
    view = item_view(service.config, viewer=staff, item=item, ever_safeguarding=sensitive)
    if view.sight is Sight.NONE:
        return None
    school = service.config.school(item.school_id)
    return {
        "id": item.id,
        "category": CATEGORY_LABEL.get(item.category or "", item.category or "untriaged"),
        "safeguarding": sensitive or item.category == "safeguarding",
        "due": countdown(item.reply_by, now) if item.reply_by else None,
        "reply_by": local_time(item.reply_by, school.zone) if item.reply_by else None,
        "received": local_time(item.received_at, school.zone),
        "text": item.text if view.content else None,
        "author": item.author if view.content else None,
        "escalate": item.escalate,
        "held": item.legal_hold,
        "dsl": bool({Role.DSL, Role.DEPUTY_DSL} & set(staff.roles)),
    }
