"""Signing in to the web view, and who is looking: a signed link from chat opens a confirmation
page; its button (a POST, which link previews never send) uses the link once and sets an 8-hour
HttpOnly session cookie. Every page carries the same security headers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.config import StaffConfig
from core.errors import ConfigError
from handlers.reports.termly import TEMPLATES, environment
from handlers.weblink import TokenError, sign, verify, web_secret
from storage.db import session_scope
from storage.models import SeenInteraction
from storage.queries import first_time, write_audit
from storage.types import utcnow

COOKIE = "hm_session"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self' data:; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",  # the sign-in link carries a token
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class Page:
    """Render templates with the security headers every page carries."""

    def __init__(self) -> None:
        self.env = environment(Path(__file__).parent / "templates")
        self.env.filters["local"] = _local_text

    def __call__(self, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def message(self, title: str, text: str, *, status: int, staff: StaffConfig | None = None) -> HTMLResponse:
        return self("message.html", status=status, title=title, text=text, staff=staff)


def local_time(value: datetime | None, zone: Any) -> str:
    return value.astimezone(zone).strftime("%a %d %b %H:%M") if value else "never"


def _local_text(value: str | None, zone: Any) -> str:
    """An ISO time from a record, in the school's zone, for people."""
    return local_time(datetime.fromisoformat(value), zone) if value else ""


Viewer = Callable[[Request], StaffConfig | HTMLResponse]


def add_session_routes(router: APIRouter, service: Any, page: Page) -> Viewer:
    """Add /login, /logout and the stylesheet to `router`; return the function that tells who is looking
    (a configured member of staff, or the page to show instead)."""

    def viewer(request: Request) -> StaffConfig | HTMLResponse:
        try:
            secret = web_secret()
        except ConfigError as exc:
            return page.message("Web view not configured", exc.problems[0], status=503)
        try:
            token = verify(request.cookies.get(COOKIE, ""), kind="session", now=utcnow(), secret=secret)
        except TokenError:
            return page.message(
                "Please sign in",
                "Ask Hall Monitor for a link: type /hallmonitor web in Slack, "
                'or "web" to the bot in Teams. The link arrives as a direct message.',
                status=401,
            )
        staff = service.config.staff_by_id(token.staff_id)
        if staff is None:
            return page.message("Not on the staff list", "You are no longer on this school's staff list.", status=403)
        return staff

    @router.get("/static/style.css")
    def style() -> Response:
        return Response((TEMPLATES / "style.css").read_text(), media_type="text/css", headers=HEADERS)

    def check_link(token: str) -> tuple[StaffConfig, Any, bytes] | HTMLResponse:
        try:
            secret = web_secret()
            link = verify(token, kind="link", now=utcnow(), secret=secret)
        except ConfigError as exc:
            return page.message("Web view not configured", exc.problems[0], status=503)
        except TokenError as exc:
            return page.message("Link not valid", str(exc), status=401)
        staff = service.config.staff_by_id(link.staff_id)
        if staff is None:
            return used_up()
        with session_scope(service.engine) as session:
            if session.get(SeenInteraction, _used_key(link.nonce)) is not None:
                return used_up()
        return staff, link, secret

    def used_up() -> HTMLResponse:
        return page.message(
            "Link already used",
            "Each link signs you in once. Ask Hall Monitor for a new one: /hallmonitor web",
            status=401,
        )

    @router.get("/login")
    def confirm(token: str = "") -> Response:
        """A page with a button: link previews (which only GET) never use up the sign-in."""
        checked = check_link(token)
        if isinstance(checked, HTMLResponse):
            return checked
        return page("login.html", title="Sign in", staff=None, person=checked[0].name, token=token)

    @router.post("/login")
    async def login(request: Request) -> Response:
        token = parse_qs((await request.body()).decode(errors="replace")).get("token", [""])[0]
        checked = check_link(token)
        if isinstance(checked, HTMLResponse):
            return checked
        staff, link, secret = checked
        with session_scope(service.engine) as session:
            # used up in the database, not in this process's memory: another worker behind the same
            # load balancer, or this one after a restart, refuses it too (the key is kept 2 days)
            if not first_time(session, key=_used_key(link.nonce), now=utcnow()):
                return used_up()
            write_audit(
                session,
                actor=staff.id,
                action="web_login",
                outcome="ok",
                school_id=service.config.school_of(staff).id,
                surface="web",
            )
        response = RedirectResponse("/web/", status_code=303, headers=HEADERS)
        secure = (service.config.service.public_url or "").startswith("https://")
        response.set_cookie(
            COOKIE,
            sign(staff.id, kind="session", now=utcnow(), secret=secret),
            max_age=8 * 3600,
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/web",
        )
        return response

    @router.get("/logout")
    def logout() -> Response:
        response = page.message("Signed out", "You are signed out of the Hall Monitor web view.", status=200)
        response.delete_cookie(COOKIE, path="/web")
        return response

    return viewer


def _used_key(nonce: str) -> str:
    return f"web-link:{nonce}"
