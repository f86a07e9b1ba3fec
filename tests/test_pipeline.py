"""The core loop on a real SQLite file: poll -> store once -> triage -> clock -> outbox -> surface."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy import Engine, text
from sqlalchemy.exc import DatabaseError
from sqlmodel import col, select

from core.domain import NewItem
from handlers.actions import perform, snapshot
from handlers.pipeline import ingest
from handlers.reminders import check_clocks
from monitors.registry import load_config
from storage.db import session_scope
from storage.models import Audit, Delivery, Escalation, Evidence, Item, Outbox, Source, Triage
from storage.queries import sync_config
from tests.conftest import FEEDS, account_block
from tests.helpers import RecordingSurface, count, deliver, poll, request

URL = "https://northgate.example/comments/feed"
SAT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)

COMMENTS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Comments</title>
<item><guid>c1</guid><title>Re: fair</title><description>What time does the fair start on Saturday?</description>
<pubDate>Sat, 21 Nov 2026 09:00:00 +0000</pubDate><author>p@example.com (Parent One)</author></item>
<item><guid>c2</guid><description>The head is a clueless idiot.</description>
<pubDate>Sat, 21 Nov 2026 09:10:00 +0000</pubDate></item>
<item><guid>c3</guid><description>My friend's step-dad hits her when her mum is out.</description>
<enclosure url="https://cdn.example/photo.jpg" type="image/jpeg" length="1"/>
<pubDate>Sat, 21 Nov 2026 09:20:00 +0000</pubDate></item>
<item><guid>c4</guid><description>Lovely assembly, thank you!</description></item>
</channel></rss>"""


@pytest.fixture
def config(write_config, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The school on a chat surface with private messages (delivered to a RecordingSurface("slack"))."""
    written = write_config(account_block("blog", [URL]) + 'channel = { slack = "CMOD" }\n')
    written.path.write_text(
        written.path.read_text().replace('nation = "england"', 'nation = "england"\nsurface = "slack"')
    )
    return load_config(written.path)


@respx.mock
def test_polling_an_unchanged_feed_twice_stores_nothing_twice(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    respx.get(URL).side_effect = [
        httpx.Response(200, text=COMMENTS, headers={"ETag": '"a"'}),
        httpx.Response(304),
        httpx.Response(200, text=COMMENTS),  # a server that ignores validators: the unique key still holds
    ]
    first = poll(engine, config, now=SAT)
    assert (first.items_stored, first.escalated) == (4, 2)
    second = poll(engine, config, now=SAT + timedelta(minutes=6))
    assert second.not_modified == 1 and second.items_stored == 0
    third = poll(engine, config, now=SAT + timedelta(minutes=12))
    assert third.items_seen == 4 and third.items_stored == 0
    assert count(engine, Item) == 4
    assert count(engine, Triage) == 4
    assert count(engine, Outbox, col(Outbox.kind) == "card") == 4


@respx.mock
def test_triage_clock_and_escalations_are_stored(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    respx.get(URL).mock(return_value=httpx.Response(200, text=COMMENTS))
    poll(engine, config, now=SAT)
    with session_scope(engine) as s:
        items = {i.external_id: i for i in s.scalars(select(Item))}
        escalations = {(e.item_id, e.target) for e in s.scalars(select(Escalation))}
    question, abuse, disclosure, praise = items["c1"], items["c2"], items["c3"], items["c4"]
    assert (question.category, question.needs_reply) == ("question", True)
    # received on a Saturday: due 17:00 on Monday, school time
    assert question.reply_by == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    assert (abuse.category, abuse.escalate, abuse.needs_reply) == ("abuse", "slt", False)
    assert (disclosure.category, disclosure.escalate) == ("safeguarding", "dsl")
    assert (praise.category, praise.status) == ("praise", "closed")
    assert escalations == {(abuse.id, "slt"), (disclosure.id, "dsl")}


@respx.mock
def test_notifications_reach_the_right_people_and_safeguarding_stays_private(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    respx.get(URL).mock(return_value=httpx.Response(200, text=COMMENTS))
    poll(engine, config, now=SAT)
    surface = RecordingSurface()
    stats = deliver(engine, config, surface, SAT)
    assert stats.sent == 6 and stats.failed == 0  # 4 cards + SLT ping + DSL ping
    dsl = [n for n in surface.notes if n.audience == "dsl"]
    assert len(dsl) == 1 and dsl[0].place == "direct" and dsl[0].channel is None
    assert dsl[0].recipient is not None and dsl[0].recipient.id == "dana"
    assert "step-dad" in (dsl[0].card.text or "") and dsl[0].card.media_urls == []
    channel_card = next(n for n in surface.notes if n.audience == "moderators" and n.card.category == "safeguarding")
    assert "step-dad" not in (channel_card.card.text or "") and channel_card.card.media_urls == []
    slt = next(n for n in surface.notes if n.audience == "slt")
    assert slt.recipient is not None and slt.recipient.id == "helen"
    assert slt.card.buttons[0].action == "ack_escalation"
    assert count(engine, Outbox, col(Outbox.status) == "pending") == 0
    assert count(engine, Delivery, col(Delivery.status) == "sent") == 6


@respx.mock
def test_a_chat_outage_loses_nothing(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    respx.get(URL).mock(return_value=httpx.Response(200, text=COMMENTS))
    poll(engine, config, now=SAT)
    surface = RecordingSurface()
    surface.fail = True
    assert deliver(engine, config, surface, SAT).failed == 6
    assert count(engine, Delivery, col(Delivery.status) == "pending", col(Delivery.attempts) == 1) == 6
    surface.fail = False
    assert deliver(engine, config, surface, SAT).sent == 0  # backing off
    assert deliver(engine, config, surface, SAT + timedelta(minutes=1)).sent == 6


@respx.mock
def test_a_failing_source_alerts_once_and_keeps_what_it_stored(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    route = respx.get(URL)
    route.mock(return_value=httpx.Response(200, text=COMMENTS))
    poll(engine, config, now=SAT)
    route.mock(return_value=httpx.Response(200, text=COMMENTS[:180]))  # truncated mid-item
    for n in range(5):
        summary = poll(engine, config, all_sources=True, now=SAT + timedelta(minutes=10 * (n + 1)))
    route.mock(return_value=httpx.Response(200, text="<html>Service Unavailable</html>"))
    for n in range(5):
        summary = poll(engine, config, all_sources=True, now=SAT + timedelta(hours=n + 1))
    assert summary.failed == 1
    assert count(engine, Item) == 4
    with session_scope(engine) as s:
        source = s.scalars(select(Source)).one()
        assert source.consecutive_errors >= 5 and source.last_error_kind == "bad_payload"
        assert source.next_check_at and source.next_check_at > SAT + timedelta(hours=5)
    assert count(engine, Outbox, col(Outbox.kind) == "health") == 1
    route.mock(return_value=httpx.Response(200, text=COMMENTS))
    poll(engine, config, all_sources=True, now=SAT + timedelta(days=1))
    with session_scope(engine) as s:
        source = s.scalars(select(Source)).one()
        assert source.consecutive_errors == 0 and not source.health_alerted
    assert count(engine, Outbox, col(Outbox.kind) == "health") == 2  # the "recovered" note


@respx.mock
def test_an_expired_token_alerts_at_once_and_backs_off(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    respx.get(URL).mock(return_value=httpx.Response(401))
    summary = poll(engine, config, now=SAT)
    assert summary.failed == 1 and "expired" in summary.errors[0]
    assert count(engine, Outbox, col(Outbox.kind) == "health") == 1
    with session_scope(engine) as s:
        source = s.scalars(select(Source)).one()
        assert source.next_check_at and source.next_check_at - SAT >= timedelta(minutes=20)


def test_reminder_then_late_ping_each_once(write_config, engine: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    feed = tmp_path / "feed.xml"
    feed.write_text(COMMENTS)
    config = write_config(account_block("blog", [str(feed)]))
    tue = datetime(2026, 11, 17, 10, 0, tzinfo=UTC)
    poll(engine, config, now=tue)
    with session_scope(engine) as s:
        question = s.scalars(select(Item).where(col(Item.external_id) == "c1")).one()
    # the item is dated Saturday but we first saw it Tuesday: the clock starts when we could see it
    assert question.reply_by == tue + timedelta(hours=24)
    for when, reminders, late in [
        (tue + timedelta(hours=20), 0, 0),
        (tue + timedelta(hours=22, minutes=30), 1, 0),
        (tue + timedelta(hours=23), 0, 0),
        (tue + timedelta(hours=24, minutes=1), 0, 1),
        (tue + timedelta(hours=30), 0, 0),
    ]:
        with session_scope(engine) as s:
            stats = check_clocks(s, config=config, now=when)
        assert (stats.reminders, stats.late) == (reminders, late), when
    surface = RecordingSurface("console")
    deliver(engine, config, surface, tue + timedelta(hours=30))
    late = [n for n in surface.notes if n.kind == "late"]
    assert {n.to for n in late} == {"DM to Helen Moore", "#moderators"}  # SLT by DM, moderators in their channel
    assert all(n.card.countdown and n.card.countdown.startswith("late by") for n in late)


@respx.mock
def test_actions_check_roles_on_the_server_and_are_audited(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    respx.get(URL).mock(return_value=httpx.Response(200, text=COMMENTS))
    poll(engine, config, now=SAT)
    with session_scope(engine) as s:
        ids = {i.external_id: i.id for i in s.scalars(select(Item))}

    def act(actor: str, action: str, key: str, argument: str | None = None) -> tuple[bool, str]:
        with session_scope(engine) as s:
            r = perform(s, config=config, request=request(action, ids[key], argument, actor=actor), now=SAT)
        return r.ok, r.message

    assert act("sam", "acknowledge", "c1") == (False, "Only this account's designated moderators can do that.")
    assert act("stranger", "acknowledge", "c1")[0] is False
    assert act("amira", "acknowledge", "c1") == (True, "Acknowledged by amira.")
    assert act("helen", "ack_escalation", "c2")[0] is True
    assert act("helen", "ack_escalation", "c3")[0] is False  # DSL's escalation, not SLT's
    assert act("dana", "ack_escalation", "c3")[0] is True
    ok, message = act("amira", "hide", "c2")
    assert not ok and "rss does not let us hide" in message
    assert act("ben", "recategorise", "c4", "nonsense")[0] is False
    assert act("ben", "not_abuse", "c2")[0] is True
    with session_scope(engine) as s:
        item = s.get(Item, ids["c2"])
        assert item is not None and (item.category, item.escalate) == ("other", "none")
        latest = s.scalars(
            select(Triage).where(col(Triage.item_id) == ids["c2"]).order_by(col(Triage.id).desc())
        ).first()
        assert latest is not None and latest.decided_by == "ben"
        outcomes = [(a.actor, a.action, a.outcome) for a in s.scalars(select(Audit).order_by(col(Audit.id)))]
    assert ("sam", "acknowledge", "refused") in outcomes and ("amira", "acknowledge", "ok") in outcomes
    assert ("amira", "hide", "refused") in outcomes and len(outcomes) == 9


@respx.mock
def test_audit_and_evidence_are_append_only(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    respx.get(URL).mock(return_value=httpx.Response(200, text=COMMENTS))
    poll(engine, config, now=SAT)
    with session_scope(engine) as s:
        item = s.scalars(select(Item).where(col(Item.external_id) == "c3")).one()
        evidence = snapshot(s, item=item, reason="delete")
        assert evidence.snapshot["text"].startswith("My friend") and evidence.snapshot["media_links"] == []
        perform(s, config=config, request=request("acknowledge", item.id), now=SAT)
    for statement in (
        "UPDATE audit SET actor = 'x'",
        "DELETE FROM audit",
        "DELETE FROM evidence",
        "UPDATE evidence SET reason = 'x'",
    ):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    assert count(engine, Audit) == 1 and count(engine, Evidence) == 1


def test_the_migration_matches_the_models(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_local_example_feeds_produce_cards(write_config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    config = write_config(account_block("yt", [str(FEEDS / "youtube_atom.xml")], kind="post"))
    summary = poll(engine, config, now=SAT)
    assert summary.items_stored == 15
    # the school's own uploads are stored for context, not carded, never escalated, never due a reply
    assert count(engine, Outbox) == 0
    assert summary.escalated == 0 and count(engine, Escalation) == 0
    with session_scope(engine) as s:
        items = list(s.scalars(select(Item)))
        decided = {t.decided_by for t in s.scalars(select(Triage))}
    assert {(i.escalate, i.needs_reply, i.status) for i in items} == {("none", False, "closed")}
    assert decided == {"auto:own-post"}


def test_the_schools_own_post_is_never_escalated_however_it_reads(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    own = NewItem(
        "own1", "comment", "Assembly today: what to do if someone hurts you at home. Who can you tell?", own=True
    )
    theirs = NewItem("c9", "comment", "My friend's step-dad hits her when her mum is out.")
    with session_scope(engine) as s:
        sync_config(s, config=config)
        stats = ingest(s, config=config, account=config.accounts[0], items=[own, theirs], now=SAT)
    assert stats.stored == 2 and stats.escalated == 1
    with session_scope(engine) as s:
        items = {i.external_id: i for i in s.scalars(select(Item))}
    assert (items["own1"].escalate, items["own1"].needs_reply, items["own1"].text) == ("none", False, own.text)
    assert items["c9"].escalate == "dsl"


@respx.mock
def test_unacknowledged_escalations_are_repinged_to_a_wider_circle(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    respx.get(URL).mock(return_value=httpx.Response(200, text=COMMENTS))
    poll(engine, config, now=SAT)
    with session_scope(engine) as s:
        assert check_clocks(s, config=config, now=SAT + timedelta(minutes=20)).repings == 0
        assert check_clocks(s, config=config, now=SAT + timedelta(minutes=31)).repings == 2  # abuse + safeguarding
        assert check_clocks(s, config=config, now=SAT + timedelta(minutes=40)).repings == 0  # once per round
        disclosure = s.scalars(select(Item).where(col(Item.external_id) == "c3")).one()
        perform(
            s,
            config=config,
            request=request("ack_escalation", disclosure.id, actor="dana"),
            now=SAT + timedelta(minutes=45),
        )
        assert check_clocks(s, config=config, now=SAT + timedelta(minutes=61)).repings == 1  # only the abuse one
    surface = RecordingSurface()
    deliver(engine, config, surface, SAT + timedelta(hours=2))
    widened = [n for n in surface.notes if n.audience == "leaders"]
    assert widened and all(n.place == "direct" for n in widened)
    assert {n.recipient.id for n in widened if n.recipient} == {"helen"}  # abuse: every SLT member, never the DSL
    safeguarding = [n for n in surface.notes if n.kind == "escalation" and n.card.category == "safeguarding"]
    assert {n.recipient.id for n in safeguarding if n.recipient} == {"dana"}  # re-pings stay with the DSLs


@respx.mock
@pytest.mark.parametrize("action", ["unhide", "mute", "report", "hide", "delete", "block", "reply", "no_such_action"])
def test_every_action_but_acknowledging_escalations_is_for_moderators_only(
    config,
    engine: Engine,  # type: ignore[no-untyped-def]
    action: str,
) -> None:
    respx.get(URL).mock(return_value=httpx.Response(200, text=COMMENTS))
    poll(engine, config, now=SAT)
    with session_scope(engine) as s:
        item = s.scalars(select(Item)).first()
        assert item is not None
        for actor in ("sam", "helen", "dana"):  # staff, SLT and DSL are not this account's moderators
            result = perform(s, config=config, request=request(action, item.id, "x", actor=actor), now=SAT)
            assert not result.ok and "designated moderators" in result.message


def test_a_source_quiet_for_longer_than_usual_alerts_once(write_config, engine: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    feed = tmp_path / "feed.xml"
    config = write_config(account_block("blog", [str(feed)]))

    def publish(n: int) -> None:
        items = "".join(f"<item><guid>g{i}</guid><description>Comment {i}</description></item>" for i in range(n))
        feed.write_text(f'<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>{items}</channel></rss>')

    day = timedelta(days=1)
    for n in range(1, 7):  # a new comment every day for six days: the usual gap is one day
        publish(n)
        poll(engine, config, now=SAT + n * day, all_sources=True)
    for extra in (2, 3, 4, 10):  # no new comments: 2 and 3 days are fine (threshold 3 days), then alert once
        poll(engine, config, now=SAT + (6 + extra) * day, all_sources=True)
    assert count(engine, Outbox, col(Outbox.kind) == "health") == 1
    publish(7)  # it comes back: a later silence is a new spell
    poll(engine, config, now=SAT + 17 * day, all_sources=True)
    poll(engine, config, now=SAT + 30 * day, all_sources=True)
    assert count(engine, Outbox, col(Outbox.kind) == "health") == 2


@respx.mock
def test_notes_for_an_account_that_left_the_config_are_dead_lettered(write_config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    respx.get(URL).mock(return_value=httpx.Response(200, text=COMMENTS))
    poll(engine, write_config(account_block("blog", [URL])), now=SAT)
    renamed = write_config(account_block("news", [URL]))  # the account was renamed: its queued cards are orphans
    surface, when = RecordingSurface(), SAT
    for _ in range(3):
        when += timedelta(hours=1)  # past any backoff
        deliver(engine, renamed, surface, when)
    assert surface.notes == [] and count(engine, Outbox, col(Outbox.status) == "pending") == 0
    with session_scope(engine) as s:
        dead = list(s.scalars(select(Outbox).where(col(Outbox.status) == "dead")))
    assert dead and all(o.attempts == 3 for o in dead)
    assert "account 'blog' is no longer in the config (deleted or renamed)" in (dead[0].last_error or "")
    deliver(engine, renamed, surface, when + timedelta(days=1))
    with session_scope(engine) as s:
        assert all(o.attempts == 3 for o in s.scalars(select(Outbox).where(col(Outbox.status) == "dead")))
