"""The web view in real headless Chromium: the sign-in link sent by DM (through the mock Slack
Web API), the session cookie, role and school scoping (a non-DSL never sees a safeguarding
text), the report page, and phone-sized screenshots (kept in $HM_ARTIFACTS when set)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import chat
from bot.outbox import deliver_pending
from bot.slack import SlackSurface, web_client
from hallmonitor.app import create_app
from hallmonitor.service import Service
from handlers.weblink import TokenError, sign, verify
from storage.db import open_database
from tests.mock_slack import MockSlack
from tests.report_seed import TEXTS, seed, write_config
from tests.webdriver import Browser, Driver, _free_port, browser_or_skip

SECRET = "test-secret-" + "x" * 40


class NoClassifier:
    """The web view never triages; this keeps the model from loading."""

    def classify_many(self, texts: list[str]) -> list[Any]:
        raise AssertionError("not used")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    import uvicorn

    monkeypatch.setenv("HALLMONITOR_WEB_SECRET", SECRET)
    port = _free_port()
    config = write_config(tmp_path, port=port)
    config = config.model_copy(update={"chat": config.chat.model_copy(update={"surface": "slack"})})
    engine = open_database(config.service.database_url)
    ids = seed(engine, config)
    with MockSlack() as slack:
        surface = SlackSurface(web_client("xoxb-test", slack.url))
        service = Service(config=config, engine=engine, surface=surface, classifier=NoClassifier())  # type: ignore[arg-type]
        server = uvicorn.Server(
            uvicorn.Config(create_app(service, start_scheduler=False), host="127.0.0.1", port=port, log_level="error")
        )
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        yield {"service": service, "slack": slack, "ids": ids, "base": f"http://127.0.0.1:{port}"}
        server.should_exit = True
    engine.dispose()


@pytest.fixture(scope="module")
def driver() -> Iterator[Driver]:
    d = browser_or_skip()
    yield d
    d.close()


def link_for(site: dict[str, Any], staff_id: str) -> str:
    """Ask for the web view as a person would in Slack, and read the link out of the DM."""
    service, slack = site["service"], site["slack"]
    staff = service.config.staff_by_id(staff_id)
    assert "sent you a sign-in link" in chat.command(service, staff=staff, verb="web", text="", surface="slack")

    async def go() -> None:
        await deliver_pending(service.engine, config=service.config, surfaces=service.surfaces, now=datetime.now(UTC))

    before = len(slack.called("chat.postMessage"))
    asyncio.run(go())
    posts = slack.called("chat.postMessage")[before:]
    assert [p["channel"] for p in posts] == [f"D{staff.slack_user}"]  # a direct message, never a channel
    match = re.search(r"http://127\.0\.0\.1:\d+/web/login\?token=[\w.\-]+", json.dumps(posts[0]["blocks"]))
    assert match, posts
    return match.group(0)


def shot(browser: Browser, tmp_path: Path, name: str) -> Path:
    path = browser.screenshot(tmp_path / f"{name}.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    keep = os.environ.get("HM_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


def sign_in(browser: Browser, link: str) -> None:
    """Open the link (a confirmation page: previews that only fetch it use nothing up), press the button."""
    browser.open(link)
    assert "Sign in as" in browser.text, browser.text
    browser.script("document.getElementById('sign-in').click(); return true;")
    for _ in range(100):
        if browser.url.endswith("/web/"):
            return
        time.sleep(0.05)


def signed_in(driver: Driver, site: dict[str, Any], staff_id: str) -> Browser:
    browser = driver.browser()
    sign_in(browser, link_for(site, staff_id))
    assert browser.url.endswith("/web/"), browser.text
    return browser


def test_the_dsl_signs_in_from_a_link_and_sees_safeguarding_text(driver: Driver, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    link = link_for(site, "dana")
    browser = driver.browser()
    try:
        import httpx

        assert "Sign in as Dana Price" in httpx.get(link).text  # a link preview fetching it uses nothing up
        sign_in(browser, link)
        assert browser.url.endswith("/web/")
        page = browser.text
        assert "signed in as Dana Price" in page and TEXTS["s1"] in page
        assert TEXTS["s2"] in page and TEXTS["a1"] in page
        assert browser.script(
            "return document.documentElement.scrollWidth <= window.innerWidth;"
        )  # phone: no sideways scroll
        shot(browser, tmp_path, "web-queue-dsl")
        browser.open(f"{site['base']}/web/items/{site['ids']['s2']}")
        assert TEXTS["s2"] in browser.text and "Media is never shown" in browser.text
        assert "/media/" not in browser.source
        shot(browser, tmp_path, "web-item-dsl")
    finally:
        browser.close()
    again = driver.browser()
    try:
        again.open(link)  # the same link a second time, in another browser
        assert "Link already used" in again.text and not again.url.endswith("/web/")
        assert "Link already used" in httpx.post(link.split("?")[0], data={"token": link.split("token=")[1]}).text
        again.open(f"{site['base']}/web/")
        assert "Please sign in" in again.text
        again.open(f"{site['base']}/web/login?token=forged.token")
        assert "Link not valid" in again.text
    finally:
        again.close()


def test_a_moderator_never_sees_a_safeguarding_text(driver: Driver, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    browser = signed_in(driver, site, "amira")
    ids = site["ids"]
    try:
        page, source = browser.text, browser.source
        assert TEXTS["a1"] in page  # abuse: in full for the school's moderators
        assert "Safeguarding concern: passed to the DSL" in page
        assert TEXTS["s2"] not in source and "Parent S2" not in source  # not hidden: never sent
        shot(browser, tmp_path, "web-queue-moderator")
        browser.open(f"{site['base']}/web/items/{ids['s1']}")
        assert "Details are for the DSL only" in browser.text and TEXTS["s1"] not in browser.source
        assert "Download the record" not in browser.text
        browser.open(f"{site['base']}/web/items/{ids['s1']}/record.pdf")
        assert "only Northgate Primary's DSL" in browser.text
        browser.open(f"{site['base']}/web/items/{ids['k1']}")  # another school's item
        assert "No such item" in browser.text and "Kirkton" not in browser.source
        browser.open(f"{site['base']}/web/reports?start=2026-03-30&end=2026-04-05")
        page = browser.text
        assert "3 of 7 (43%)" in page and "48.0 h" in page and "121.0 h" in page
        assert not any(t in browser.source for t in TEXTS.values())
        assert browser.script("return document.querySelectorAll('img[alt]').length;") == 2
        shot(browser, tmp_path, "web-report-moderator")
        browser.script("document.querySelector('figure').scrollIntoView(); return true;")
        shot(browser, tmp_path, "web-report-charts")
        browser.open(f"{site['base']}/web/health")
        assert "failing" not in browser.text and "northgate.example/feed" in browser.text
    finally:
        browser.close()


def test_staff_and_other_schools_see_nothing_of_it(driver: Driver, site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sam = signed_in(driver, site, "sam")
    try:
        page = sam.text
        assert not any(t in sam.source for t in TEXTS.values())
        assert "Details are for the school's moderators" in page
        sam.open(f"{site['base']}/web/reports")
        assert "Reports are for leaders" in sam.text
    finally:
        sam.close()
    kim = signed_in(driver, site, "kim")  # Kirkton's moderator and SLT
    try:
        assert "Northgate" not in kim.source and not any(t in kim.source for t in TEXTS.values())
        kim.open(f"{site['base']}/web/health")
        assert "failing" in kim.text and "auth" in kim.text
        shot(kim, tmp_path, "web-health-other-school")
    finally:
        kim.close()


def test_tokens_expire_and_cannot_be_forged_or_swapped() -> None:
    now = datetime(2026, 4, 6, 9, 0, tzinfo=UTC)
    secret = SECRET.encode()
    link = sign("dana", kind="link", now=now, secret=secret)
    assert verify(link, kind="link", now=now + timedelta(minutes=9), secret=secret).staff_id == "dana"
    with pytest.raises(TokenError, match="expired"):
        verify(link, kind="link", now=now + timedelta(minutes=10), secret=secret)
    with pytest.raises(TokenError, match="not valid"):
        verify(link, kind="session", now=now, secret=secret)  # a link is not a session
    with pytest.raises(TokenError, match="not valid"):
        verify(link, kind="link", now=now, secret=b"another-secret" * 3)
    payload, _, mac = link.partition(".")
    forged = payload.replace(payload[3], "A" if payload[3] != "A" else "B", 1) + "." + mac
    with pytest.raises(TokenError):
        verify(forged, kind="link", now=now, secret=secret)


def test_export_and_hold_from_chat(site) -> None:  # type: ignore[no-untyped-def]
    service, slack, ids = site["service"], site["slack"], site["ids"]
    staff = service.config.staff_by_id
    refused = chat.command(service, staff=staff("amira"), verb="export", text=str(ids["s1"]), surface="slack")
    assert "only Northgate Primary's DSL and deputy DSLs" in refused
    assert "as a PDF by direct message" in chat.command(
        service, staff=staff("dana"), verb="export", text=str(ids["s1"]), surface="slack"
    )
    assert "Say which item" in chat.command(service, staff=staff("dana"), verb="export", text="", surface="slack")
    held = chat.command(service, staff=staff("dana"), verb="hold", text=f"{ids['s1']} police request", surface="slack")
    assert "legal hold" in held

    async def go() -> None:
        await deliver_pending(service.engine, config=service.config, surfaces=service.surfaces, now=datetime.now(UTC))

    asyncio.run(go())
    assert [c["users"] for c in slack.called("conversations.open")] == ["UDANA"]
    (upload,) = slack.uploads.values()
    assert upload.startswith(b"%PDF")
    assert slack.called("files.completeUploadExternal")[0]["channel_id"] == "DUDANA"


def test_the_web_view_says_what_to_set_when_it_has_no_secret(site, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import httpx

    monkeypatch.delenv("HALLMONITOR_WEB_SECRET")
    answer = httpx.get(site["base"] + "/web/")
    assert answer.status_code == 503 and "HALLMONITOR_WEB_SECRET" in answer.text
    assert "not set up yet" in chat.command(
        site["service"], staff=site["service"].config.staff_by_id("dana"), verb="web", text="", surface="slack"
    )
    answer = httpx.get(site["base"] + "/web/static/style.css")
    assert answer.headers["content-type"].startswith("text/css")


def test_a_sign_in_link_used_on_one_worker_is_refused_by_another(site) -> None:  # type: ignore[no-untyped-def]
    """Several `hallmonitor run` workers behind one load balancer (or one worker after a restart):
    a link is used up in the database, so no other process lets it open a second session."""
    import httpx
    import uvicorn

    first = site["service"]
    port = _free_port()
    other = Service(config=first.config, engine=first.engine, surface=first.surface, classifier=NoClassifier())  # type: ignore[arg-type]
    server = uvicorn.Server(
        uvicorn.Config(create_app(other, start_scheduler=False), host="127.0.0.1", port=port, log_level="error")
    )
    threading.Thread(target=server.run, daemon=True).start()
    try:
        while not server.started:
            time.sleep(0.05)
        link = link_for(site, "dana")
        token = link.split("token=")[1]
        signed_in = httpx.post(f"{site['base']}/web/login", data={"token": token})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/web/"
        elsewhere = f"http://127.0.0.1:{port}/web/login"
        assert "Link already used" in httpx.get(elsewhere, params={"token": token}).text
        refused = httpx.post(elsewhere, data={"token": token})
        assert (
            refused.status_code == 401 and "Link already used" in refused.text and "set-cookie" not in refused.headers
        )
    finally:
        server.should_exit = True
