"""Adding a platform is one module (tests/fake_platform.py) and one registry line: it is then
validated in the config, polled, acted on from its item's own watch target, and takes webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy import Engine, select

from core.config import Config
from core.errors import ConfigError
from hallmonitor.app import create_app
from hallmonitor.service import Service
from monitors import registry
from storage.db import session_scope
from storage.models import Audit, Item
from tests.fake_platform import API, ThreadsSource
from tests.helpers import RecordingSurface, act, poll

ACCOUNT = """
[[accounts]]
id = "threads"
platform = "threads"
moderators = ["amira", "ben"]
credentials = {{ token = "THREADS_TOKEN" }}
watch = [{{ url = "{first}" }}, {{ url = "northgate-pta" }}]
"""


@pytest.fixture(autouse=True)
def threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.SOURCES, "threads", ThreadsSource)  # the one registry line
    monkeypatch.setenv("THREADS_TOKEN", "t0ken")
    monkeypatch.setenv("THREADS_APP_SECRET", "threads-secret")


@pytest.fixture
def config(write_config) -> Config:  # type: ignore[no-untyped-def]
    return write_config(ACCOUNT.format(first="northgate"))


def test_its_watch_schema_and_credentials_are_checked(write_config, config: Config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        write_config(ACCOUNT.format(first="Not A Name!"))
    assert "config.toml: accounts[0].watch[0].url: 'Not A Name!' is not a Threads username" in caught.value.problems
    assert registry.credential_problems(config) == []
    bare = config.model_copy(update={"accounts": [config.accounts[0].model_copy(update={"credentials": {}})]})
    assert registry.credential_problems(bare) == [
        "accounts[0].credentials.token: required; name the environment variable that holds it"
    ]


@respx.mock
def test_it_is_polled_and_acted_on_from_the_items_own_watch_target(config: Config, engine: Engine) -> None:
    respx.get(f"{API}/northgate/replies").mock(return_value=httpx.Response(200, json=[]))
    respx.get(f"{API}/northgate-pta/replies").mock(
        return_value=httpx.Response(200, json=[{"id": "r1", "text": "You are all useless idiots"}])
    )
    hide = respx.post(f"{API}/northgate-pta/replies/r1/hide").mock(return_value=httpx.Response(200, json={}))
    summary = poll(engine, config)
    assert summary.failed == 0 and summary.items_stored == 1
    with session_scope(engine) as s:
        item_id = s.scalars(select(Item.id)).one()
    result = act(engine, config, "hide", item_id or 0)
    assert result.ok and result.message == "Hidden on Threads for @northgate-pta." and hide.called
    refused = act(engine, config, "delete", item_id or 0)
    assert not refused.ok and "threads does not let us delete" in refused.message
    with session_scope(engine) as s:
        assert [a.outcome for a in s.scalars(select(Audit))] == ["ok", "refused"]


def test_it_takes_webhooks_at_its_own_route(config: Config, engine: Engine) -> None:
    body = json.dumps({"user": "northgate", "replies": [{"id": "w1", "text": "When is sports day?"}]}).encode()
    signature = "sha256=" + hmac.new(b"threads-secret", body, hashlib.sha256).hexdigest()
    app = create_app(Service(config=config, engine=engine, surface=RecordingSurface()), start_scheduler=False)

    async def go() -> tuple[int, int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hm.test") as c:
            bad = await c.post("/webhooks/threads", content=body, headers={"X-Threads-Signature": "sha256=00"})
            ok = await c.post("/webhooks/threads", content=body, headers={"X-Threads-Signature": signature})
            await app.state.webhooks.drain()
            return bad.status_code, ok.status_code

    assert asyncio.run(go()) == (401, 200)
    with session_scope(engine) as s:
        assert [(i.platform, i.external_id, i.category) for i in s.scalars(select(Item))] == [
            ("threads", "w1", "question")
        ]
