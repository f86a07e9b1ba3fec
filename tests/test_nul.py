# ruff: noqa: F811  (the `config` fixture is imported from test_webhooks and named by each test)
"""Text from platforms that holds NUL (a JSON "\\u0000", a UTF-16 body) is stored and read back
exactly, on SQLite and on PostgreSQL (whose text columns refuse NUL), and a webhook body is kept
as the bytes that arrived."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import cast

import httpx
import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, text
from sqlmodel import select

from core.config import Config
from core.domain import NewItem
from handlers import pipeline, webhooks
from storage.db import MIGRATIONS, session_scope
from storage.models import Delivery, Item, Outbox, Source, WebhookEvent
from storage.queries import sync_config
from storage.types import ESCAPE, nul_escape, nul_unescape, utcnow
from tests.helpers import post_and_drain
from tests.test_webhooks import client, config, run, sign  # noqa: F401  (config is a fixture)

AWKWARD = ["", "plain", "\x00", "a\x00b\x00", ESCAPE, ESCAPE + "0", "\x00" + ESCAPE * 3 + "0\x00", "é\U0001f600\x00"]


def _post_form(config: Config, engine: Engine, body: bytes) -> httpx.Response:
    """The website form's webhook, signed, posted and processed."""
    return post_and_drain(
        config, engine, "/webhooks/generic/form", body, {"X-Signature-256": sign(body, "form-secret")}
    )


@pytest.mark.parametrize("value", AWKWARD)
def test_escaping_is_reversible_and_leaves_no_nul(value: str) -> None:
    escaped = nul_escape(value)
    assert "\x00" not in escaped and nul_unescape(escaped) == value


def test_a_nul_in_a_webhook_comment_is_stored_and_read_back_exactly(config: Config, engine: Engine) -> None:
    body = json.dumps(
        [
            {
                "id": "f\u00001",
                "text": "When is\u0000 the nativity?" + ESCAPE,
                "author": "Jo\u0000",
                "url": "https://x/\u0000",
            }
        ]
    ).encode()
    assert b"\\u0000" in body
    assert _post_form(config, engine, body).status_code == 200
    with session_scope(engine) as s:
        event = s.scalars(select(WebhookEvent)).one()
        item = s.scalars(select(Item)).one()
    assert (event.status, event.body) == ("processed", body)
    assert (item.external_id, item.text, item.author, item.url) == (
        "f\x001",
        "When is\x00 the nativity?" + ESCAPE,
        "Jo\x00",
        "https://x/\x00",
    )
    assert item.raw["text"] == "When is\x00 the nativity?" + ESCAPE


def test_a_utf16_body_with_nul_bytes_is_kept_as_it_arrived(config: Config, engine: Engine) -> None:
    """JSON may come in UTF-16, whose bytes are full of NULs; the text used to be decoded as UTF-8."""
    body = json.dumps({"id": "u1", "text": "Can Year 2 wear costumes on Friday?"}).encode("utf-16-le")
    assert b"\x00" in body
    assert _post_form(config, engine, body).status_code == 200
    with session_scope(engine) as s:
        event = s.scalars(select(WebhookEvent)).one()
        item = s.scalars(select(Item)).one()
    assert (event.status, event.body) == ("processed", body)
    assert item.text == "Can Year 2 wear costumes on Friday?"


def test_one_delivery_the_database_refuses_does_not_fail_those_stored_with_it(
    config: Config, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests arriving together share one commit; when it fails, each is stored alone, so only
    the refused one answers 500 (and its platform sends it again)."""
    real = webhooks.store_events

    def refuse_bad(service: webhooks.WebhookRuntime, rows: list[dict[str, object]]) -> list[int | None]:
        if any(b"refuse me" in cast(bytes, row["body"]) for row in rows):
            raise ValueError("the database refused this row")
        return real(service, rows)

    monkeypatch.setattr(webhooks, "store_events", refuse_bad)
    bodies = [json.dumps({"id": f"b{n}", "text": f"comment {n}"}).encode() for n in range(3)]
    bodies.insert(1, json.dumps({"id": "bad", "text": "refuse me"}).encode())

    async def go() -> list[httpx.Response | BaseException]:
        async with client(config, engine) as c:

            async def post(body: bytes) -> httpx.Response:
                headers = {"X-Signature-256": sign(body, "form-secret")}
                return await c.post("/webhooks/generic/form", content=body, headers=headers)

            return await asyncio.gather(*(post(b) for b in bodies), return_exceptions=True)

    answers = run(go())
    assert [type(a).__name__ if isinstance(a, Exception) else a.status_code for a in answers] == [
        200,
        "ValueError",  # the test client re-raises what the app answers with a 500
        200,
        200,
    ]
    with session_scope(engine) as s:
        stored = sorted(json.loads(e.body)["id"] for e in s.scalars(select(WebhookEvent)))
    assert stored == ["b0", "b1", "b2"]


def test_item_and_engine_text_with_nul_round_trips(config: Config, engine: Engine) -> None:
    """Every column where platform text lands: the item's fields and raw payload (the polling path
    goes through the same ingest), a source's cursor and error, a delivery's error and reference."""
    with session_scope(engine) as s:
        sync_config(s, config=config)
    new = NewItem(
        "p\x001",
        "comment",
        "Polled\x00 text",
        author="A\x00",
        title="T\x00",
        url="https://x/\x00",
        raw={"message": "Polled\x00 text"},
    )
    with session_scope(engine) as s:
        stats = pipeline.ingest(s, config=config, account=config.account("fb"), items=[new], now=utcnow())
        source = s.scalars(select(Source)).first()
        assert source is not None
        source.cursor, source.last_error = "c\x00", "bad payload: \x00"
        s.add(source)
        outbox = Outbox(dedupe_key="k", school_id="northgate", kind="health", audience="moderators")
        s.add(outbox)
        s.flush()
        assert outbox.id is not None
        s.add(Delivery(outbox_id=outbox.id, school_id="northgate", surface="slack", target="t", last_error="e\x00"))
        s.add(Delivery(outbox_id=outbox.id, school_id="northgate", surface="teams", target="t", reference="r\x00"))
    assert stats.stored == 1
    with session_scope(engine) as s:
        item = s.scalars(select(Item)).one()
        source = s.scalars(select(Source).where(Source.cursor.is_not(None))).one()  # type: ignore[union-attr]
        errors = {(d.last_error, d.reference) for d in s.scalars(select(Delivery))}
        found = s.scalars(select(Item).where(Item.external_id == "p\x001")).one_or_none()  # queries escape too
    assert (item.external_id, item.text, item.author, item.title, item.url, item.raw["message"]) == (
        "p\x001",
        "Polled\x00 text",
        "A\x00",
        "T\x00",
        "https://x/\x00",
        "Polled\x00 text",
    )
    assert (source.cursor, source.last_error) == ("c\x00", "bad payload: \x00")
    assert errors == {("e\x00", None), (None, "r\x00")}
    assert found is not None


def test_a_long_author_with_nul_fits_its_column(config: Config, engine: Engine) -> None:
    """Escaping makes text longer; a value at its column's limit is cut, never refused."""
    with session_scope(engine) as s:
        sync_config(s, config=config)
    new = NewItem("long", "comment", "hello", author="\x00" * 600)
    with session_scope(engine) as s:
        pipeline.ingest(s, config=config, account=config.account("fb"), items=[new], now=utcnow())
    with session_scope(engine) as s:
        author = s.scalars(select(Item.author)).one()
    assert author is not None and set(author) == {"\x00"} and 256 <= len(author) <= 512


def test_stored_text_bodies_become_their_utf8_bytes(engine: Engine) -> None:
    """Migration 0007 on a database whose body was stored as text (down to 0006 and up again)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
        conn.execute(
            text(
                "INSERT INTO webhookevent (platform, digest, body, received_at, status, attempts)"
                " VALUES ('webhook', 'd', :body, :at, 'pending', 0)"
            ),
            {"body": '{"text": "caf\u00e9"}', "at": utcnow().replace(tzinfo=None)},
        )
        command.upgrade(cfg, "head")
    with session_scope(engine) as s:
        event = s.scalars(select(WebhookEvent)).one()
    assert event.body == '{"text": "caf\u00e9"}'.encode()


def _alembic(conn: object) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def test_downgrading_0007_keeps_bodies_that_are_not_utf8_text_and_upgrading_restores_them(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Down to 0006 (text bodies): UTF-8 text stays text; a body that is not UTF-8, holds a NUL, or
    is text that looks marked is kept as the marker and its base64 (PostgreSQL refused these with
    an error before). Up again: every body is its exact bytes."""
    mark = "hallmonitor-0007-base64:"
    bodies = {
        "text": '{"text": "caf\u00e9"}'.encode(),
        "latin1": '{"text": "caf\u00e9"}'.encode("latin-1"),
        "utf16": json.dumps({"text": "hi"}).encode("utf-16"),
        "nul": b'{"text": "a\x00b"}',
        "looks_marked": (mark + "e30=").encode(),
    }
    with session_scope(engine) as s:
        for name, body in bodies.items():
            s.add(WebhookEvent(platform="webhook", digest=name, body=body))
    with engine.begin() as conn:
        command.downgrade(_alembic(conn), "0006")
        kept = {digest: body for digest, body in conn.execute(text("SELECT digest, body FROM webhookevent"))}
    assert kept["text"] == '{"text": "caf\u00e9"}'
    assert "webhook_bodies_kept_as_base64 count=4" in caplog.text  # and says so
    for name in ("latin1", "utf16", "nul", "looks_marked"):
        assert kept[name].startswith(mark) and base64.b64decode(kept[name].removeprefix(mark)) == bodies[name]
    with engine.begin() as conn:
        command.upgrade(_alembic(conn), "head")
    with session_scope(engine) as s:
        restored = {e.digest: e.body for e in s.scalars(select(WebhookEvent))}
    assert restored == bodies
