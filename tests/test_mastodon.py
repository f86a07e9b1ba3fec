"""Mastodon connector on recorded real responses (vcrpy cassettes from Mastodon.py's test suite)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
import yaml
from sqlalchemy import Engine
from sqlmodel import select

from storage.db import session_scope
from storage.models import Evidence, Item, Source
from tests.conftest import FIXTURES
from tests.helpers import act as helpers_act
from tests.helpers import poll

M = FIXTURES / "mastodon"
BASE = "https://mastodon.example"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def cassette(name: str, method: str, path: str) -> Any:
    """The recorded response body for the first request matching method and path."""
    for interaction in yaml.safe_load((M / name).read_text())["interactions"]:
        request = interaction["request"]
        if request["method"] == method and path in request["uri"]:
            return json.loads(interaction["response"]["body"]["string"])
    raise LookupError(path)


@pytest.fixture
def config(write_config, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NORTHGATE_MASTODON_TOKEN", "masto-token")
    return write_config(f"""
[[accounts]]
id = "masto"
platform = "mastodon"
moderators = ["amira", "ben"]
credentials = {{ access_token = "NORTHGATE_MASTODON_TOKEN" }}
watch = [{{ url = "{BASE}", kind = "mention" }}, {{ url = "{BASE}/tags/hoot", kind = "mention" }}]
""")


@respx.mock
def test_mentions_and_hashtag_with_since_id(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    mentions = cassette("test_notifications_mentions_only.yaml", "GET", "/api/v1/notifications?types")
    tagged = cassette("test_hashtag_tl.yaml", "GET", "/api/v1/timelines/tag/hoot")
    notes = respx.get(f"{BASE}/api/v1/notifications").mock(return_value=httpx.Response(200, json=mentions))
    respx.get(f"{BASE}/api/v1/timelines/tag/hoot").mock(return_value=httpx.Response(200, json=tagged))
    summary = poll(engine, config, now=NOW)
    assert summary.failed == 0, summary.errors
    assert summary.items_stored == len(mentions) + len(tagged)
    assert notes.calls[0].request.headers["Authorization"] == "Bearer masto-token"
    assert notes.calls[0].request.url.params["types[]"] == "mention"
    with session_scope(engine) as s:
        cursors = {src.location: src.cursor for src in s.scalars(select(Source))}
        item = s.scalars(select(Item)).first()
    assert cursors[BASE] == mentions[0]["id"]
    assert item is not None and "<" not in item.text and item.author
    poll(engine, config, now=NOW, all_sources=True)
    assert notes.calls[-1].request.url.params["min_id"] == mentions[0]["id"]  # pages forward from the cursor


@respx.mock
def test_reply_block_mute_and_report(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    mentions = cassette("test_notifications_mentions_only.yaml", "GET", "/api/v1/notifications?types")
    respx.get(f"{BASE}/api/v1/notifications").mock(return_value=httpx.Response(200, json=mentions))
    respx.get(f"{BASE}/api/v1/timelines/tag/hoot").mock(return_value=httpx.Response(200, json=[]))
    poll(engine, config, now=NOW)
    author = mentions[0]["status"]["account"]["id"]
    reply = respx.post(f"{BASE}/api/v1/statuses").mock(
        return_value=httpx.Response(200, json=cassette("test_status_reply.yaml", "POST", "/api/v1/statuses"))
    )
    block = respx.post(f"{BASE}/api/v1/accounts/{author}/block").mock(
        return_value=httpx.Response(200, json=cassette("test_account_block_unblock.yaml", "POST", "/block"))
    )
    mute = respx.post(f"{BASE}/api/v1/accounts/{author}/mute").mock(
        return_value=httpx.Response(200, json=cassette("test_account_mute_unmute.yaml", "POST", "/mute"))
    )
    report = respx.post(f"{BASE}/api/v1/reports").mock(
        return_value=httpx.Response(200, json=cassette("test_report.yaml", "POST", "/api/v1/reports"))
    )
    with session_scope(engine) as s:
        item_id = s.scalars(select(Item)).first().id  # type: ignore[union-attr]

    def act(action: str, argument: str | None = None) -> str:
        return helpers_act(engine, config, action, item_id or 0, argument).message

    assert act("reply", "Thanks!") == "Replied on Mastodon."
    assert reply.calls[0].request.content.decode().count("in_reply_to_id") == 1
    assert act("block") == "Author blocked on Mastodon." and block.called
    assert act("mute") == "Author muted on Mastodon." and mute.called
    assert act("report", "abusive") == "Reported to the Mastodon server's moderators." and report.called
    with session_scope(engine) as s:
        assert [e.reason for e in s.scalars(select(Evidence))] == ["block", "report"]


@respx.mock
def test_a_burst_larger_than_a_page_is_read_in_full(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    template = cassette("test_notifications_mentions_only.yaml", "GET", "/api/v1/notifications?types")[0]

    def note(i: int) -> dict:  # type: ignore[type-arg]
        return {**template, "id": str(1000 + i), "status": {**template["status"], "id": str(5000 + i)}}

    def notifications(request: httpx.Request) -> httpx.Response:
        min_id = request.url.params.get("min_id")
        if min_id is None:
            return httpx.Response(200, json=[note(0)])  # first poll: the newest page only
        start = int(min_id) - 1000 + 1
        return httpx.Response(200, json=[note(i) for i in range(start, min(start + 40, 61))])

    route = respx.get(f"{BASE}/api/v1/notifications").mock(side_effect=notifications)
    respx.get(f"{BASE}/api/v1/timelines/tag/hoot").mock(return_value=httpx.Response(200, json=[]))
    poll(engine, config, now=NOW)
    burst = poll(engine, config, now=NOW, all_sources=True)  # 60 new mentions since the cursor
    assert burst.items_stored == 60
    assert [c.request.url.params.get("min_id") for c in route.calls[1:]] == ["1000", "1040"]
