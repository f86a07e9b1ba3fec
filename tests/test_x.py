"""X connector on recorded real API v2 responses (tweepy's cassettes, decoded)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pytest
import respx
from sqlalchemy import Engine
from sqlmodel import select

from monitors.x import DEFAULT_API
from storage.db import session_scope
from storage.models import Item, Source
from tests.conftest import FIXTURES
from tests.helpers import act as helpers_act
from tests.helpers import poll

X = FIXTURES / "x"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def fixture(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((X / name).read_text())


@pytest.fixture
def config(write_config, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NORTHGATE_X_TOKEN", "x-token")
    return write_config("""
[[accounts]]
id = "x"
platform = "x"
moderators = ["amira", "ben"]
credentials = { access_token = "NORTHGATE_X_TOKEN" }
watch = [{ url = "783214", kind = "mention" }, { url = "search:Tweepy", kind = "mention" }]
""")


@respx.mock
def test_mentions_and_search_with_since_id(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    mentions = fixture("test_client_get_users_mentions.0.json")
    search = fixture("test_client_search_recent_tweets.0.json")
    m = respx.get(f"{DEFAULT_API}/users/783214/mentions").mock(return_value=httpx.Response(200, json=mentions))
    s = respx.get(f"{DEFAULT_API}/tweets/search/recent").mock(return_value=httpx.Response(200, json=search))
    summary = poll(engine, config, now=NOW)
    assert summary.failed == 0 and summary.items_stored == len(mentions["data"]) + len(search["data"])
    assert s.calls[0].request.url.params["query"] == "Tweepy"
    with session_scope(engine) as session:
        cursors = {src.location: src.cursor for src in session.scalars(select(Source))}
        abusive = [i for i in session.scalars(select(Item)) if "ENTIRE feed" in i.text]
    assert cursors["783214"] == mentions["meta"]["newest_id"]
    assert abusive and abusive[0].url and "/status/" in abusive[0].url
    poll(engine, config, now=NOW, all_sources=True)
    assert any(c.request.url.params.get("pagination_token") == mentions["meta"]["next_token"] for c in m.calls)
    assert m.calls[-1].request.url.params["since_id"] == mentions["meta"]["newest_id"]


@respx.mock
def test_rate_limit_uses_the_reset_header(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    reset = str(int(time.time()) + 900)
    respx.get(f"{DEFAULT_API}/users/783214/mentions").mock(
        return_value=httpx.Response(429, headers={"x-rate-limit-reset": reset})
    )
    respx.get(f"{DEFAULT_API}/tweets/search/recent").mock(return_value=httpx.Response(200, json={"data": []}))
    poll(engine, config, now=NOW)
    with session_scope(engine) as session:
        source = next(src for src in session.scalars(select(Source)) if src.location == "783214")
        assert source.last_error_kind == "rate_limited"
        assert source.next_check_at is not None and (source.next_check_at - NOW).total_seconds() >= 600


@respx.mock
def test_reply_and_hide(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    respx.get(f"{DEFAULT_API}/users/783214/mentions").mock(
        return_value=httpx.Response(200, json=fixture("test_client_get_users_mentions.0.json"))
    )
    respx.get(f"{DEFAULT_API}/tweets/search/recent").mock(return_value=httpx.Response(200, json={"data": []}))
    poll(engine, config, now=NOW)
    with session_scope(engine) as session:
        item = session.scalars(select(Item)).first()
        assert item is not None
        item_id, tweet = item.id or 0, item.external_id
    hide = respx.put(f"{DEFAULT_API}/tweets/{tweet}/hidden").mock(
        side_effect=[
            httpx.Response(200, json=fixture("test_client_hide_and_unhide_reply.0.json")),
            httpx.Response(403, json={}),
        ]
    )
    reply = respx.post(f"{DEFAULT_API}/tweets").mock(return_value=httpx.Response(201, json={"data": {"id": "1"}}))

    def act(action: str, argument: str | None = None):  # type: ignore[no-untyped-def]
        return helpers_act(engine, config, action, item_id, argument)

    assert act("hide").message == "Reply hidden on X."
    assert json.loads(hide.calls[0].request.content) == {"hidden": True}
    assert act("unhide").message == "X only lets us hide replies in the school's own conversations"
    assert act("reply", "We have messaged you").ok
    assert json.loads(reply.calls[0].request.content)["reply"]["in_reply_to_tweet_id"] == tweet
