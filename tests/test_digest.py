"""The weekly SLT digest: queued once at the configured time, delivered by direct message with
its charts to the loopback mock Slack Web API and the mock Bot Connector, printed by the console."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import Engine, event, select
from sqlmodel import col

from bot.console import ConsoleSurface
from bot.outbox import deliver_pending
from core.config import Config
from handlers.polling import silent_for
from handlers.reports.digest import RECHECK_EMPTY, digest_text, digest_week, queue_due_digests
from storage.db import session_scope
from storage.models import Item, Outbox, Source, TeamsConversation
from tests.mock_connector import MockConnector
from tests.mock_slack import MockSlack
from tests.report_seed import TEXTS, seed, write_config

PNG = b"\x89PNG\r\n\x1a\n"
DIGEST_AT = datetime(2026, 4, 6, 7, 0, tzinfo=UTC)  # Easter Monday 08:00 BST: the digest for 30 March - 5 April


@pytest.fixture
def trust(tmp_path: Path, engine: Engine) -> tuple[Config, Engine]:
    config = write_config(tmp_path)
    seed(engine, config)
    return config, engine


def _queue(config: Config, engine: Engine, now: datetime) -> int:
    with session_scope(engine) as session:
        return queue_due_digests(session, config=config, now=now)


def _deliver(config: Config, engine: Engine, surface: Any, now: datetime) -> Any:
    """Deliver through `surface`, with the schools on that surface (one delivery per person and surface)."""
    config = config.model_copy(update={"chat": config.chat.model_copy(update={"surface": surface.name})})

    async def go() -> Any:
        return await deliver_pending(engine, config=config, surfaces=surface, now=now)

    return asyncio.run(go())


def test_the_digest_is_queued_once_at_its_time_and_never_quotes(trust: tuple[Config, Engine]) -> None:
    config, engine = trust
    school = config.school("northgate")
    moment, week = digest_week(school, DIGEST_AT + timedelta(hours=30))
    assert moment == DIGEST_AT and (week.start.isoformat(), week.end.isoformat()) == ("2026-03-30", "2026-04-05")
    assert _queue(config, engine, DIGEST_AT - timedelta(minutes=1)) == 0  # Sunday's week is not over yet
    assert _queue(config, engine, DIGEST_AT) == 2  # both schools
    assert _queue(config, engine, DIGEST_AT + timedelta(hours=1)) == 0  # once per week, across ticks and restarts
    assert _queue(config, engine, DIGEST_AT + timedelta(days=3)) == 0  # too late to catch up: next week's comes
    with session_scope(engine) as session:
        row = session.scalars(select(Outbox).where(col(Outbox.dedupe_key) == "digest:northgate:2026-03-30")).one()
        payload, audience = row.payload, row.audience
    assert audience == "slt"
    text = digest_text(payload)
    assert "11 item(s) (week before: 3)" in text
    assert "safeguarding 2" in text and "Escalations raised: DSL 2, SLT 1" in text
    assert "median time to acknowledge 82 min" in text  # (45 + 120) / 2 = 82.5
    assert not any(quote in json.dumps(payload) for quote in TEXTS.values())  # counted, never quoted
    assert "Parent" not in json.dumps(payload)


def test_digest_to_mock_slack_with_charts_uploaded(trust: tuple[Config, Engine]) -> None:
    from bot.slack import SlackSurface, web_client

    config, engine = trust
    _queue(config, engine, DIGEST_AT)
    with MockSlack() as slack:
        stats = _deliver(config, engine, SlackSurface(web_client("xoxb-test", slack.url)), DIGEST_AT)
        opened = [c["users"] for c in slack.called("conversations.open")]
        posts = slack.called("chat.postMessage")
        completed = slack.called("files.completeUploadExternal")
        uploads = dict(slack.uploads)
    assert stats.sent == 2 and stats.failed == 0
    assert sorted(opened) == [
        "UHELEN",
        "UKIM",
    ]  # sent at once, in either order; Northgate's SLT and Kirkton's: direct messages only
    assert {p["channel"] for p in posts} == {"DUHELEN", "DUKIM"}
    assert "Replies on time" in json.dumps(posts[0]["blocks"])
    assert len(uploads) == 4 and all(body.startswith(PNG) for body in uploads.values())
    assert {c["channel_id"] for c in completed} == {"DUHELEN", "DUKIM"}


def test_digest_to_mock_bot_connector_with_the_chart_inline(trust: tuple[Config, Engine], monkeypatch: Any) -> None:
    from bot.teams import TeamsSurface, make_adapter

    monkeypatch.setenv("MICROSOFT_APP_ID", "")  # local testing: authentication off
    config, engine = trust
    _queue(config, engine, DIGEST_AT)
    with MockConnector() as connector:
        with session_scope(engine) as session:
            for aad in ("aad-helen",):
                session.add(
                    TeamsConversation(
                        kind="personal",
                        key=aad,
                        reference={
                            "user": {"id": f"29:{aad}", "aadObjectId": aad},
                            "bot": {"id": "28:bot", "name": "Hall Monitor"},
                            "conversation": {"id": f"a:personal-{aad}", "conversationType": "personal"},
                            "channelId": "msteams",
                            "serviceUrl": connector.url,
                        },
                    )
                )
        adapter, settings = make_adapter(allow_unauthenticated=True)
        stats = _deliver(config, engine, TeamsSurface(engine, adapter, settings.APP_ID), DIGEST_AT)
        sent = [(unquote(path), body) for method, path, body in connector.sent() if method == "POST"]
    assert stats.sent == 1 and stats.dead == 1  # Kirkton's SLT has no teams_user: dead-lettered, moderators told
    ((path, body),) = sent
    assert path == "/v3/conversations/a:personal-aad-helen/activities"
    card, *images = body["attachments"]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "Replies on time" in json.dumps(card)
    assert [i["contentType"] for i in images] == ["image/png", "image/png"]
    assert base64.b64decode(images[0]["contentUrl"].split(",", 1)[1]).startswith(PNG)


def test_console_prints_the_digest(trust: tuple[Config, Engine]) -> None:
    config, engine = trust
    _queue(config, engine, DIGEST_AT)
    out = io.StringIO()
    _deliver(config, engine, ConsoleSurface(out), DIGEST_AT)
    printed = out.getvalue()
    assert "Weekly digest: Northgate Primary" in printed and "DM to Helen Moore" in printed
    assert "attached: volume-by-category.png (image/png" in printed
    assert "Time to first reply: median" in printed


def test_a_quiet_week_is_built_again_only_every_quarter_hour(trust: tuple[Config, Engine]) -> None:
    """The clocks ask every tick; a week with nothing to tell is not rebuilt on each one (the payload
    reads the week and every source) but is looked at again, so a source failing later is still told."""
    config, engine = trust
    later = DIGEST_AT + timedelta(weeks=52)  # Monday 5 April 2027, 08:00 BST: nothing was received that week
    with session_scope(engine) as session:
        sources = list(session.scalars(select(Source)))
        for source in sources:
            source.last_new_item_at, source.consecutive_errors = later, 0
    empty: dict[str, datetime] = {}

    def queue(now: datetime) -> int:
        with session_scope(engine) as session:
            return queue_due_digests(session, config=config, now=now, empty=empty)

    assert queue(later) == 0 and len(empty) == len([s for s in config.schools if s.digest.enabled])
    with session_scope(engine) as session:
        failing = session.get(Source, sources[0].id)
        assert failing is not None
        failing.consecutive_errors, failing.last_error_kind = 3, "network"
    assert queue(later + timedelta(minutes=1)) == 0  # not rebuilt yet
    assert queue(later + RECHECK_EMPTY + timedelta(minutes=1)) == 1  # rebuilt: the failing source is news for SLT


def test_a_source_gone_quiet_is_judged_on_its_usual_gap_and_a_lively_one_costs_no_query(
    trust: tuple[Config, Engine],
) -> None:
    config, engine = trust
    now = DIGEST_AT + timedelta(weeks=52)
    with session_scope(engine) as session:
        quiet, lively = list(session.scalars(select(Source).order_by(col(Source.id))))[:2]
        account = config.account(quiet.account_id)
        for day in range(6):  # one new comment a day, the last four days ago: usual gap 1 day, threshold 3 days
            at = now - timedelta(days=4 + day)
            session.add(
                Item(
                    school_id=config.school_of(account).id,
                    account_id=quiet.account_id,
                    source_id=quiet.id,
                    external_id=f"quiet-{day}",
                    platform="rss",
                    kind="comment",
                    text="hello",
                    created_at=at,
                    received_at=at,
                )
            )
        quiet.last_new_item_at, lively.last_new_item_at = now - timedelta(days=4), now - timedelta(hours=1)
    with session_scope(engine) as session:
        quiet_row, lively_row = session.get(Source, quiet.id), session.get(Source, lively.id)
        assert quiet_row is not None and lively_row is not None
        assert silent_for(session, source=quiet_row, configured=None, now=now) == (timedelta(days=4), timedelta(days=3))
        statements: list[str] = []
        listen = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listen)
        try:
            assert silent_for(session, source=lively_row, configured=None, now=now) is None
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        assert statements == []  # an hour since its last comment: no history read
        assert silent_for(session, source=quiet_row, configured=timedelta(days=5), now=now) is None
