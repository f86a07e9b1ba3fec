"""Teams end to end: activities POSTed to /api/messages with serviceUrl pointing at a local mock
Bot Connector; asserts cards sent, updated (invoke responses) and audited."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from bot.teams import HallMonitorTeamsBot, make_adapter
from core.config import Config
from hallmonitor.app import create_app
from hallmonitor.service import Service
from hallmonitor.surfaces import Options, TeamsKit
from monitors.registry import load_config
from storage.db import session_scope
from storage.models import Audit, Item, TeamsConversation
from tests.conftest import BASE_CONFIG, SHARED, account_block
from tests.mock_connector import MockConnector

CHANNEL = "19:moderators@thread.tacv2"
FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>
<item><guid>q</guid><description>When is the nativity?</description></item>
<item><guid>s</guid><description>A man keeps asking my daughter to send him photos</description></item>
</channel></rss>"""


@pytest.fixture
def connector() -> Iterator[MockConnector]:
    with MockConnector() as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("MICROSOFT_APP_ID", "")  # local testing: authentication off
    feed = tmp_path / "feed.xml"
    feed.write_text(FEED)
    text = BASE_CONFIG.format(db=tmp_path / "hm.db").replace('surface = "console"', 'surface = "teams"')
    text = text.replace('nation = "england"', f'nation = "england"\npolicy = "{SHARED / "policies" / "northgate.txt"}"')
    for name, aad in (
        ("Amira Khan", "aad-amira"),
        ("Ben Okafor", "aad-ben"),
        ("Helen Moore", "aad-helen"),
        ("Dana Price", "aad-dana"),
        ("Sam Teacher", "aad-sam"),
    ):
        text = text.replace(f'name = "{name}"', f'name = "{name}"\nteams_user = "{aad}"')
    text += account_block("blog", [str(feed)]) + f'channel = {{ teams = "{CHANNEL}" }}\n'
    (tmp_path / "config.toml").write_text(text)
    return load_config(tmp_path / "config.toml")


def activity(connector: MockConnector, kind: str, *, who: str, channel: bool, **extra: Any) -> dict[str, Any]:
    conversation = (
        {"id": f"{CHANNEL};messageid=1", "conversationType": "channel"}
        if channel
        else {"id": f"a:personal-{who}", "conversationType": "personal"}
    )
    return {
        "type": kind,
        "id": "incoming-1",
        "channelId": "msteams",
        "serviceUrl": connector.url,
        "from": {"id": f"29:{who}", "aadObjectId": who, "name": who},
        "recipient": {"id": "28:bot", "name": "Hall Monitor"},
        "conversation": conversation,
        "channelData": {"channel": {"id": CHANNEL}} if channel else {},
        **extra,
    }


class Harness:
    """The real service and ASGI app with the Teams kit from the registry (local-testing opt-in)."""

    def __init__(self, config: Config, engine: Engine) -> None:
        kit = TeamsKit(Options(teams_without_auth=True))
        self.service = Service(config=config, engine=engine, surfaces={"teams": kit.surface(engine)})
        self.app = create_app(self.service, start_scheduler=False, routers=[kit.router(self.service)])
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://hm.test")

    async def send(self, body: dict[str, Any], auth: str | None = None) -> httpx.Response:
        headers = {"Authorization": auth} if auth else {}
        return await self.http.post("/api/messages", json=body, headers=headers)


def test_install_then_proactive_cards_and_private_dsl_pings(
    config: Config, engine: Engine, connector: MockConnector
) -> None:
    async def go() -> None:
        h = Harness(config, engine)
        installed = activity(
            connector, "conversationUpdate", who="aad-amira", channel=True, membersAdded=[{"id": "28:bot"}]
        )
        assert (await h.send(installed)).status_code in (200, 201)
        hello = activity(connector, "message", who="aad-dana", channel=False, text="hello")
        assert (await h.send(hello)).status_code in (200, 201)
        await h.service.tick(all_sources=True)
        await h.http.aclose()

    asyncio.run(go())
    with session_scope(engine) as s:
        stored = {(c.kind, c.key) for c in s.scalars(select(TeamsConversation))}
    assert stored == {("channel", CHANNEL), ("personal", "aad-dana")}
    posts = [(unquote(path), body) for method, path, body in connector.sent() if method == "POST"]
    channel_cards = [b for p, b in posts if p == f"/v3/conversations/{CHANNEL}/activities" and b.get("attachments")]
    dsl = [
        b
        for p, b in posts
        if p == "/v3/conversations/a:personal-aad-dana/activities" and "send him photos" in json.dumps(b)
    ]
    assert len(channel_cards) == 2 and len(dsl) == 1
    assert not any("send him photos" in json.dumps(b) for b in channel_cards)  # withheld from the channel
    card = channel_cards[0]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert not any(el.get("type") == "Image" for b in channel_cards for el in b["attachments"][0]["content"]["body"])


def test_card_actions_return_the_updated_card_and_are_audited(
    config: Config, engine: Engine, connector: MockConnector
) -> None:
    async def go() -> list[httpx.Response]:
        h = Harness(config, engine)
        await h.service.tick(all_sources=True)
        with session_scope(engine) as s:
            item = s.scalars(select(Item).where(col(Item.external_id) == "q")).one().id

        def invoke(who: str, verb: str, **data: Any) -> dict[str, Any]:
            return activity(
                connector,
                "invoke",
                who=who,
                channel=True,
                name="adaptiveCard/action",
                value={"action": {"type": "Action.Execute", "verb": verb, "data": {"item": item, **data}}},
            )

        responses = [
            await h.send(invoke("aad-amira", "hm:acknowledge")),
            await h.send(invoke("aad-sam", "hm:close")),
            await h.send(invoke("aad-ben", "hm:recategorise", category="praise")),
        ]
        await h.http.aclose()
        return responses

    ok, refused, recat = asyncio.run(go())
    assert ok.status_code == 200  # not 500: we write the invoke response ourselves
    body = ok.json()
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert "Acknowledged by amira" in json.dumps(body["value"])
    assert refused.status_code == 200 and "designated moderators" in json.dumps(refused.json()["value"])
    assert "Re-categorised as praise by ben" in json.dumps(recat.json()["value"])
    with session_scope(engine) as s:
        audit = [(a.actor, a.action, a.outcome, a.surface) for a in s.scalars(select(Audit).order_by(col(Audit.id)))]
    assert audit == [
        ("amira", "acknowledge", "ok", "teams"),
        ("sam", "close", "refused", "teams"),
        ("ben", "recategorise", "ok", "teams"),
    ]


def test_policy_answers_in_personal_chat_and_on_mention(
    config: Config, engine: Engine, connector: MockConnector
) -> None:
    async def go() -> None:
        h = Harness(config, engine)
        await h.send(
            activity(
                connector,
                "message",
                who="aad-sam",
                channel=False,
                text="Can I accept a friend request from someone at school?",
            )
        )
        mention = activity(
            connector,
            "message",
            who="aad-ben",
            channel=True,
            text="<at>Hall Monitor</at> Should I decline a friend request from a student?",
            entities=[
                {
                    "type": "mention",
                    "text": "<at>Hall Monitor</at>",
                    "mentioned": {"id": "28:bot", "name": "Hall Monitor"},
                }
            ],
        )
        await h.send(mention)
        await h.http.aclose()

    asyncio.run(go())
    replies = [json.dumps(b) for method, path, b in connector.sent() if method == "POST"]
    assert any("It depends who it is" in r and "a former pupil" in r for r in replies)  # choices as buttons
    assert any("clause 28" in r for r in replies)


def test_invalid_tokens_get_401_not_500(
    config: Config, engine: Engine, connector: MockConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MICROSOFT_APP_ID", "00000000-0000-0000-0000-000000000001")
    monkeypatch.setenv("MICROSOFT_APP_PASSWORD", "secret")
    monkeypatch.setenv("MICROSOFT_APP_TENANT_ID", "00000000-0000-0000-0000-0000000000aa")

    async def go() -> list[int]:
        h = Harness(config, engine)
        body = activity(connector, "message", who="aad-sam", channel=False, text="hi")
        codes = [(await h.send(body, auth)).status_code for auth in (None, "Bearer not-a-jwt", "Basic abc")]
        await h.http.aclose()
        return codes

    assert asyncio.run(go()) == [401, 401, 401]
    assert connector.sent() == []


def test_bot_logic_with_botbuilders_test_adapter(config: Config, engine: Engine) -> None:
    """The activity handler alone, through botbuilder's own TestAdapter (no HTTP)."""
    from botbuilder.core.adapters import TestAdapter
    from botbuilder.schema import Activity, ChannelAccount

    from tests.helpers import RecordingSurface

    bot = HallMonitorTeamsBot(Service(config=config, engine=engine, surface=RecordingSurface()))
    adapter = TestAdapter(bot.on_turn)

    async def go() -> list[Any]:
        sent = Activity(
            type="message",
            text="Should I decline a friend request from a student?",
            from_property=ChannelAccount(id="29:ben", aad_object_id="aad-ben"),
        )
        await adapter.send(sent)
        return list(adapter.activity_buffer)

    replies = asyncio.run(go())
    card = replies[0].attachments[0].content
    assert "clause 28" in json.dumps(card) and card["type"] == "AdaptiveCard"


def test_refresh_returns_the_current_card(config: Config, engine: Engine, connector: MockConnector) -> None:
    async def go() -> httpx.Response:
        h = Harness(config, engine)
        await h.service.tick(all_sources=True)
        with session_scope(engine) as s:
            item = s.scalars(select(Item).where(col(Item.external_id) == "q")).one().id
        refresh = activity(
            connector,
            "invoke",
            who="aad-helen",
            channel=True,
            name="adaptiveCard/action",
            value={
                "action": {"type": "Action.Execute", "verb": "hm:refresh", "data": {"item": item}},
                "trigger": "automatic",
            },
        )
        response = await h.send(refresh)
        await h.http.aclose()
        return response

    response = asyncio.run(go())
    card = json.dumps(response.json()["value"])
    assert response.status_code == 200 and "When is the nativity?" in card and "Not done" not in card
    assert '"verb": "hm:refresh"' in card  # the card carries its own refresh
    with session_scope(engine) as s:
        assert s.scalars(select(Audit)).first() is None  # viewing is not an action


def test_an_unreachable_teams_service_is_logged_not_a_crash(
    config: Config, engine: Engine, connector: MockConnector, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> httpx.Response:
        h = Harness(config, engine)
        body = activity(connector, "message", who="aad-sam", channel=False, text="hello")
        body["serviceUrl"] = "http://127.0.0.1:9/"  # nothing listens there
        response = await h.send(body)
        await h.http.aclose()
        return response

    response = asyncio.run(go())
    assert response.status_code == 201  # the turn's error handler logged it; the request completes cleanly
    assert "teams_turn_failed" in caplog.text and "teams_apology_not_sent" in caplog.text


def _invoke(connector: MockConnector, who: str, verb: str, *, channel: bool, **data: Any) -> dict[str, Any]:
    return activity(
        connector,
        "invoke",
        who=who,
        channel=channel,
        name="adaptiveCard/action",
        value={"action": {"type": "Action.Execute", "verb": verb, "data": data}},
    )


def test_refresh_is_each_viewers_own_view_and_forms_use_input_fields(
    config: Config, engine: Engine, connector: MockConnector
) -> None:
    async def go() -> dict[str, Any]:
        h = Harness(config, engine)
        await h.send(activity(connector, "conversationUpdate", who="aad-amira", channel=True, membersAdded=[]))
        await h.send(activity(connector, "message", who="aad-dana", channel=False, text="hello"))
        await h.service.tick(all_sources=True)
        with session_scope(engine) as s:
            ids = {i.external_id: i.id for i in s.scalars(select(Item))}
        out = {}
        for key, who, in_channel in (
            ("dsl_dm", "aad-dana", False),
            ("dsl_channel", "aad-dana", True),
            ("moderator", "aad-amira", True),
            ("stranger", "aad-nobody", False),
        ):
            response = await h.send(_invoke(connector, who, "hm:refresh", channel=in_channel, item=ids["s"]))
            out[key] = json.dumps(response.json()["value"])
        channel_card = next(
            b["attachments"][0]["content"]
            for m, p, b in connector.sent()
            if m == "POST" and CHANNEL in unquote(p) and "nativity" in json.dumps(b)
        )
        out["card"] = channel_card
        reply = await h.send(
            _invoke(connector, "aad-amira", "hm:reply", channel=True, item=ids["q"], reply_text="Thursday at 2pm")
        )
        out["reply"] = json.dumps(reply.json()["value"])
        fallback = activity(
            connector, "message", who="aad-sam", channel=True, value={"verb": "hm:close", "item": ids["q"]}
        )
        before = len(connector.sent())
        await h.send(fallback)  # Action.Submit fallback in a channel by a non-moderator
        out["fallback_posts"] = len(connector.sent()) - before  # type: ignore[assignment]
        await h.http.aclose()
        return out

    out = asyncio.run(go())
    assert "send him photos" in out["dsl_dm"] and "Acknowledge escalation" in out["dsl_dm"]
    assert "send him photos" not in out["dsl_channel"] and "passed to the DSL" in out["dsl_channel"]
    assert "send him photos" not in out["moderator"]
    assert "nothing here for you" in out["stranger"] and "Safeguarding" not in out["stranger"]
    card = out["card"]
    assert card["version"] == "1.5"
    forms = {a["title"]: a for a in card["actions"] if a["type"] == "Action.ShowCard"}
    assert "Re-categorise" in forms
    inputs = [i["type"] for a in forms.values() for i in a["card"]["body"]]
    assert "Input.ChoiceSet" in inputs
    assert all(x["type"] == "Action.Execute" for a in forms.values() for x in a["card"]["actions"])
    assert "rss does not let us reply" in out["reply"]  # the typed text arrived; the platform cannot reply
    assert out["fallback_posts"] == 0  # a refusal is never posted to the channel
    with session_scope(engine) as s:
        audit = [(a.actor, a.action, a.outcome) for a in s.scalars(select(Audit).order_by(col(Audit.id)))]
        reply_row = s.scalars(select(Audit).where(col(Audit.action) == "reply")).one()
    assert ("sam", "close", "refused") in audit and reply_row.detail["text"] == "Thursday at 2pm"


def test_a_person_who_never_opened_teams_is_named_to_the_moderators(
    config: Config, engine: Engine, connector: MockConnector
) -> None:
    from datetime import timedelta

    from bot.outbox import deliver_pending
    from storage.models import Delivery, Outbox
    from storage.types import utcnow

    async def go() -> None:
        h = Harness(config, engine)
        await h.send(activity(connector, "conversationUpdate", who="aad-amira", channel=True, membersAdded=[]))
        await h.service.tick(all_sources=True)  # nobody opened their personal chat: DMs cannot go
        for minutes in (5, 30, 90):
            await deliver_pending(
                engine, config=config, surfaces=h.service.surfaces, now=utcnow() + timedelta(minutes=minutes)
            )
        await h.http.aclose()

    asyncio.run(go())
    with session_scope(engine) as s:
        dead = {d.target for d in s.scalars(select(Delivery).where(col(Delivery.status) == "dead"))}
        alerts = [o.payload["text"] for o in s.scalars(select(Outbox).where(col(Outbox.kind) == "health"))]
    assert dead == {"person:dana"}  # the DSL's safeguarding ping (no SLT escalation in this feed)
    assert len(alerts) == 1 and "Dana Price has not opened Hall Monitor in Teams" in alerts[0]
    posts = [b for m, p, b in connector.sent() if m == "POST" and CHANNEL in unquote(p)]
    assert any("Dana Price has not opened Hall Monitor in Teams" in json.dumps(b) for b in posts)


def test_teams_without_an_app_id_needs_the_local_testing_opt_in(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.errors import ConfigError
    from hallmonitor.cli import main

    with pytest.raises(ConfigError, match="MICROSOFT_APP_ID is not set"):
        make_adapter()
    assert config.path is not None
    assert main(["run", "--config", str(config.path), "--port", "0", "--host", "0.0.0.0"]) == 2  # refuses to start
    started: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: started.update(kw))
    assert main(["run", "--config", str(config.path), "--host", "0.0.0.0", "--teams-local-testing-without-auth"]) == 0
    assert started["host"] == "127.0.0.1"  # the opt-in never listens beyond this machine


def test_web_in_personal_chat_sends_a_sign_in_link(
    config: Config, engine: Engine, connector: MockConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HALLMONITOR_WEB_SECRET", "t" * 40)

    async def go() -> None:
        h = Harness(config, engine)
        asked = await h.send(activity(connector, "message", who="aad-dana", channel=False, text="web"))
        assert asked.status_code in (200, 201)
        from bot.outbox import deliver_pending
        from storage.types import utcnow

        stats = await deliver_pending(engine, config=config, surfaces=h.service.surfaces, now=utcnow())
        assert stats.sent == 1
        await h.http.aclose()

    asyncio.run(go())
    to_dana = [
        json.dumps(body)
        for method, path, body in connector.sent()
        if method == "POST" and unquote(path).startswith("/v3/conversations/a:personal-aad-dana/activities")
    ]
    assert any("sent you a sign-in link" in b for b in to_dana)  # the reply to the command
    assert any("/web/login?token=" in b for b in to_dana)  # the link itself, by direct message
    channel = [b for m, p, b in connector.sent() if CHANNEL in unquote(p)]
    assert not any("/web/login" in json.dumps(b) for b in channel)
