# ruff: noqa: F811  (the `trust` fixture is imported from test_digest and named by each test)
"""Deliveries that may have gone, after a crash or a failed upload, against the loopback mock
Slack: looked for together (one history scan per conversation, not one per delivery), never
posted twice, and a digest's charts that did not follow their message are uploaded then, or the
delivery records which did not go and why."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from bot import recovery
from bot.notify import build_note, fan_out
from bot.outbox import CLAIM, deliver_batch, deliver_pending
from bot.slack import SlackSurface, web_client
from core.config import Config
from monitors.registry import load_config
from storage.db import session_scope
from storage.leases import claim_deliveries
from storage.models import Delivery, Outbox
from storage.types import utcnow
from tests.mock_slack import MockSlack
from tests.report_seed import TEXTS
from tests.test_digest import DIGEST_AT, PNG, _queue, trust  # noqa: F401  (trust is a fixture)
from tests.test_engine import _queue as queue_notes
from tests.test_engine import _slack_text

DIGEST_FILES = {"volume-by-category.png", "on-time-trend.png"}


def _crash(engine: Engine, config: Config, surface: SlackSurface, now: datetime, *, post: int, files: bool) -> int:
    """A worker claims everything due, posts the first `post` messages (their files too when
    `files`), then dies; how many it had claimed."""

    async def go() -> int:
        with session_scope(engine) as s:
            fan_out(s, config=config, now=now)
        with session_scope(engine) as s:
            claimed = claim_deliveries(
                s, owner="dead", now=now, lease=timedelta(seconds=5), limit=500, surfaces=["slack"]
            )
            notes = [build_note(s, config=config, delivery=d, now=now) for d in claimed[:post]]
        for note in notes:
            assert note is not None
            if files:
                await surface.deliver(note)
            else:  # died between the message and its files
                metadata = {"event_type": surface.MARK, "event_payload": {"delivery": note.delivery_id}}
                channel = await surface._conversation(note)
                await surface.client.chat_postMessage(channel=channel, text=note.card.headline, metadata=metadata)
        return len(claimed)

    return asyncio.run(go())


def test_maybe_sent_deliveries_are_looked_for_with_one_history_scan_per_conversation(
    tmp_path: Path, engine: Engine
) -> None:
    (tmp_path / "config.toml").write_text(_slack_text(tmp_path))
    config = load_config(tmp_path / "config.toml")
    queue_notes(engine, "escalation", "dsl", 12, "dsl")  # Dana's direct messages
    queue_notes(engine, "escalation", "slt", 12, "slt")  # Helen's
    now = utcnow()
    with MockSlack() as slack:
        surface = SlackSurface(web_client("xoxb-test", slack.url))
        assert _crash(engine, config, surface, now, post=5, files=True) == 24 > CLAIM
        later = now + timedelta(minutes=5)
        stats = asyncio.run(deliver_pending(engine, config=config, surfaces=surface, now=later))
        scans = slack.called("conversations.history")
        posts = Counter(p["text"] for p in slack.called("chat.postMessage"))
    assert stats.sent == 24 and set(posts.values()) == {1} and len(posts) == 24  # each went once
    assert sorted(scan["channel"] for scan in scans) == ["DUDANA", "DUHELEN"]  # not one per delivery
    with session_scope(engine) as s:
        oldest = min(d.created_at for d in s.scalars(select(Delivery)))
        rows = list(s.scalars(select(Delivery)))
    assert {scan["oldest"] for scan in scans} == {f"{oldest.timestamp() - 60:.6f}"}  # from the oldest delivery
    assert all(d.status == "sent" and d.reference and d.lease_owner is None for d in rows)


def test_one_pass_scans_a_bounded_number_of_conversations(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recovery, "CONVERSATIONS", 1)
    (tmp_path / "config.toml").write_text(_slack_text(tmp_path))
    config = load_config(tmp_path / "config.toml")
    queue_notes(engine, "escalation", "dsl", 3, "dsl")
    queue_notes(engine, "escalation", "slt", 3, "slt")
    now = utcnow()
    with MockSlack() as slack:
        surface = SlackSurface(web_client("xoxb-test", slack.url))
        _crash(engine, config, surface, now, post=0, files=True)
        later = now + timedelta(minutes=5)
        first = asyncio.run(deliver_batch(engine, config=config, surfaces=surface, now=later, fan=False))
        scans = [scan["channel"] for scan in slack.called("conversations.history")]
        again = asyncio.run(deliver_batch(engine, config=config, surfaces=surface, now=later, fan=False))
        both = [scan["channel"] for scan in slack.called("conversations.history")]
        posts = len(slack.called("chat.postMessage"))
    assert scans == ["DUDANA"] and first.sent == 3  # the DSL's first; Helen's wait for the next pass
    assert both == ["DUDANA", "DUHELEN"] and again.sent == 3 and posts == 6
    with session_scope(engine) as s:
        assert {(d.status, d.lease_owner) for d in s.scalars(select(Delivery))} == {("sent", None)}


def test_a_found_digest_gets_the_charts_that_did_not_follow_it(trust: tuple[Config, Engine]) -> None:
    config, engine = trust
    config = config.model_copy(update={"chat": config.chat.model_copy(update={"surface": "slack"})})
    _queue(config, engine, DIGEST_AT)  # two schools' SLT: Helen and Kim
    with MockSlack() as slack:
        surface = SlackSurface(web_client("xoxb-test", slack.url))
        assert _crash(engine, config, surface, DIGEST_AT, post=1, files=False) == 2
        assert not slack.uploads
        later = DIGEST_AT + timedelta(minutes=5)
        stats = asyncio.run(deliver_pending(engine, config=config, surfaces=surface, now=later))
        posts = Counter(p["channel"] for p in slack.called("chat.postMessage"))
        shared = Counter(c["channel_id"] for c in slack.called("files.completeUploadExternal"))
        names = {ch: {f.get("name") for m in msgs for f in m.get("files") or []} for ch, msgs in slack.history.items()}
        uploads = list(slack.uploads.values())
    assert stats.sent == 2 and posts == {"DUHELEN": 1, "DUKIM": 1}  # the found digest was not posted again
    assert shared == {"DUHELEN": 1, "DUKIM": 1} and names == {"DUHELEN": DIGEST_FILES, "DUKIM": DIGEST_FILES}
    assert len(uploads) == 4 and all(u.startswith(PNG) for u in uploads)


def test_a_failed_upload_never_reposts_the_message_and_a_refused_one_is_recorded(
    trust: tuple[Config, Engine],
) -> None:
    config, engine = trust
    config = config.model_copy(update={"chat": config.chat.model_copy(update={"surface": "slack"})})
    _queue(config, engine, DIGEST_AT)
    with MockSlack() as slack:
        surface = SlackSurface(web_client("xoxb-test", slack.url))
        slack.refuse["files.getUploadURLExternal"] = (500, 2)  # both digests' uploads fail: Slack is down
        first = asyncio.run(deliver_pending(engine, config=config, surfaces=surface, now=DIGEST_AT))
        slack.refuse["files.getUploadURLExternal"] = (403, 1)  # then one is refused for good
        later = DIGEST_AT + timedelta(hours=1)  # past the retry backoff
        again = asyncio.run(deliver_pending(engine, config=config, surfaces=surface, now=later))
        posts = Counter(p["channel"] for p in slack.called("chat.postMessage"))
        shared = Counter(c["channel_id"] for c in slack.called("files.completeUploadExternal"))
    assert (first.sent, first.failed) == (0, 2)
    assert again.sent == 2 and posts == {"DUHELEN": 1, "DUKIM": 1}  # looked for, found, not posted again
    assert sum(shared.values()) == 1  # the other school's charts were refused
    with session_scope(engine) as s:
        rows = list(s.scalars(select(Delivery).where(col(Delivery.status) == "sent")))
    assert len(rows) == 2 and all(d.reference for d in rows)
    refused = [d.last_error for d in rows if d.last_error]
    assert len(refused) == 1 and "2 file(s) were not uploaded (volume-by-category.png, on-time-trend.png)" in refused[0]
    assert "refused" in refused[0]


def test_files_refused_for_good_raise_one_health_note_for_the_moderators_without_content(
    trust: tuple[Config, Engine],
) -> None:
    config, engine = trust
    config = config.model_copy(update={"chat": config.chat.model_copy(update={"surface": "slack"})})
    _queue(config, engine, DIGEST_AT)  # two schools' SLT: Helen (Northgate) and Kim (Kirkton)
    with MockSlack() as slack:
        surface = SlackSurface(web_client("xoxb-test", slack.url))
        slack.refuse["files.getUploadURLExternal"] = (403, 1)  # one digest's charts are refused for good
        stats = asyncio.run(deliver_pending(engine, config=config, surfaces=surface, now=DIGEST_AT))
    with session_scope(engine) as s:
        refused = [d for d in s.scalars(select(Delivery)) if d.last_error]
        notes = list(s.scalars(select(Outbox).where(col(Outbox.kind) == "health")))
    assert stats.sent == 2 and len(refused) == 1
    delivery = refused[0]
    assert len(notes) == 1  # for the refused delivery only
    note = notes[0]
    assert (note.school_id, note.audience, note.item_id) == (delivery.school_id, "moderators", None)
    text = json.dumps(note.payload)
    assert f"delivery {delivery.id}" in text and "a digest" in text and "2 file(s)" in text
    assert "volume-by-category.png" in text and "refused" in text
    assert not any(quote in text for quote in TEXTS.values())  # names the files, never what they hold
