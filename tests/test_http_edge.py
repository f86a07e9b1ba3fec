# ruff: noqa: F811  (the `config` fixture is imported from test_webhooks and named by each test)
"""The HTTP edge probed as an attacker would: body limits, read timeouts, malformed headers and
bodies, hidden docs, health details, account enumeration (issue 15)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, select

from core.config import Config
from hallmonitor.app import create_app
from hallmonitor.service import Service
from hallmonitor.surfaces import Options, SlackKit, TeamsKit
from handlers.webhooks import prune_processed
from storage.db import session_scope
from storage.models import WebhookEvent
from storage.types import utcnow
from tests.helpers import RecordingSurface, count
from tests.test_webhooks import PAGE, config, feed_event, sign  # noqa: F401 (config is a fixture)

FORM = "form-secret"
ENDPOINTS = ["/slack/events", "/api/messages", "/webhooks/facebook", "/webhooks/generic/form", "/healthz"]


def _limited(cfg: Config, **service: Any) -> Config:
    return cfg.model_copy(update={"service": cfg.service.model_copy(update=service)})


def _app(cfg: Config, engine: Engine) -> Any:
    """The real app with the Slack and Teams routes from the surface registry (Teams with the local opt-in)."""
    service = Service(config=cfg, engine=engine, surface=RecordingSurface())
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        env.setenv("SLACK_SIGNING_SECRET", "slack-secret")
        env.setenv("SLACK_API_URL", "http://127.0.0.1:9/api/")
        kits = [SlackKit(Options()), TeamsKit(Options(teams_without_auth=True))]
    return create_app(service, start_scheduler=False, routers=[kit.router(service) for kit in kits])


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hm.test")


def _calls(app: Any, *requests: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with _client(app) as c:
            out = [await c.request(method, path, **kw) for method, path, kw in requests]
            await app.state.webhooks.drain()
            return out

    return asyncio.run(go())


@pytest.fixture(autouse=True)
def _teams_without_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROSOFT_APP_ID", "")


@pytest.fixture
def served(config: Config, engine: Engine) -> Iterator[int]:
    """The app on a real loopback port (uvicorn in a thread), with a 1 s body read timeout."""
    app = _app(_limited(config, request_read_timeout=timedelta(seconds=1)), engine)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def _raw(port: int, head: str, sent: bytes, wait: float = 5.0) -> tuple[bytes, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as conn:
        conn.sendall(head.encode() + sent)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer, time.monotonic() - started


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_20_mb_body_is_refused_unread_and_unlogged(served: int, path: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    first = b"SECRET-BODY-MARKER" * 3000  # 54 kB of the declared 20 MB; the rest is never sent
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
    answer, took = _raw(served, head, first)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert took < 4  # answered without waiting for the other 19.9 MB
    assert "SECRET-BODY-MARKER" not in caplog.text and len(caplog.text) < 5000


def test_a_stalled_body_is_answered_408(served: int) -> None:
    head = "POST /webhooks/facebook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    answer, took = _raw(served, head, b'{"object":', wait=10)
    assert answer.startswith(b"HTTP/1.1 408") and took < 5, answer[:200]


def test_the_limit_is_configurable_and_holds_for_chunked_bodies(config: Config, engine: Engine) -> None:
    app = _app(_limited(config, max_request_bytes=2048), engine)

    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 1024

    small, declared, chunked = _calls(
        app,
        ("POST", "/webhooks/facebook", {"content": b"x" * 2000}),
        ("POST", "/webhooks/facebook", {"content": b"x" * 3000}),
        ("POST", "/webhooks/generic/form", {"content": chunks()}),
    )
    assert small.status_code == 401 and declared.status_code == 413 and chunked.status_code == 413


def test_bodies_are_not_logged_at_info(config: Config, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    body = json.dumps({"type": "message", "text": "BODY-MARKER " * 100}).encode()
    _calls(_app(config, engine), *[("POST", path, {"content": body}) for path in ENDPOINTS[:-1]])
    assert "BODY-MARKER" not in caplog.text


def test_non_ascii_signatures_and_slack_timestamps_are_4xx(config: Config, engine: Engine) -> None:
    body = feed_event(PAGE, f"{PAGE}_1_1", "hello")
    odd = "sha256=é".encode()
    responses = _calls(
        _app(config, engine),
        ("POST", "/webhooks/facebook", {"content": body, "headers": {"X-Hub-Signature-256": odd}}),
        ("POST", "/webhooks/generic/form", {"content": body, "headers": {"X-Signature-256": odd}}),
        ("GET", "/webhooks/facebook", {"params": {"hub.mode": "subscribe", "hub.verify_token": "vérifié"}}),
        (
            "POST",
            "/slack/events",
            {"content": b"x=1", "headers": {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=ab"}},
        ),
        (
            "POST",
            "/slack/events",
            {"content": b"x=1", "headers": {"X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=é".encode()}},
        ),
        ("POST", "/api/messages", {"json": {"type": "message"}, "headers": {"Authorization": "Bearer é".encode()}}),
    )
    assert [r.status_code for r in responses] == [401, 401, 403, 401, 401, 401]


def test_deeply_nested_json_and_a_list_activity_are_400(config: Config, engine: Engine) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    responses = _calls(
        _app(config, engine),
        ("POST", "/webhooks/facebook", {"content": deep, "headers": {"X-Hub-Signature-256": sign(deep)}}),
        (
            "POST",
            "/webhooks/generic/form",
            {"content": deep, "headers": {"X-Signature-256": sign(deep, "form-secret")}},
        ),
        ("POST", "/api/messages", {"content": deep}),
        ("POST", "/api/messages", {"json": [{"type": "message"}]}),
    )
    assert [r.status_code for r in responses] == [400, 400, 400, 400]


def test_docs_are_off(config: Config, engine: Engine) -> None:
    responses = _calls(_app(config, engine), *[("GET", p, {}) for p in ("/docs", "/redoc", "/openapi.json")])
    assert [r.status_code for r in responses] == [404, 404, 404]


def test_healthz_details_need_the_bearer_token(
    config: Config,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _app(config, engine)
    bare, wrong = _calls(app, ("GET", "/healthz", {}), ("GET", "/healthz", {"headers": {"Authorization": "Bearer x"}}))
    assert bare.json() == {"status": "ok"} and wrong.json() == {"status": "ok"}
    monkeypatch.setenv("HALLMONITOR_HEALTH_TOKEN", "health-secret")
    (right,) = _calls(app, ("GET", "/healthz", {"headers": {"Authorization": "Bearer health-secret"}}))
    assert right.json()["status"] == "ok" and "sources" in right.json() and "version" in right.json()


def test_generic_answers_do_not_reveal_which_accounts_exist(
    config: Config,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = b'{"text": "hello"}'
    app = _app(config, engine)
    first = _calls(
        app,
        ("POST", "/webhooks/generic/nobody", {"content": body, "headers": {"X-Signature-256": sign(body, "x")}}),
        ("POST", "/webhooks/generic/fb", {"content": body, "headers": {"X-Signature-256": sign(body, "x")}}),
        ("POST", "/webhooks/generic/form", {"content": body, "headers": {"X-Signature-256": sign(body, "x")}}),
    )
    monkeypatch.delenv("NORTHGATE_FORM_SECRET")
    unset = _calls(app, ("POST", "/webhooks/generic/form", {"content": body, "headers": {"X-Signature-256": "x"}}))
    answers = {(r.status_code, r.text) for r in first + unset}
    assert answers == {(401, '{"error":"bad signature"}')}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"message": "Can I visit?"}, "text", 'text is missing: each submission needs a "text" field'),
        ([{"text": "ok"}, {"body": "no"}], "[1].text", "[1].text is missing"),
        ({"text": ""}, "text", "text must be a non-empty string"),
        ({"text": "hi", "author": 5}, "author", "author must be a string"),
        ({"text": "hi", "created_at": "yesterday"}, "created_at", "created_at must be ISO 8601"),
        ("just text", "(body)", "each submission must be a JSON object"),
    ],
)
def test_generic_webhook_validates_its_documented_body(
    config: Config,
    engine: Engine,
    body: Any,
    field: str,
    words: str,
) -> None:
    raw = json.dumps(body).encode()
    (answer,) = _calls(
        _app(config, engine),
        ("POST", "/webhooks/generic/form", {"content": raw, "headers": {"X-Signature-256": sign(raw, "form-secret")}}),
    )
    assert answer.status_code == 400 and answer.json()["field"] == field and words in answer.json()["error"]
    assert count(engine, WebhookEvent) == 0


def test_the_same_body_to_two_accounts_is_stored_for_both(
    write_config: Any, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORM_A", "a-secret")
    monkeypatch.setenv("FORM_B", "b-secret")
    block = '\n[[accounts]]\nid = "{0}"\nplatform = "webhook"\nmoderators = ["amira", "ben"]\n'
    block += 'credentials = {{ secret = "{1}" }}\n'
    cfg = write_config(block.format("form-a", "FORM_A"), block.format("form-b", "FORM_B"))
    body = b'{"id": "s1", "text": "When is the open evening?"}'
    a, b, again = _calls(
        _app(cfg, engine),
        ("POST", "/webhooks/generic/form-a", {"content": body, "headers": {"X-Signature-256": sign(body, "a-secret")}}),
        ("POST", "/webhooks/generic/form-b", {"content": body, "headers": {"X-Signature-256": sign(body, "b-secret")}}),
        ("POST", "/webhooks/generic/form-a", {"content": body, "headers": {"X-Signature-256": sign(body, "a-secret")}}),
    )
    assert "queued" in a.json() and "queued" in b.json() and again.json()["duplicate"] is True
    assert count(engine, WebhookEvent) == 2


def test_processed_deliveries_are_pruned_after_the_retention_setting(config: Config, engine: Engine) -> None:
    service = Service(config=config, engine=engine, surface=RecordingSurface())
    now = utcnow()
    with session_scope(engine) as session:
        for n, (status, age) in enumerate([("processed", 31), ("ignored", 40), ("processed", 2), ("failed", 90)]):
            session.add(
                WebhookEvent(
                    platform="facebook",
                    digest=f"d{n}",
                    body=b"{}",
                    status=status,
                    processed_at=now - timedelta(days=age),
                )
            )
    assert prune_processed(service, now=now) == 2  # retention.webhooks defaults to 30 days
    with session_scope(engine) as session:
        left = sorted((e.status, e.digest) for e in session.scalars(select(WebhookEvent)))
    assert left == [("failed", "d3"), ("processed", "d2")]
