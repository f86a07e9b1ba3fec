"""Instagram connector on the recorded real Graph API responses, and its webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from sqlalchemy import Engine
from sqlmodel import select

from monitors.graph import DEFAULT_GRAPH
from storage.db import session_scope
from storage.models import Item
from tests.conftest import FIXTURES
from tests.helpers import act as helpers_act
from tests.helpers import poll, post_and_drain

IG = FIXTURES / "instagram"
USER = "17841406338772941"
MEDIA = "17846368219941692"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def fixture(path: str) -> dict:  # type: ignore[type-arg]
    return json.loads((IG / path).read_text())


@pytest.fixture
def config(write_config, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NORTHGATE_IG_TOKEN", "ig-token")
    monkeypatch.setenv("META_APP_SECRET", "secret")
    return write_config(f"""
[[accounts]]
id = "ig"
platform = "instagram"
moderators = ["amira", "ben"]
credentials = {{ access_token = "NORTHGATE_IG_TOKEN" }}
watch = [{{ url = "{USER}", kind = "comment" }}, {{ url = "{USER}/tags", kind = "mention" }}]
""")


@respx.mock
def test_polls_comments_pages_and_tagged_media(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    respx.get(f"{DEFAULT_GRAPH}/{USER}/media").mock(
        return_value=httpx.Response(
            200,
            json={
                "data": [
                    {
                        "id": MEDIA,
                        "permalink": "https://www.instagram.com/p/CMeo7rcJvTi/",
                        "timestamp": "2020-06-01T09:00:00+0000",
                    }
                ]
            },
        )
    )

    def comments(request: httpx.Request) -> httpx.Response:
        if "after" in parse_qs(request.url.query.decode()):
            return httpx.Response(200, json=fixture("apidata/medias/comments_p2.json"))
        return httpx.Response(200, json=fixture("apidata/medias/comments_p1.json"))

    respx.get(url__regex=rf".*/{MEDIA}/comments.*").mock(side_effect=comments)
    respx.get(f"{DEFAULT_GRAPH}/{USER}/tags").mock(
        return_value=httpx.Response(200, json=fixture("apidata/users/tagged_medias.json"))
    )
    summary = poll(engine, config, now=NOW)
    assert summary.failed == 0, summary.errors
    with session_scope(engine) as s:
        items = {i.external_id: i for i in s.scalars(select(Item))}
    comments_seen = [i for i in items.values() if i.kind == "comment"]
    mentions = [i for i in items.values() if i.kind == "mention"]
    assert len(comments_seen) == 4 and all(i.url == "https://www.instagram.com/p/CMeo7rcJvTi/" for i in comments_seen)
    assert mentions and mentions[0].external_id.startswith("tag:")


def _stored_comment(engine: Engine, config) -> int:  # type: ignore[no-untyped-def]
    from handlers.pipeline import ingest
    from monitors.instagram import comment_to_item
    from storage.queries import sync_config

    with session_scope(engine) as s:
        sync_config(s, config=config)
        item = comment_to_item(fixture("models/ig_comment.json"))
        assert item is not None
        ingest(s, config=config, account=config.account("ig"), items=[item], now=NOW)
        return s.scalars(select(Item)).one().id or 0


@respx.mock
def test_actions_and_what_instagram_cannot_do(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    item_id = _stored_comment(engine, config)
    cid = "17892250648466172"
    hide = respx.post(f"{DEFAULT_GRAPH}/{cid}").mock(return_value=httpx.Response(200, json={"success": True}))
    reply = respx.post(f"{DEFAULT_GRAPH}/{cid}/replies").mock(return_value=httpx.Response(200, json={"id": "r"}))

    def act(action: str, argument: str | None = None):  # type: ignore[no-untyped-def]
        return helpers_act(engine, config, action, item_id, argument, actor="ben")

    assert act("hide").message == "Hidden on Instagram."
    assert parse_qs(hide.calls[0].request.content.decode())["hide"] == ["true"]
    assert act("reply", "Thank you!").ok and reply.called
    blocked = act("block")
    assert not blocked.ok and "instagram does not let us block" in blocked.message


@respx.mock
def test_comment_and_mention_webhooks(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    respx.get(f"{DEFAULT_GRAPH}/{USER}").mock(
        return_value=httpx.Response(200, json=fixture("apidata/users/mentioned_comment.json"))
    )
    body = json.dumps(
        {
            "object": "instagram",
            "entry": [
                {
                    "id": USER,
                    "time": 1763718000,
                    "changes": [
                        {
                            "field": "comments",
                            "value": {
                                "id": "1790001",
                                "text": "Your head teacher is a joke and a disgrace",
                                "from": {"id": "55", "username": "angryparent"},
                                "media": {"id": MEDIA},
                            },
                        },
                        {"field": "mentions", "value": {"media_id": MEDIA, "comment_id": "17967008497439572"}},
                    ],
                }
            ],
        }
    ).encode()
    signature = "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": signature}
    assert post_and_drain(config, engine, "/webhooks/instagram", body, headers).status_code == 200
    with session_scope(engine) as s:
        items = {i.external_id: (i.kind, i.author, i.escalate) for i in s.scalars(select(Item))}
    assert items["1790001"] == ("comment", "angryparent", "slt")
    assert items["17967008497439572"] == ("mention", "ikroskun", "none")
