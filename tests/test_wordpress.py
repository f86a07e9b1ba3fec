"""WordPress REST connector. No recorded WordPress payloads are in ../shared/fixtures, so these
responses follow the documented wp/v2 comment schema (context=edit)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import httpx
import pytest
import respx
from sqlalchemy import Engine
from sqlmodel import select

from storage.db import session_scope
from storage.models import Item, Source
from tests.helpers import act as helpers_act
from tests.helpers import poll

SITE = "https://northgate.example"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def comment(cid: int, text: str, status: str, when: str) -> dict:  # type: ignore[type-arg]
    return {
        "id": cid,
        "post": 812,
        "parent": 0,
        "author": 0,
        "author_name": "A Parent",
        "author_email": "p@example.com",
        "date": when,
        "date_gmt": when,
        "content": {"rendered": f"<p>{text}</p>\n", "raw": text},
        "link": f"{SITE}/news/fair/#comment-{cid}",
        "status": status,
        "type": "comment",
    }


@pytest.fixture
def config(write_config, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WP_USER", "moderator")
    monkeypatch.setenv("WP_APP_PASSWORD", "abcd efgh ijkl")
    return write_config(f"""
[[accounts]]
id = "site"
platform = "wordpress"
moderators = ["amira", "ben"]
credentials = {{ username = "WP_USER", app_password = "WP_APP_PASSWORD" }}
watch = [{{ url = "{SITE}", kind = "comment" }}]
""")


@respx.mock
def test_polls_approved_and_held_comments(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    def comments(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"moderator:abcd efgh ijkl").decode()
        if request.url.params["status"] == "hold":
            return httpx.Response(
                200, json=[comment(9, "Buy followers cheap, link in bio", "hold", "2026-11-20T09:00:00")]
            )
        return httpx.Response(
            200, json=[comment(7, "What time does the fair start?", "approved", "2026-11-20T10:00:00")]
        )

    route = respx.get(f"{SITE}/wp-json/wp/v2/comments").mock(side_effect=comments)
    assert poll(engine, config, now=NOW).items_stored == 2
    with session_scope(engine) as s:
        items = {i.external_id: (i.category, i.text) for i in s.scalars(select(Item))}
        assert s.scalars(select(Source)).one().cursor == "2026-11-20T10:00:00"
    assert items["7"] == ("question", "What time does the fair start?")
    assert items["9"][0] == "spam"
    poll(engine, config, now=NOW, all_sources=True)
    assert route.calls[-1].request.url.params["after"] == "2026-11-20T10:00:00"


@respx.mock
def test_reply_hold_spam_and_trash(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    def listing(request: httpx.Request) -> httpx.Response:
        if request.url.params["status"] == "approve":
            return httpx.Response(
                200, json=[comment(7, "The head is a clueless idiot", "approved", "2026-11-20T10:00:00")]
            )
        return httpx.Response(200, json=[])

    respx.get(f"{SITE}/wp-json/wp/v2/comments").mock(side_effect=listing)
    poll(engine, config, now=NOW)
    with session_scope(engine) as s:
        item_id = s.scalars(select(Item)).one().id or 0
    replies = respx.post(f"{SITE}/wp-json/wp/v2/comments").mock(return_value=httpx.Response(201, json={"id": 10}))
    status = respx.post(f"{SITE}/wp-json/wp/v2/comments/7").mock(return_value=httpx.Response(200, json={"id": 7}))
    trash = respx.delete(f"{SITE}/wp-json/wp/v2/comments/7").mock(return_value=httpx.Response(200, json={"id": 7}))

    def act(action: str, argument: str | None = None) -> str:
        return helpers_act(engine, config, action, item_id, argument, actor="ben").message

    assert act("reply", "Please contact the office.") == "Replied on the website."
    assert json.loads(replies.calls[0].request.content) == {
        "post": 812,
        "parent": 7,
        "content": "Please contact the office.",
    }
    assert act("hide") == "Held for moderation on the website."
    assert act("report") == "Marked as spam on the website."
    assert [json.loads(c.request.content)["status"] for c in status.calls] == ["hold", "spam"]
    assert act("delete") == "Moved to the website's trash." and trash.called
