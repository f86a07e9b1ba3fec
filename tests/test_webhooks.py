"""Webhooks against the running app: signatures, store-then-process, duplicates, unknown pages, retries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from hallmonitor.app import create_app
from hallmonitor.service import Service
from storage.db import session_scope
from storage.models import Item, Outbox, WebhookEvent
from storage.types import utcnow
from tests.helpers import RecordingSurface, count, post_and_drain

PAGE = "19292868552"
SECRET = "meta-app-secret"


@pytest.fixture
def config(write_config, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("META_APP_SECRET", SECRET)
    monkeypatch.setenv("META_VERIFY_TOKEN", "verify-me")
    monkeypatch.setenv("NORTHGATE_FB_TOKEN", "page-token")
    monkeypatch.setenv("NORTHGATE_FORM_SECRET", "form-secret")
    return write_config(f"""
[[accounts]]
id = "fb"
platform = "facebook"
moderators = ["amira", "ben"]
credentials = {{ page_token = "NORTHGATE_FB_TOKEN" }}
watch = [{{ url = "{PAGE}", kind = "comment" }}]

[[accounts]]
id = "form"
platform = "webhook"
name = "Website contact form"
moderators = ["amira", "ben"]
credentials = {{ secret = "NORTHGATE_FORM_SECRET" }}
watch = [{{ url = "inbound", kind = "message" }}]
""")


def feed_event(page: str, comment_id: str, message: str) -> bytes:
    return json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": page,
                    "time": 1763718000,
                    "changes": [
                        {
                            "field": "feed",
                            "value": {
                                "item": "comment",
                                "verb": "add",
                                "comment_id": comment_id,
                                "post_id": f"{page}_1",
                                "parent_id": f"{page}_1",
                                "message": message,
                                "created_time": 1763718000,
                                "from": {"id": "998877", "name": "A Parent"},
                                "post": {"permalink_url": "https://facebook.com/p/1"},
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Client(httpx.AsyncClient):
    """The app's HTTP client; `drain()` waits for queued webhook processing."""

    async def drain(self) -> None:
        await self.app.state.webhooks.drain()


def client(config, engine: Engine) -> Client:  # type: ignore[no-untyped-def]
    service = Service(config=config, engine=engine, surface=RecordingSurface())
    app = create_app(service, start_scheduler=False)
    c = Client(transport=httpx.ASGITransport(app=app), base_url="http://hm.test")
    c.app = app  # type: ignore[attr-defined]
    return c


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_meta_handshake(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    async def go() -> tuple[httpx.Response, httpx.Response]:
        async with client(config, engine) as c:
            ok = await c.get(
                "/webhooks/facebook",
                params={"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "12345"},
            )
            bad = await c.get(
                "/webhooks/facebook",
                params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "12345"},
            )
            return ok, bad

    ok, bad = run(go())
    assert (ok.status_code, ok.text) == (200, "12345") and bad.status_code == 403


def test_signed_comment_is_stored_once_and_triaged(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    body = feed_event(PAGE, f"{PAGE}_1_42", "The head is a clueless idiot")

    async def go() -> list[httpx.Response]:
        async with client(config, engine) as c:
            headers = {"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"}
            responses = [await c.post("/webhooks/facebook", content=body, headers=headers) for _ in range(2)]
            await c.drain()
            return responses

    first, again = run(go())
    assert first.status_code == 200 and first.json()["queued"]
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert count(engine, WebhookEvent) == 1 and count(engine, Item) == 1
    from storage.db import session_scope

    with session_scope(engine) as s:
        item = s.scalars(select(Item)).one()
    assert (item.platform, item.author, item.category, item.escalate) == ("facebook", "A Parent", "abuse", "slt")
    assert count(engine, Outbox, col(Outbox.kind) == "escalation") == 1


def test_bad_signature_is_401_and_nothing_is_stored(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    body = feed_event(PAGE, f"{PAGE}_1_43", "hello")

    async def go() -> list[httpx.Response]:
        async with client(config, engine) as c:
            return [
                await c.post("/webhooks/facebook", content=body, headers={"X-Hub-Signature-256": sign(body, "wrong")}),
                await c.post("/webhooks/facebook", content=body),
                await c.post("/webhooks/facebook", content=body + b" ", headers={"X-Hub-Signature-256": sign(body)}),
            ]

    assert [r.status_code for r in run(go())] == [401, 401, 401]
    assert count(engine, WebhookEvent) == 0 and count(engine, Item) == 0


def test_unknown_pages_are_answered_200_and_logged(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    body = feed_event("555000", "555000_1_1", "hello from another page")

    response = post_and_drain(config, engine, "/webhooks/facebook", body, {"X-Hub-Signature-256": sign(body)})
    assert response.status_code == 200
    assert count(engine, WebhookEvent, col(WebhookEvent.status) == "ignored") == 1
    assert count(engine, Item) == 0 and count(engine, WebhookEvent) == 1


def test_a_crash_mid_processing_loses_nothing(config, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from handlers import pipeline
    from handlers.webhooks import retry_pending

    real = pipeline.ingest

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    monkeypatch.setattr(pipeline, "ingest", crash)
    body = feed_event(PAGE, f"{PAGE}_1_44", "When is the nativity?")

    response = post_and_drain(config, engine, "/webhooks/facebook", body, {"X-Hub-Signature-256": sign(body)})
    assert response.status_code == 200
    assert count(engine, Item) == 0 and count(engine, WebhookEvent, col(WebhookEvent.status) == "pending") == 1
    monkeypatch.setattr(pipeline, "ingest", real)
    service = Service(config=config, engine=engine, surface=RecordingSurface())
    later = utcnow() + timedelta(hours=1)  # past the retry backoff
    assert asyncio.run(retry_pending(service, now=later)) == 1  # the webhook worker does this
    assert count(engine, Item) == 1


def test_generic_webhook_is_signed_and_creates_items(config, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps(
        [
            {"id": "f1", "text": "Can I visit the school before applying?", "author": "Jo"},
            {"id": "f2", "text": "A man keeps asking my son for photos"},
        ]
    ).encode()

    async def go() -> list[httpx.Response]:
        async with client(config, engine) as c:
            responses = [
                await c.post("/webhooks/generic/form", content=body, headers={"X-Signature-256": sign(body, "nope")}),
                await c.post(
                    "/webhooks/generic/form", content=body, headers={"X-Signature-256": sign(body, "form-secret")}
                ),
                await c.post("/webhooks/generic/fb", content=body, headers={"X-Signature-256": sign(body, "x")}),
            ]
            await c.drain()
            return responses

    bad, ok, wrong_account = run(go())
    assert bad.status_code == 401 and ok.status_code == 200 and wrong_account.status_code == 401
    from storage.db import session_scope

    with session_scope(engine) as s:
        items = {i.external_id: (i.kind, i.category, i.escalate) for i in s.scalars(select(Item))}
    assert items == {"f1": ("message", "question", "none"), "f2": ("message", "safeguarding", "dsl")}


def test_a_delivery_that_keeps_failing_is_given_up_and_the_moderators_are_told(  # type: ignore[no-untyped-def]
    config, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers import pipeline
    from handlers.webhooks import MAX_ATTEMPTS, retry_pending

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    monkeypatch.setattr(pipeline, "ingest", crash)
    secret = "A man keeps messaging my daughter and says it is our secret"
    body = feed_event(PAGE, f"{PAGE}_1_45", secret)

    post_and_drain(config, engine, "/webhooks/facebook", body, {"X-Hub-Signature-256": sign(body)})
    service = Service(config=config, engine=engine, surface=RecordingSurface())
    for attempt in range(2, MAX_ATTEMPTS + 1):  # the worker retrying, each time past the backoff
        asyncio.run(retry_pending(service, now=utcnow() + timedelta(hours=attempt)))
    with session_scope(engine) as s:
        events = list(s.scalars(select(WebhookEvent)))
        notes = list(s.scalars(select(Outbox).where(col(Outbox.kind) == "health")))
    assert [(e.status, e.attempts) for e in events] == [("failed", MAX_ATTEMPTS)]
    assert len(notes) == 1 and notes[0].audience == "moderators" and notes[0].school_id == "northgate"
    told = json.dumps(notes[0].payload)
    assert f"number {events[0].id}" in told and "no longer retried" in told
    assert "daughter" not in told and "secret" not in told  # names the delivery, never its content
    asyncio.run(retry_pending(service, now=utcnow() + timedelta(days=1)))  # nothing more is tried or told
    assert count(engine, Outbox, col(Outbox.kind) == "health") == 1
