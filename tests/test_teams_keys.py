"""Forged Teams tokens while the Bot Framework key endpoint hangs: every request is a quick 401 and
the event loop never stalls (the key fetch runs off-loop, with a timeout, once, then is cached)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from botframework.connector.auth import jwt_token_extractor
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine

from hallmonitor import teams_keys
from hallmonitor.app import create_app
from hallmonitor.service import Service
from hallmonitor.surfaces import Options, TeamsKit
from hallmonitor.teams_keys import KeysUnavailable, OffLoopKeys
from tests.conftest import account_block
from tests.helpers import RecordingSurface


@pytest.fixture
def hanging() -> Iterator[tuple[str, list[int]]]:
    """A key endpoint that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[int] = []
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)
            accepted.append(1)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/.well-known/openidconfiguration", accepted
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


def _forged() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"iss": "https://api.botframework.com", "aud": "app-id", "exp": int(time.time()) + 600}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "forged-key"})


async def _max_lag(stop: asyncio.Event) -> float:
    worst = 0.0
    while not stop.is_set():
        started = time.monotonic()
        await asyncio.sleep(0.01)
        worst = max(worst, time.monotonic() - started - 0.01)
    return worst


def test_concurrent_callers_share_one_fetch_and_a_failure_is_cached(hanging: tuple[str, list[int]]) -> None:
    url, accepted = hanging
    keys = OffLoopKeys(url, timeout_s=0.5)

    async def go() -> tuple[list[Any], float, float]:
        stop = asyncio.Event()
        lag = asyncio.create_task(_max_lag(stop))
        results = await asyncio.gather(*(keys.get("k") for _ in range(20)), return_exceptions=True)
        started = time.monotonic()
        with pytest.raises(KeysUnavailable):
            await keys.get("k")  # refused at once: no new fetch for RETRY_AFTER_S
        again = time.monotonic() - started
        stop.set()
        return results, await lag, again

    results, lag, again = asyncio.run(go())
    assert all(isinstance(r, KeysUnavailable) for r in results)
    assert len(accepted) == 1 and again < 0.05
    assert lag < 0.3  # the loop kept running while the fetch hung (noisy under load; bound is loose)


def test_forged_tokens_get_a_quick_401_while_the_key_endpoint_hangs(
    hanging: tuple[str, list[int]], write_config: Any, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, accepted = hanging
    monkeypatch.setenv("MICROSOFT_APP_ID", "app-id")
    monkeypatch.setenv("MICROSOFT_APP_PASSWORD", "pw")
    monkeypatch.setenv("MICROSOFT_APP_TENANT_ID", "tenant")
    config = write_config(account_block("blog", ["a.xml"]))
    service = Service(config=config, engine=engine, surface=RecordingSurface())
    app = create_app(service, start_scheduler=False, routers=[TeamsKit(Options()).router(service)])
    assert isinstance(jwt_token_extractor.JwtTokenExtractor.get_open_id_metadata("https://x.test/m"), OffLoopKeys)
    shared = OffLoopKeys(url, timeout_s=0.5)  # every metadata URL botbuilder asks for leads to the hanging server
    monkeypatch.setattr(jwt_token_extractor.JwtTokenExtractor, "get_open_id_metadata", staticmethod(lambda _u: shared))
    activity = {"type": "message", "id": "1", "channelId": "msteams", "serviceUrl": "http://127.0.0.1:9/", "text": "hi"}

    async def go() -> tuple[list[int], float, float]:
        stop = asyncio.Event()
        lag = asyncio.create_task(_max_lag(stop))
        started = time.monotonic()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hm.test") as c:
            headers = {"Authorization": f"Bearer {_forged()}"}
            answers = await asyncio.gather(
                *(c.post("/api/messages", json=activity, headers=headers) for _ in range(10))
            )
        took = time.monotonic() - started
        stop.set()
        return [a.status_code for a in answers], took, await lag

    statuses, took, lag = asyncio.run(go())
    assert statuses == [401] * 10
    assert len(accepted) == 1 and took < 5 and lag < 0.3


def test_install_is_idempotent() -> None:
    teams_keys.install()
    teams_keys.install()
    first = jwt_token_extractor.JwtTokenExtractor.get_open_id_metadata("https://x.test/meta")
    assert first is jwt_token_extractor.JwtTokenExtractor.get_open_id_metadata("https://x.test/meta")
