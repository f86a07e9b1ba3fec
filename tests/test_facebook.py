"""Facebook Page connector on the recorded real Graph API responses (respx at the network boundary)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from sqlalchemy import Engine
from sqlmodel import col, select

from handlers.pipeline import ingest
from monitors.facebook import comment_to_item
from monitors.graph import DEFAULT_GRAPH
from storage.db import session_scope
from storage.models import Audit, Evidence, Item, Outbox, Source
from storage.queries import sync_config
from tests.conftest import FIXTURES
from tests.helpers import act as helpers_act
from tests.helpers import count, poll

FB = FIXTURES / "facebook"
PAGE = "19292868552"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def fixture(path: str) -> dict:  # type: ignore[type-arg]
    return json.loads((FB / path).read_text())


@pytest.fixture
def config(write_config, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NORTHGATE_FB_TOKEN", "page-token")
    block = f"""
[[accounts]]
id = "fb"
platform = "facebook"
name = "Facebook page"
moderators = ["amira", "ben"]
credentials = {{ page_token = "NORTHGATE_FB_TOKEN" }}
watch = [{{ url = "{PAGE}", kind = "comment" }}]
"""
    return write_config(block)


def mock_graph() -> None:
    posts = fixture("apidata/posts/feed_fields_p1.json")
    respx.get(f"{DEFAULT_GRAPH}/{PAGE}/posts").mock(return_value=httpx.Response(200, json=posts))
    first_post = posts["data"][0]["id"]

    def comments(request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        if "after" in query:
            return httpx.Response(200, json=fixture("apidata/comments/comments_p2.json"))
        if f"/{first_post}/comments" in request.url.path:
            return httpx.Response(200, json=fixture("apidata/comments/comments_p1.json"))
        return httpx.Response(200, json={"data": []})

    respx.get(url__regex=r".*/comments.*").mock(side_effect=comments)


@respx.mock
def test_polls_comments_with_paging_and_a_cursor(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    mock_graph()
    summary = poll(engine, config, now=NOW)
    assert summary.failed == 0 and summary.items_stored == 15  # 10 on page 1 + 5 on page 2
    with session_scope(engine) as s:
        items = list(s.scalars(select(Item)))
        source = s.scalars(select(Source)).one()
    assert all(i.platform == "facebook" and i.url and i.url.startswith("https://www.facebook.com/") for i in items)
    assert any("Instagram back" in i.text for i in items)
    assert source.cursor and source.cursor.startswith("2021-")
    token_sent = respx.calls[0].request.url.params["access_token"]
    assert token_sent == "page-token"  # from the environment, never the config file
    second = poll(engine, config, now=NOW, all_sources=True)
    assert second.items_stored == 0


@respx.mock
@pytest.mark.parametrize(
    ("body", "status", "kind", "words"),
    [
        (json.loads((FB / "apidata/error_data.json").read_text()), 400, "forbidden", "permission is missing"),
        (
            {"error": {"message": "Error validating access token: Session has expired", "code": 190}},
            400,
            "auth",
            "expired",
        ),
        (
            {"error": {"message": "(#4) Application request limit reached", "code": 4}},
            400,
            "rate_limited",
            "rate limited",
        ),
    ],
)
def test_graph_errors_are_sorted_and_alert_the_moderators(
    config,
    engine: Engine,
    body,
    status,
    kind,  # type: ignore[no-untyped-def]
    words,
) -> None:
    respx.get(f"{DEFAULT_GRAPH}/{PAGE}/posts").mock(return_value=httpx.Response(status, json=body))
    summary = poll(engine, config, now=NOW)
    assert summary.failed == 1 and words in summary.errors[0]
    with session_scope(engine) as s:
        assert s.scalars(select(Source)).one().last_error_kind == kind
    if kind in ("forbidden", "auth"):  # a person must fix these: alert at once
        assert count(engine, Outbox, col(Outbox.kind) == "health") == 1


def test_a_missing_token_is_named(config, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("NORTHGATE_FB_TOKEN")
    summary = poll(engine, config, now=NOW)
    assert summary.failed == 1 and "NORTHGATE_FB_TOKEN is not set" in summary.errors[0]


def _stored_comment(engine: Engine, config) -> int:  # type: ignore[no-untyped-def]
    comment = fixture("models/comment.json")
    with session_scope(engine) as s:
        sync_config(s, config=config)
        item = comment_to_item(comment)
        assert item is not None
        ingest(s, config=config, account=config.account("fb"), items=[item], now=NOW)
        return s.scalars(select(Item)).one().id or 0


def _act(engine: Engine, config, action: str, item_id: int, argument: str | None = None):  # type: ignore[no-untyped-def]
    return helpers_act(engine, config, action, item_id, argument)


@respx.mock
def test_hide_unhide_block_and_reply_call_the_graph_api(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    item_id = _stored_comment(engine, config)
    cid = "2954961744718970_2966313500250461"
    hide = respx.post(f"{DEFAULT_GRAPH}/{cid}").mock(return_value=httpx.Response(200, json={"success": True}))
    block = respx.post(f"{DEFAULT_GRAPH}/{PAGE}/blocked").mock(return_value=httpx.Response(200, json={"x": True}))
    reply = respx.post(f"{DEFAULT_GRAPH}/{cid}/comments").mock(return_value=httpx.Response(200, json={"id": "r1"}))
    assert _act(engine, config, "hide", item_id).message == "Hidden on Facebook."
    assert parse_qs(hide.calls[0].request.content.decode())["is_hidden"] == ["true"]
    assert _act(engine, config, "unhide", item_id).ok
    assert _act(engine, config, "block", item_id).ok
    assert parse_qs(block.calls[0].request.content.decode())["user"] == ["2711636948859886"]
    assert not _act(engine, config, "reply", item_id, "").ok  # nothing to say
    assert _act(engine, config, "reply", item_id, "Thanks, see you Friday").ok
    assert parse_qs(reply.calls[0].request.content.decode())["message"] == ["Thanks, see you Friday"]
    with session_scope(engine) as s:
        evidence = list(s.scalars(select(Evidence)))
        item = s.get(Item, item_id)
        assert item is not None and item.status == "replied" and item.replied_at is not None
    assert [e.reason for e in evidence] == ["hide", "block"]  # snapshots before the destructive ones
    assert evidence[0].snapshot["text"] == "My Nice Car "


@respx.mock
def test_delete_tells_the_audience_first_and_errors_become_sentences(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    item_id = _stored_comment(engine, config)
    cid = "2954961744718970_2966313500250461"
    order: list[str] = []
    respx.post(f"{DEFAULT_GRAPH}/{cid}/comments").mock(
        side_effect=lambda r: order.append("reply") or httpx.Response(200, json={"id": "r1"})
    )
    respx.delete(f"{DEFAULT_GRAPH}/{cid}").mock(
        side_effect=[
            httpx.Response(
                400,
                json={
                    "error": {
                        "message": "Unsupported delete request. Object does not exist",
                        "code": 100,
                        "error_subcode": 33,
                    }
                },
            ),
            httpx.Response(200, json={"success": True}),
        ]
    )
    failed = _act(engine, config, "delete", item_id, json.dumps({"reason": "it named a child", "tell_audience": False}))
    assert not failed.ok and failed.message == "Facebook says it no longer exists"
    done = _act(engine, config, "delete", item_id, json.dumps({"reason": "it named a child", "tell_audience": True}))
    assert done.ok and order == ["reply"]
    with session_scope(engine) as s:
        audit = [(a.action, a.outcome) for a in s.scalars(select(Audit).order_by(col(Audit.id)))]
        evidence = s.scalars(select(Evidence)).all()
        assert s.get(Item, item_id).status == "deleted"  # type: ignore[union-attr]
    assert audit == [("delete", "failed"), ("delete", "ok")]
    assert len(evidence) == 2  # kept even for the failed attempt


def test_webhook_comment_payloads_convert_like_polled_ones() -> None:
    comment = fixture("models/comment.json")
    item = comment_to_item(comment)
    assert item is not None and item.author == "Kun Liu" and item.media_urls and item.created_at
    assert comment_to_item({"message": "no id at all"}) is None
    assert Path(FB / "apidata/comments/comments_p1.json").exists()


def test_an_unexpected_connector_failure_is_still_audited(
    config,
    engine: Engine,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from monitors.facebook import FacebookSource

    item_id = _stored_comment(engine, config)

    def broken(self, action, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyError("surprise")

    monkeypatch.setattr(FacebookSource, "act", broken)
    result = _act(engine, config, "hide", item_id)
    assert not result.ok and "did not answer as expected" in result.message
    odd = _act(engine, config, "delete", item_id, "{not json")  # a reason that merely starts with a brace
    assert not odd.ok
    with session_scope(engine) as s:
        audit = [(a.action, a.outcome) for a in s.scalars(select(Audit).order_by(col(Audit.id)))]
        assert len(s.scalars(select(Evidence)).all()) == 2  # evidence kept for both attempts
    assert audit == [("hide", "failed"), ("delete", "failed")]
