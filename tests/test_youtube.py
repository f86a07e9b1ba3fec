"""YouTube connector on the recorded real Data API responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
import respx
from sqlalchemy import Engine
from sqlmodel import select

from monitors.youtube import DEFAULT_API, thread_items
from storage.db import session_scope
from storage.models import Item, Source
from tests.conftest import FIXTURES
from tests.helpers import act as helpers_act
from tests.helpers import poll

YT = FIXTURES / "youtube"
CHANNEL = "UCa-vrCLQHviTOVnEKDOdetQ"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def fixture(path: str) -> dict:  # type: ignore[type-arg]
    return json.loads((YT / path).read_text())


@pytest.fixture
def config(write_config, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NORTHGATE_YT_TOKEN", "ya29.token")
    return write_config(f"""
[[accounts]]
id = "yt"
platform = "youtube"
moderators = ["amira", "ben"]
credentials = {{ access_token = "NORTHGATE_YT_TOKEN" }}
watch = [{{ url = "{CHANNEL}", kind = "comment" }}]
""")


def threads(request: httpx.Request) -> httpx.Response:
    params = request.url.params
    assert request.headers["Authorization"] == "Bearer ya29.token"
    if params["moderationStatus"] == "heldForReview":
        return httpx.Response(200, json={"items": []})
    if params.get("pageToken"):
        return httpx.Response(200, json=fixture("comment_threads/comment_threads_by_video_paged_2.json"))
    page = fixture("comment_threads/comment_threads_by_video_paged_1.json")
    return httpx.Response(200, json=page)


@respx.mock
def test_polls_threads_and_replies_with_paging(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    route = respx.get(f"{DEFAULT_API}/commentThreads").mock(side_effect=threads)
    summary = poll(engine, config, now=NOW)
    assert summary.failed == 0, summary.errors
    p1, p2 = (fixture(f"comment_threads/comment_threads_by_video_paged_{n}.json") for n in (1, 2))
    assert summary.items_seen == len(p1["items"]) + len(p2["items"])  # both pages were read
    # the recorded pages repeat the same threads: the unique key stores each once
    assert summary.items_stored == len({t["id"] for t in p1["items"] + p2["items"]})
    assert any(c.request.url.params.get("pageToken") for c in route.calls)
    with session_scope(engine) as s:
        item = s.scalars(select(Item)).first()
        assert item is not None and item.url and "youtube.com/watch?v=" in item.url
        assert s.scalars(select(Source)).one().cursor


@respx.mock
def test_quota_and_expired_token_errors(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    respx.get(f"{DEFAULT_API}/commentThreads").mock(
        return_value=httpx.Response(
            403, json={"error": {"code": 403, "message": "quota", "errors": [{"reason": "quotaExceeded"}]}}
        )
    )
    assert "quota" in poll(engine, config, now=NOW).errors[0]
    respx.get(f"{DEFAULT_API}/commentThreads").mock(return_value=httpx.Response(401, json={"error": {"code": 401}}))
    assert "expired" in poll(engine, config, now=NOW, all_sources=True).errors[0]


@respx.mock
def test_reply_hold_reject_and_ban(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    from handlers.pipeline import ingest
    from monitors.youtube import thread_items
    from storage.queries import sync_config

    thread = fixture("comment_threads/comment_thread_single.json")["items"][0]
    with session_scope(engine) as s:
        sync_config(s, config=config)
        ingest(s, config=config, account=config.account("yt"), items=[i for i in thread_items(thread) if i], now=NOW)
        item_id = s.scalars(select(Item)).first().id  # type: ignore[union-attr]
    reply = respx.post(f"{DEFAULT_API}/comments").mock(
        return_value=httpx.Response(200, json=fixture("comments/insert_response.json"))
    )
    moderate = respx.post(f"{DEFAULT_API}/comments/setModerationStatus").mock(return_value=httpx.Response(204))

    def act(action: str, argument: str | None = None) -> str:
        return helpers_act(engine, config, action, item_id or 0, argument).message

    assert act("reply", "Thanks for watching!") == "Replied on YouTube."
    assert json.loads(reply.calls[0].request.content)["snippet"]["textOriginal"] == "Thanks for watching!"
    assert act("hide") == "Held for review on YouTube."
    assert act("block") == "Rejected on YouTube and the author is banned."
    params = [dict(c.request.url.params) for c in moderate.calls]
    assert params[0]["moderationStatus"] == "heldForReview"
    assert params[1] == {"id": params[1]["id"], "moderationStatus": "rejected", "banAuthor": "true"}


def test_the_channels_own_reply_is_marked_as_the_schools_own() -> None:
    thread = fixture("comment_threads/comment_threads_by_channel.json")["items"][0]
    viewer = thread_items(thread)[0]
    assert viewer is not None and not viewer.own and not viewer.by_school
    top = thread["snippet"]["topLevelComment"]
    answer = {**top, "snippet": {**top["snippet"], "authorChannelId": {"value": top["snippet"]["channelId"]}}}
    own = thread_items({**thread, "snippet": {**thread["snippet"], "topLevelComment": answer}})[0]
    assert own is not None and own.own and own.by_school
