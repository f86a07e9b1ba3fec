"""Slack end to end: signed requests to the ASGI app; the Web API answered by a
local mock server on loopback. Asserts what was posted, updated and audited."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from bot.outbox import deliver_pending
from core.config import Config
from hallmonitor.app import create_app
from hallmonitor.service import Service
from hallmonitor.surfaces import Options, SlackKit
from storage.db import session_scope
from storage.models import Audit, Delivery, Item
from storage.types import utcnow
from tests.conftest import BASE_CONFIG, SHARED, account_block
from tests.mock_slack import MockSlack

SECRET = "test-signing-secret"
FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>
<item><guid>q</guid><description>When is the nativity?</description></item>
<item><guid>a</guid><description>Mr Smith is a useless idiot</description></item>
<item><guid>s</guid><description>A man keeps asking my daughter to send him photos</description>
<enclosure url="https://cdn.example/p.jpg" type="image/jpeg" length="1"/></item>
</channel></rss>"""


@pytest.fixture
def mock() -> Iterator[MockSlack]:
    with MockSlack() as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mock: MockSlack) -> Config:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_API_URL", mock.url)
    feed = tmp_path / "feed.xml"
    feed.write_text(FEED)
    text = BASE_CONFIG.format(db=tmp_path / "hm.db").replace('surface = "console"', 'surface = "slack"')
    text = text.replace('nation = "england"', f'nation = "england"\npolicy = "{SHARED / "policies" / "northgate.txt"}"')
    for name, user in (
        ("Amira Khan", "UAMIRA"),
        ("Ben Okafor", "UBEN"),
        ("Helen Moore", "UHELEN"),
        ("Dana Price", "UDANA"),
        ("Sam Teacher", "USAM"),
    ):
        text = text.replace(f'name = "{name}"', f'name = "{name}"\nslack_user = "{user}"')
    text += account_block("blog", [str(feed)]) + 'channel = { slack = "CMOD" }\n'
    path = tmp_path / "config.toml"
    path.write_text(text)
    from monitors.registry import load_config

    return load_config(path)


def signed(body: str, *, secret: str = SECRET, age: int = 0, content_type: str) -> dict[str, str]:
    ts = str(int(time.time()) - age)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}", "Content-Type": content_type}


class Harness:
    """The real service and ASGI app with the Slack kit from the registry (env: mock Web API)."""

    def __init__(self, config: Config, engine: Engine, mock: MockSlack) -> None:
        kit = SlackKit(Options())
        self.service = Service(config=config, engine=engine, surfaces={"slack": kit.surface(engine)})
        self.app = create_app(self.service, start_scheduler=False, routers=[kit.router(self.service)])
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://hm.test")
        self.mock = mock
        self.n = 0

    def unique(self) -> str:
        self.n += 1
        return f"{time.time():.6f}{self.n}"

    async def post(self, form: dict[str, str], **kw: Any) -> httpx.Response:
        body = urlencode(form)
        headers = signed(body, content_type="application/x-www-form-urlencoded", **kw)
        return await self.http.post("/slack/events", content=body, headers=headers)

    async def command(self, user: str, text: str) -> httpx.Response:
        """A signed /hallmonitor slash command; its response_url is the mock's `response` method."""
        return await self.post(
            {
                "command": "/hallmonitor",
                "text": text,
                "user_id": user,
                "team_id": "T1",
                "channel_id": "CX",
                "response_url": self.mock.url + "response",
                "trigger_id": f"trig-{self.unique()}",
                "api_app_id": "A1",
                "token": "x",
            }
        )

    def click_payload(
        self, user: str, action: str, value: str, *, channel: str = "CMOD", ts: str = "1700.1", team: str = "T1"
    ) -> dict[str, Any]:
        return click_payload(self.unique, user, action, value, channel=channel, ts=ts, team=team)

    async def click(self, user: str, action: str, item_id: int, **kw: Any) -> httpx.Response:
        where = {k: kw.pop(k) for k in ("channel", "ts", "team") if k in kw}
        return await self.post({"payload": json.dumps(self.click_payload(user, action, str(item_id), **where))}, **kw)

    def posted_ts(self, posted: dict[str, Any]) -> str:
        """The ts the mock answered for this chat.postMessage call."""
        calls = [d for m, d in self.mock.calls if m == "chat.postMessage"]
        return f"1700000000.{calls.index(posted) + 1:06d}"

    async def wait_for(self, method: str, n: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.mock.called(method)
            if len(calls) >= n:
                return calls
            await asyncio.sleep(0.02)
        raise AssertionError(f"{method} not called {n} time(s): {self.mock.calls}")


def click_payload(
    unique: Callable[[], str], user: str, action: str, value: str, *, channel: str, ts: str, team: str = "T1"
) -> dict[str, Any]:
    """A block_actions payload as Slack sends it: each click its own trigger_id and action_ts (from `unique`)."""
    return {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": team},
        "api_app_id": "A1",
        "token": "x",
        "trigger_id": f"trig-{unique()}",
        "container": {"type": "message", "channel_id": channel, "message_ts": ts},
        "channel": {"id": channel},
        "actions": [
            {"action_id": f"hm:{action}", "value": value, "type": "button", "block_id": "b", "action_ts": unique()}
        ],
    }


def submission_payload(
    user: str, callback_id: str, metadata: str, values: dict[str, str], *, trigger_id: str, view_id: str = "V1"
) -> dict[str, Any]:
    """A view_submission payload as Slack sends it: a modal's plain-text inputs (block id -> text)."""
    state = {block: {"value": {"type": "plain_text_input", "value": text}} for block, text in values.items()}
    return {
        "type": "view_submission",
        "user": {"id": user},
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "token": "x",
        "trigger_id": trigger_id,
        "view": {
            "id": view_id,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": metadata,
            "state": {"values": state},
        },
    }


def ids(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as s:
        return {i.external_id: i.id or 0 for i in s.scalars(select(Item))}


def test_cards_go_to_the_channel_and_dsl_pings_only_by_dm(config: Config, engine: Engine, mock: MockSlack) -> None:
    async def go() -> None:
        h = Harness(config, engine, mock)
        await h.service.tick(all_sources=True)
        posts = mock.called("chat.postMessage")
        channel_posts = [p for p in posts if p["channel"] == "CMOD"]
        assert len(channel_posts) == 3  # one card per comment
        opened = [c["users"] for c in mock.called("conversations.open")]
        assert "UDANA" in opened and "UHELEN" in opened
        dsl = [p for p in posts if p["channel"] == "DUDANA"]
        assert len(dsl) == 1 and "send him photos" in json.dumps(dsl[0]["blocks"])
        assert not any("send him photos" in json.dumps(p["blocks"]) for p in channel_posts)  # withheld in channel
        assert not any(b["type"] == "image" for p in posts for b in p["blocks"])  # never images
        assert all(
            b.get("style") in (None, "danger")
            for p in channel_posts
            for blk in p["blocks"]
            if blk["type"] == "actions"
            for b in blk["elements"]
        )
        await h.http.aclose()

    asyncio.run(go())


def test_a_moderator_click_acts_updates_the_card_and_is_audited(
    config: Config, engine: Engine, mock: MockSlack
) -> None:
    async def go() -> None:
        h = Harness(config, engine, mock)
        await h.service.tick(all_sources=True)
        item = ids(engine)["q"]
        response = await h.click("UAMIRA", "acknowledge", item)  # bench/slack.py measures how fast
        assert response.status_code == 200
        update = (await h.wait_for("chat.update"))[0]
        posted = next(p for p in mock.called("chat.postMessage") if "nativity" in json.dumps(p["blocks"]))
        assert update["channel"] == "CMOD" and update["ts"] == h.posted_ts(posted)
        assert "acknowledged by amira" in json.dumps(update["blocks"])
        refused = await h.click("USAM", "close", item)
        assert refused.status_code == 200
        ephemeral = (await h.wait_for("chat.postEphemeral"))[0]
        assert ephemeral["user"] == "USAM" and "designated moderators" in ephemeral["text"]
        await h.http.aclose()

    asyncio.run(go())
    with session_scope(engine) as s:
        audit = [(a.actor, a.action, a.outcome, a.surface) for a in s.scalars(select(Audit).order_by(col(Audit.id)))]
    assert audit == [("amira", "acknowledge", "ok", "slack"), ("sam", "close", "refused", "slack")]


def test_bad_or_stale_signatures_are_refused_and_do_nothing(config: Config, engine: Engine, mock: MockSlack) -> None:
    async def go() -> None:
        h = Harness(config, engine, mock)
        await h.service.tick(all_sources=True)
        item = ids(engine)["q"]
        assert (await h.click("UAMIRA", "acknowledge", item, secret="wrong")).status_code == 401
        assert (await h.click("UAMIRA", "acknowledge", item, age=600)).status_code == 401
        await asyncio.sleep(0.2)
        await h.http.aclose()

    asyncio.run(go())
    assert not mock.called("chat.update")
    with session_scope(engine) as s:
        assert s.scalars(select(Audit)).first() is None


def test_slash_command_answers_from_the_schools_policy(config: Config, engine: Engine, mock: MockSlack) -> None:
    async def go() -> None:
        h = Harness(config, engine, mock)
        assert (await h.command("USAM", "ask Should I decline a friend request from a student?")).status_code == 200
        reply = (await h.wait_for("response"))[0]
        assert reply["response_type"] == "ephemeral" and "clause 28" in reply["text"]
        await h.command("UNOBODY", "queue")
        replies = await h.wait_for("response", 2)
        assert "don't know you" in replies[1]["text"]
        await h.http.aclose()

    asyncio.run(go())


def test_a_slack_outage_or_rate_limit_loses_nothing(config: Config, engine: Engine, mock: MockSlack) -> None:
    async def go() -> None:
        h = Harness(config, engine, mock)
        mock.fail_next = 1000
        await h.service.tick(all_sources=True)
        with session_scope(engine) as s:
            pending = s.scalars(select(Delivery).where(col(Delivery.status) == "pending")).all()
            assert len(pending) == 5 and all(p.attempts == 1 for p in pending)
        mock.fail_next = 0
        mock.rate_limit_next = 1  # one 429 with Retry-After: the client waits and retries
        stats = await deliver_pending(
            engine, config=config, surfaces=h.service.surfaces, now=utcnow() + timedelta(minutes=1)
        )
        assert stats.sent == 5 and stats.failed == 0
        await h.http.aclose()

    asyncio.run(go())


def test_without_slack_settings_the_endpoint_says_what_to_set(tmp_path: Path, engine: Engine) -> None:
    from monitors.registry import parse_config
    from tests.helpers import RecordingSurface

    config = parse_config(
        {"schools": [{"id": "s", "name": "S"}], "staff": [{"id": "d", "name": "D", "roles": ["dsl"]}]}
    )
    app = create_app(Service(config=config, engine=engine, surface=RecordingSurface()), start_scheduler=False)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hm.test") as c:
            return await c.post("/slack/events", content="x")

    response = asyncio.run(go())
    assert response.status_code == 503 and "SLACK_SIGNING_SECRET" in response.json()["error"]


def test_recategorise_menu_and_reply_delete_modals(config: Config, engine: Engine, mock: MockSlack) -> None:
    async def go() -> None:
        h = Harness(config, engine, mock)
        await h.service.tick(all_sources=True)
        card = next(p for p in mock.called("chat.postMessage") if p["channel"] == "CMOD")
        menus = [
            e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"] if e["type"] == "static_select"
        ]
        assert menus and {o["text"]["text"] for o in menus[0]["options"]} >= {"praise", "abuse", "safeguarding"}
        item = ids(engine)["q"]
        base = {
            "type": "block_actions",
            "user": {"id": "UAMIRA"},
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "token": "x",
            "trigger_id": "trig-menu",
            "channel": {"id": "CMOD"},
            "container": {"type": "message", "channel_id": "CMOD", "message_ts": "1700.2"},
        }
        select_payload = dict(
            base,
            actions=[
                {
                    "action_id": "hm:recategorise",
                    "type": "static_select",
                    "block_id": "b",
                    "action_ts": "1",
                    "selected_option": {"value": f"{item}:praise"},
                }
            ],
        )
        assert (await h.post({"payload": json.dumps(select_payload)})).status_code == 200
        update = (await h.wait_for("chat.update"))[0]
        assert "Praise on blog" in json.dumps(update["blocks"])
        await h.click("UAMIRA", "reply", item)
        view = (await h.wait_for("views.open"))[0]["view"]
        assert view["callback_id"] == "hm_reply"
        submission = submission_payload(
            "UAMIRA", "hm_reply", view["private_metadata"], {"reply_text": "It's on Thursday at 2pm"}, trigger_id="t2"
        )
        assert (await h.post({"payload": json.dumps(submission)})).status_code == 200
        refusal = (await h.wait_for("chat.postEphemeral"))[0]
        assert "rss does not let us reply" in refusal["text"]  # blog feeds cannot be replied to from here
        await h.http.aclose()

    asyncio.run(go())
    with session_scope(engine) as s:
        audit = [(a.actor, a.action, a.outcome) for a in s.scalars(select(Audit).order_by(col(Audit.id)))]
        item = s.scalars(select(Item).where(col(Item.external_id) == "q")).one()
    assert item.category == "praise"
    assert audit == [("amira", "recategorise", "ok"), ("amira", "reply", "refused")]


def test_policy_answer_offers_choice_buttons_that_answer_the_follow_up(
    config: Config, engine: Engine, mock: MockSlack
) -> None:
    async def go() -> None:
        h = Harness(config, engine, mock)
        await h.command("UBEN", "ask Can I accept a friend request from someone at school?")
        first = (await h.wait_for("response"))[0]
        buttons = [e for b in first["blocks"] if b["type"] == "actions" for e in b["elements"]]
        assert first["text"].startswith("It depends who it is.")
        former = next(b for b in buttons if b["text"]["text"] == "a former pupil")
        click = {
            "type": "block_actions",
            "user": {"id": "UBEN"},
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "token": "x",
            "trigger_id": "trig-choice",
            "response_url": mock.url + "response",
            "container": {"type": "message", "message_ts": "1", "channel_id": "CX", "is_ephemeral": True},
            "actions": [
                {
                    "action_id": former["action_id"],
                    "type": "button",
                    "value": former["value"],
                    "block_id": "hm-ask",
                    "action_ts": "1",
                }
            ],
        }
        await h.post({"payload": json.dumps(click)})
        second = (await h.wait_for("response", 2))[1]
        assert "clause 27" in second["text"] and "ex-students" in second["text"]
        await h.http.aclose()

    asyncio.run(go())


def test_slash_command_web_sends_a_sign_in_link_by_dm(
    config: Config, engine: Engine, mock: MockSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers.weblink import verify

    secret = "s" * 40
    monkeypatch.setenv("HALLMONITOR_WEB_SECRET", secret)

    async def go() -> None:
        h = Harness(config, engine, mock)
        assert (await h.command("USAM", "web")).status_code == 200
        reply = (await h.wait_for("response"))[0]
        assert reply["response_type"] == "ephemeral" and "sent you a sign-in link" in reply["text"]
        await deliver_pending(engine, config=config, surfaces=h.service.surfaces, now=datetime.now(UTC))
        await h.http.aclose()

    asyncio.run(go())
    assert [c["users"] for c in mock.called("conversations.open")] == ["USAM"]
    text = json.dumps(mock.called("chat.postMessage")[-1]["blocks"])
    token = text.split("/web/login?token=", 1)[1].split("\\n", 1)[0].split('"', 1)[0]
    assert verify(token, kind="link", now=datetime.now(UTC), secret=secret.encode()).staff_id == "sam"
