"""Slack and Teams end to end through the real ASGI app: hostile text and links are inert on
every surface, replayed or foreign Slack requests do nothing, one failing recipient retries
alone, refusals (unknown items, forms never submitted) are audited, manual escalations."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import col, select

from bot.outbox import deliver_pending
from bot.teams import adaptive_card
from core.config import Config
from core.domain import NewItem
from handlers.pipeline import ingest
from handlers.reminders import check_clocks
from handlers.triage import default_classifier
from storage.db import session_scope
from storage.models import Audit, Delivery, Item, Outbox
from storage.types import utcnow
from tests.mock_slack import MockSlack
from tests.test_slack import Harness, config, mock, submission_payload  # noqa: F401  (fixtures)

INJECTIONS = [
    NewItem("i1", "comment", "Hello <!channel> and <!here> and <@U0ADMIN> see <https://evil.example|your bank>"),
    NewItem("i2", "comment", "[Reset password](https://evil.example/reset) **now** `code`", author="<@U0ADMIN>"),
    NewItem("i3", "comment", "When is the nativity? \u202eexe.gnp\u202c \x00 hidden", url="javascript:alert(1)"),
    NewItem("i4", "comment", "Is the fair on Friday?", url="https://x/|a> <!channel> <https://evil"),
]
HOSTILE = ("<!channel>", "<!here>", "<@U0ADMIN>", "<https://evil", "\u202e", "\\u202e", "\x00", "\\u0000")


def add_items(h: Harness, items: list[NewItem]) -> None:
    with session_scope(h.service.engine) as s:
        account = h.service.config.account("blog")
        ingest(s, config=h.service.config, account=account, items=items, now=utcnow(), classifier=default_classifier())


def links(blocks: Any) -> list[str]:
    text = json.dumps(blocks)
    return re.findall(r"<([^<>]*)>", text)


def test_hostile_text_and_links_are_inert_in_slack_and_teams(config: Config, engine: Engine, mock: MockSlack) -> None:  # noqa: F811
    async def go() -> None:
        h = Harness(config, engine, mock)
        add_items(h, INJECTIONS)
        await h.service.tick()
        for user in ("UAMIRA", "UDANA"):
            await h.command(user, "queue")
        await h.wait_for("response", 2)
        await h.http.aclose()

    asyncio.run(go())
    calls = mock.called("chat.postMessage") + mock.called("response")
    assert len(calls) >= 6
    for call in calls:
        raw = json.dumps(call)
        assert not any(bad in raw for bad in HOSTILE), raw
        for link in links(call.get("blocks")):  # the only <...> left are our own safe links
            assert link.startswith("https://") and "|open on" in link and "javascript" not in link, link
    fair = next(c for c in mock.called("chat.postMessage") if "fair on Friday" in json.dumps(c))
    assert "https://x/%7Ca%3E%20%3C!channel%3E%20%3Chttps://evil|open on rss" in json.dumps(fair["blocks"])
    nativity = next(c for c in mock.called("chat.postMessage") if "nativity" in json.dumps(c))
    assert "link (not opened)" in json.dumps(nativity["blocks"]) and "\ufffd" in json.dumps(
        nativity, ensure_ascii=False
    )
    with session_scope(engine) as s:
        items = list(s.scalars(select(Item).where(col(Item.external_id).in_(["i1", "i2", "i3", "i4"]))))
        from bot.view import view
        from core.chat import Place

        cards = [view(s, config, i, config.staff_by_id("amira"), Place.CHANNEL, now=utcnow()) for i in items]
    teams = [json.dumps(adaptive_card(c), ensure_ascii=False) for c in cards if c is not None]
    assert len(teams) == 4
    for card in teams:
        assert '"version": "1.5"' in card and "\u202e" not in card and "\x00" not in card
        assert "javascript:" not in card.split('"Link (not opened): "')[0]  # shown only as inert text
        assert '"type": "TextBlock"' not in card  # user text is never a Markdown TextBlock
        urls = re.findall(r'"url": "([^"]*)"', card)
        assert all(u.startswith("https://") for u in urls), urls


def test_replayed_or_foreign_slack_interactions_do_nothing(config: Config, engine: Engine, mock: MockSlack) -> None:  # noqa: F811
    async def go() -> None:
        h = Harness(config, engine, mock)
        await h.service.tick(all_sources=True)
        item = {i.external_id: i.id for i in _items(engine)}["q"]
        body = {"payload": json.dumps(h.click_payload("UAMIRA", "acknowledge", str(item)))}
        assert (await h.post(body)).status_code == 200
        assert (await h.post(body)).status_code == 200  # the same signed request, replayed
        same_action = h.click_payload("UAMIRA", "close", str(item))
        again = dict(same_action, trigger_id="trig-other")  # a new trigger id, the same action_ts
        await h.post({"payload": json.dumps(same_action)})
        await h.post({"payload": json.dumps(again)})
        metadata = json.dumps({"item": item, "channel": "CMOD", "ts": "1"})
        view = submission_payload(
            "UAMIRA", "hm_delete", metadata, {"reason": "spam"}, trigger_id="trig-view", view_id="V42"
        )
        await h.post({"payload": json.dumps(view)})
        await h.post({"payload": json.dumps(dict(view, trigger_id="trig-view-2"))})  # same view id
        foreign = await h.post({"payload": json.dumps(h.click_payload("UAMIRA", "close", str(item), team="T2"))})
        assert foreign.status_code == 403
        await asyncio.sleep(0.3)
        await h.http.aclose()

    asyncio.run(go())
    with session_scope(engine) as s:
        audit = [(a.actor, a.action, a.outcome) for a in s.scalars(select(Audit).order_by(col(Audit.id)))]
    assert audit == [
        ("amira", "acknowledge", "ok"),
        ("amira", "close", "ok"),
        ("amira", "delete", "refused"),  # rss cannot delete: refused, once
        ("slack:UAMIRA", "request", "refused"),  # another workspace
    ]


def test_refusals_are_audited_unknown_items_and_forms_never_submitted(
    config: Config,  # noqa: F811
    engine: Engine,
    mock: MockSlack,  # noqa: F811
) -> None:
    async def go() -> None:
        h = Harness(config, engine, mock)
        await h.service.tick(all_sources=True)
        item = {i.external_id: i.id for i in _items(engine)}["q"]
        await h.click("USAM", "reply", item or 0)  # a non-moderator opens the Reply form
        await h.post({"payload": json.dumps(h.click_payload("UAMIRA", "acknowledge", "999999"))})
        await h.post({"payload": json.dumps(h.click_payload("UAMIRA", "acknowledge", "not-a-number"))})
        await h.wait_for("chat.postEphemeral", 3)
        await h.http.aclose()

    asyncio.run(go())
    assert not mock.called("views.open")  # the form was never opened for her
    with session_scope(engine) as s:
        audit = [(a.actor, a.action, a.outcome, a.item_id) for a in s.scalars(select(Audit).order_by(col(Audit.id)))]
    assert audit[0][:3] == ("sam", "reply", "refused")
    assert ("amira", "acknowledge", "refused", 999999) in audit and ("amira", "acknowledge", "refused", None) in audit


def test_one_failing_recipient_retries_alone_and_nobody_gets_a_duplicate(
    config: Config,  # noqa: F811
    engine: Engine,
    mock: MockSlack,  # noqa: F811
) -> None:
    async def go() -> None:
        h = Harness(config, engine, mock)
        mock.fail_users = {"UHELEN"}  # SLT's DM fails; the DSL's and the channel's do not
        await h.service.tick(all_sources=True)
        surfaces = h.service.surfaces
        for minutes in (1, 5, 30):
            await deliver_pending(engine, config=config, surfaces=surfaces, now=utcnow() + timedelta(minutes=minutes))
        assert len([p for p in mock.called("chat.postMessage") if p["channel"] == "DUDANA"]) == 1
        mock.fail_users = set()
        await deliver_pending(engine, config=config, surfaces=surfaces, now=utcnow() + timedelta(hours=2))
        await h.http.aclose()

    asyncio.run(go())
    posts = mock.called("chat.postMessage")
    by_channel: dict[str, int] = {}
    for p in posts:
        by_channel[p["channel"]] = by_channel.get(p["channel"], 0) + 1
    assert by_channel == {"CMOD": 3, "DUDANA": 1, "DUHELEN": 1}  # helen got hers once it worked; nobody twice
    with session_scope(engine) as s:
        helen = s.scalars(select(Delivery).where(col(Delivery.target) == "person:helen")).one()
    assert helen.status == "sent" and helen.attempts >= 2


def test_an_unreachable_person_is_dead_lettered_with_one_alert_naming_them(
    config: Config,  # noqa: F811
    engine: Engine,
    mock: MockSlack,  # noqa: F811
) -> None:
    from monitors.registry import load_config

    assert config.path is not None
    text = config.path.read_text().replace('slack_user = "UHELEN"\n', "")
    config.path.write_text(text)
    config = load_config(config.path)

    async def go() -> None:
        h = Harness(config, engine, mock)
        await h.service.tick(all_sources=True)
        await deliver_pending(
            engine, config=config, surfaces=h.service.surfaces, now=utcnow() + timedelta(minutes=1)
        )  # the alert itself goes out on the next pass
        await h.http.aclose()

    asyncio.run(go())
    with session_scope(engine) as s:
        dead = list(s.scalars(select(Delivery).where(col(Delivery.status) == "dead")))
        alerts = list(s.scalars(select(Outbox).where(col(Outbox.kind) == "health")))
    assert [d.target for d in dead] == ["person:helen"] and "Helen Moore has no slack_user" in (
        dead[0].last_error or ""
    )
    assert len(alerts) == 1 and "Helen Moore could not be sent a escalation" in alerts[0].payload["text"]
    alert_posts = [p for p in mock.called("chat.postMessage") if "Someone cannot be reached" in json.dumps(p)]
    assert len(alert_posts) == 1 and alert_posts[0]["channel"] == "CMOD"


def test_manual_escalation_updates_the_item_and_its_clock_starts_when_raised(
    config: Config,  # noqa: F811
    engine: Engine,
    mock: MockSlack,  # noqa: F811
) -> None:
    async def go() -> None:
        h = Harness(config, engine, mock)
        await h.service.tick(all_sources=True)
        item = {i.external_id: i.id for i in _items(engine)}["q"]
        with session_scope(engine) as s:
            old = s.get(Item, item)
            assert old is not None
            old.received_at = utcnow() - timedelta(days=3)  # an old item
        await h.click("UAMIRA", "escalate", item or 0)
        await asyncio.sleep(0.3)
        with session_scope(engine) as s:
            assert check_clocks(s, config=config, now=utcnow()).repings == 0  # not two re-pings at once
            escalated = s.get(Item, item)
            assert escalated is not None and escalated.escalate == "slt"
        await h.command("UAMIRA", "queue")
        queue = (await h.wait_for("response"))[0]["text"]
        await h.http.aclose()
        lines = queue.splitlines()
        assert all("escalated" in line for line in lines[:3])  # escalations first

    asyncio.run(go())


def _items(engine: Engine) -> list[Item]:
    with session_scope(engine) as s:
        return list(s.scalars(select(Item)))
