"""The privacy promise, property-style: over a safeguarding item's whole life, everything every
surface sends to anyone is recorded, and its text, author and link reach only its own school's
DSL and deputy DSL, in their own places. Two schools in one service: Northgate on Slack and
Teams at once, Harwell on Slack and the console. Real ASGI app, signed Slack requests, Bot
Framework activities, loopback mock Slack Web API and Bot Connector."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from bot.console import ConsoleCommands, ConsoleSurface
from bot.outbox import deliver_pending
from core.config import Config
from hallmonitor.app import create_app
from hallmonitor.service import Service
from hallmonitor.surfaces import Options, SlackKit, TeamsKit
from handlers.reminders import check_clocks
from monitors.registry import load_config
from storage.db import session_scope
from storage.models import Audit, CardCopy, Item
from storage.types import utcnow
from tests.mock_connector import MockConnector
from tests.mock_slack import MockSlack
from tests.test_slack import SECRET, click_payload, signed

CHANNEL = "19:northgate-mods@thread.tacv2"
SECRETS = {
    "northgate": ("daughter to send him photos", "Zq Northgate Author", "https://example.org/zq-northgate"),
    "harwell": ("son to send him pictures", "Zq Harwell Author", "https://example.org/zq-harwell"),
}
PEOPLE = {  # id: (school, roles)
    "amira": ("northgate", ["moderator"]),
    "ben": ("northgate", ["moderator"]),
    "helen": ("northgate", ["slt"]),
    "hana": ("northgate", ["head", "slt"]),
    "dana": ("northgate", ["dsl"]),
    "dev": ("northgate", ["deputy_dsl"]),
    "sam": ("northgate", ["staff"]),
    "hmod": ("harwell", ["moderator"]),
    "hmod2": ("harwell", ["moderator"]),
    "hslt": ("harwell", ["slt"]),
    "hdsl": ("harwell", ["dsl", "moderator"]),  # a DSL who also moderates: still no details in channel
    "hstaff": ("harwell", ["staff"]),
}
ALLOWED = {"northgate": {"dana", "dev"}, "harwell": {"hdsl"}}


def feed(school: str, tmp: Path) -> Path:
    text, author, link = SECRETS[school]
    path = tmp / f"{school}.xml"
    path.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>'
        f"<item><guid>{school}-q</guid><description>When is the nativity?</description></item>"
        f"<item><guid>{school}-s</guid><author>{author}</author><link>{link}</link>"
        f"<description>A man keeps asking my {text}</description></item></channel></rss>"
    )
    return path


def config_text(tmp: Path) -> str:
    lines = [
        f'[service]\ndatabase_url = "sqlite:///{tmp / "hm.db"}"\n[chat]\nsurface = "slack"\nread_commands = false',
        '[[schools]]\nid = "northgate"\nname = "Northgate"\nsurface = ["slack", "teams"]',
        '[[schools]]\nid = "harwell"\nname = "Harwell"\nsurface = ["slack", "console"]',
    ]
    for pid, (school, roles) in PEOPLE.items():
        teams = f'\nteams_user = "aad-{pid}"' if school == "northgate" else ""
        lines.append(
            f'[[staff]]\nid = "{pid}"\nname = "{pid.title()}"\nschool = "{school}"\nroles = {json.dumps(roles)}\n'
            f'slack_user = "U{pid.upper()}"{teams}'
        )
    lines.append(
        f'[[accounts]]\nid = "nblog"\nschool = "northgate"\nplatform = "rss"\nmoderators = ["amira", "ben"]\n'
        f'watch = ["{feed("northgate", tmp)}"]\nchannel = {{ slack = "CMODN", teams = "{CHANNEL}" }}'
    )
    lines.append(
        f'[[accounts]]\nid = "hblog"\nschool = "harwell"\nplatform = "rss"\nmoderators = ["hmod", "hmod2"]\n'
        f'watch = ["{feed("harwell", tmp)}"]\nchannel = {{ slack = "CMODH" }}'
    )
    return "\n\n".join(lines) + "\n"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Config, MockSlack, MockConnector]]:
    with MockSlack() as slack, MockConnector() as connector:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
        monkeypatch.setenv("SLACK_API_URL", slack.url)
        monkeypatch.setenv("MICROSOFT_APP_ID", "")
        (tmp_path / "config.toml").write_text(config_text(tmp_path))
        yield load_config(tmp_path / "config.toml"), slack, connector


class Life:
    """One service running Slack, Teams and the console together, and a log of every delivery:
    (recipient, place, payload) where recipient is a staff id, or "channel"/"console" for shared places."""

    def __init__(self, config: Config, engine: Engine, slack: MockSlack, connector: MockConnector) -> None:
        self.slack_kit, self.teams_kit = SlackKit(Options()), TeamsKit(Options(teams_without_auth=True))
        self.console = io.StringIO()
        surfaces = {
            "slack": self.slack_kit.surface(engine),
            "teams": self.teams_kit.surface(engine),
            "console": ConsoleSurface(self.console),
        }
        self.service = Service(config=config, engine=engine, surfaces=surfaces)
        routers = [self.slack_kit.router(self.service), self.teams_kit.router(self.service)]
        self.app = create_app(self.service, start_scheduler=False, routers=routers)
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://hm.test")
        self.config, self.engine, self.slack, self.connector = config, engine, slack, connector
        self.invokes: list[tuple[str, str, Any]] = []
        self.console_lines: list[tuple[str, str]] = []
        self.n = 0

    def unique(self) -> str:
        self.n += 1
        return f"{self.n}.{self.n}"

    async def slack_post(self, form: dict[str, str]) -> httpx.Response:
        body = urlencode(form)
        headers = signed(body, content_type="application/x-www-form-urlencoded")
        return await self.http.post("/slack/events", content=body, headers=headers)

    async def slack_event(self, event: dict[str, Any]) -> None:
        body = json.dumps({"type": "event_callback", "team_id": "T1", "event_id": f"Ev{self.unique()}", "event": event})
        await self.http.post("/slack/events", content=body, headers=signed(body, content_type="application/json"))

    async def slack_click(self, user: str, action: str, value: str, channel: str, ts: str) -> None:
        payload = click_payload(self.unique, user, action, value, channel=channel, ts=ts)
        if action == "recategorise":
            payload["actions"][0].update(type="static_select", selected_option={"value": value})
        await self.slack_post({"payload": json.dumps(payload)})

    async def slack_command(self, user: str, text: str) -> None:
        await self.slack_post(
            {
                "command": "/hallmonitor",
                "text": text,
                "user_id": user,
                "team_id": "T1",
                "channel_id": "CRANDOM",
                "response_url": self.slack.url + f"response?u={user}",
                "trigger_id": f"trig-{self.unique()}",
                "api_app_id": "A1",
                "token": "x",
            }
        )

    def activity(self, kind: str, who: str, *, channel: bool, **extra: Any) -> dict[str, Any]:
        conversation = (
            {"id": f"{CHANNEL};messageid=1", "conversationType": "channel"}
            if channel
            else {"id": f"a:personal-{who}", "conversationType": "personal"}
        )
        return {
            "type": kind,
            "id": f"incoming-{self.unique()}",
            "channelId": "msteams",
            "serviceUrl": self.connector.url,
            "from": {"id": f"29:{who}", "aadObjectId": who, "name": who},
            "recipient": {"id": "28:bot", "name": "Hall Monitor"},
            "conversation": conversation,
            "channelData": {"channel": {"id": CHANNEL}} if channel else {},
            **extra,
        }

    async def teams(self, body: dict[str, Any]) -> httpx.Response:
        response = await self.http.post("/api/messages", json=body)
        if body["type"] == "invoke":
            who = body["from"]["aadObjectId"].removeprefix("aad-")
            place = body["conversation"]["conversationType"]
            self.invokes.append((who, "channel" if place == "channel" else "direct", response.json()))
        return response

    async def deliver(self, when: Any) -> None:
        await deliver_pending(self.engine, config=self.config, surfaces=self.service.surfaces, now=when)

    def sent(self) -> list[tuple[str, str, str]]:
        """Every delivery so far: (recipient, place, payload as text)."""
        by_slack = {f"U{pid.upper()}": pid for pid in PEOPLE}
        out: list[tuple[str, str, str]] = []
        for method, data in self.slack.calls:
            text = json.dumps(data)
            channel = str(data.get("channel") or "")
            if method in ("chat.postMessage", "chat.update"):
                if channel.startswith("D"):
                    out.append((by_slack[channel[1:]], "direct", text))
                else:
                    out.append(("channel", "channel", text))
            elif method == "chat.postEphemeral":
                out.append((by_slack[data["user"]], "direct", text))
            elif method == "views.publish":
                out.append((by_slack[data["user_id"]], "direct", text))
            elif method == "response":
                out.append((by_slack[data["u"]], "direct", text))
        for _method, path, body in self.connector.sent():
            conversation = unquote(path).split("/v3/conversations/")[-1].split("/activities")[0]
            who = conversation.removeprefix("a:personal-aad-")
            out.append((who, "direct", json.dumps(body)) if who in PEOPLE else ("channel", "channel", json.dumps(body)))
        out += [(who, place, json.dumps(card)) for who, place, card in self.invokes]
        out += [("console", "console", text) for text in self.console.getvalue().split("─" * 72)]
        out += [("console", "console", text) for _who, text in self.console_lines]
        return out


def copy_ts(engine: Engine, *, conversation: str, external_id: str) -> str:
    with session_scope(engine) as s:
        item = s.scalars(select(Item).where(col(Item.external_id) == external_id)).one()
        copy = s.scalars(
            select(CardCopy).where(col(CardCopy.item_id) == item.id, col(CardCopy.conversation) == conversation)
        ).first()
        assert copy is not None, conversation
        return copy.message_id


def item_id(engine: Engine, external_id: str) -> int:
    with session_scope(engine) as s:
        return s.scalars(select(Item).where(col(Item.external_id) == external_id)).one().id or 0


async def whole_life(life: Life) -> None:
    teams_people = [p for p, (school, _) in PEOPLE.items() if school == "northgate"]
    await life.teams(life.activity("conversationUpdate", "aad-amira", channel=True, membersAdded=[{"id": "28:bot"}]))
    for pid in teams_people:  # everyone opens Hall Monitor in Teams once
        await life.teams(life.activity("message", f"aad-{pid}", channel=False, text="hello"))
    now = utcnow()
    await life.service.tick(all_sources=True)  # first posts: channel cards, DSL DMs, on every surface
    for minutes in (31, 61):  # re-pings, nobody has acknowledged yet
        with session_scope(life.engine) as s:
            check_clocks(s, config=life.config, now=now + timedelta(minutes=minutes))
        await life.deliver(now + timedelta(minutes=minutes))
    n_item = item_id(life.engine, "northgate-s")
    # a moderator re-categorises it from the Slack channel: every copy (Slack and Teams) is updated
    ts = copy_ts(life.engine, conversation="CMODN", external_id="northgate-s")
    await life.slack_click("UAMIRA", "recategorise", f"{n_item}:other", "CMODN", ts)
    await life.deliver(utcnow() + timedelta(hours=2))
    # the DSL acknowledges from her Slack DM; the deputy from Teams
    dm = copy_ts(life.engine, conversation="DUDANA", external_id="northgate-s")
    await life.slack_click("UDANA", "ack_escalation", str(n_item), "DUDANA", dm)
    await life.teams(
        life.activity(
            "invoke",
            "aad-dev",
            channel=False,
            name="adaptiveCard/action",
            value={"action": {"type": "Action.Execute", "verb": "hm:ack_escalation", "data": {"item": n_item}}},
        )
    )
    await life.deliver(utcnow() + timedelta(hours=3))
    for pid in [*teams_people, "hdsl", "stranger"]:  # refresh, by everyone, in the channel and in their own chat
        for in_channel in (True, False):
            refresh = {"action": {"type": "Action.Execute", "verb": "hm:refresh", "data": {"item": n_item}}}
            await life.teams(
                life.activity("invoke", f"aad-{pid}", channel=in_channel, name="adaptiveCard/action", value=refresh)
            )
    h_item = item_id(life.engine, "harwell-s")
    for pid in PEOPLE:  # queue and App Home for everyone, both schools; Teams queue too
        await life.slack_command(f"U{pid.upper()}", "queue")
        await life.slack_event({"type": "app_home_opened", "user": f"U{pid.upper()}", "tab": "home"})
        if PEOPLE[pid][0] == "northgate":
            await life.teams(life.activity("message", f"aad-{pid}", channel=False, text="queue"))
        console = ConsoleCommands(life.service, out=io.StringIO())
        console.handle(f"as {pid}")
        life.console_lines.append((pid, console.handle("queue")))
    ts_h = copy_ts(life.engine, conversation="CMODH", external_id="harwell-s")
    await life.slack_click("UHMOD", "recategorise", f"{h_item}:other", "CMODH", ts_h)
    await life.slack_click("UAMIRA", "acknowledge", str(h_item), "CMODH", ts_h)  # another school's item: refused
    await life.deliver(utcnow() + timedelta(hours=4))
    await asyncio.sleep(0.3)  # follow-up Web API calls after acks
    await life.http.aclose()


def test_safeguarding_details_reach_only_the_schools_own_dsls_over_the_whole_life(
    world: tuple[Config, MockSlack, MockConnector], engine: Engine
) -> None:
    config, slack, connector = world
    life = Life(config, engine, slack, connector)
    asyncio.run(whole_life(life))
    sent = life.sent()
    assert len(sent) > 60  # the whole life was recorded, not a handful of messages
    for school, tokens in SECRETS.items():
        seen_by = {(who, place) for who, place, text in sent if any(t in text for t in tokens)}
        assert seen_by, f"{school}'s DSLs never got the details"
        assert {who for who, _ in seen_by} <= ALLOWED[school], (school, seen_by)
        assert {place for _, place in seen_by} == {"direct"}, (school, seen_by)
        for dsl in ALLOWED[school]:  # every DSL and deputy did get them, in their own messages
            assert (dsl, "direct") in seen_by, (school, dsl)
    # the channel copies were updated from the other surface (Slack click -> Teams updateActivity)
    assert any(method == "PUT" and CHANNEL in unquote(path) for method, path, _ in connector.sent())
    assert any(m == "chat.update" and d["channel"] == "CMODN" for m, d in slack.calls)
    with session_scope(engine) as s:
        refusals = [(a.actor, a.action) for a in s.scalars(select(Audit).where(col(Audit.outcome) == "refused"))]
    assert ("amira", "acknowledge") in refusals  # another school's item
