"""`hallmonitor doctor`: live, read-only checks and `--send-test`, end to end against the loopback
mock Slack Web API and the mock Bot Connector (issue 15)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
import respx

from hallmonitor.app import create_app
from hallmonitor.cli import main
from hallmonitor.doctor import token_expiry
from hallmonitor.service import Service
from hallmonitor.surfaces import Options, TeamsKit
from monitors.graph import DEFAULT_GRAPH
from monitors.registry import load_config
from storage.db import open_database
from tests.conftest import BASE_CONFIG, account_block
from tests.mock_connector import MockConnector
from tests.mock_slack import MockSlack

FEED = (
    '<rss version="2.0"><channel><title>c</title>'
    "<item><guid>a</guid><description>Hi</description></item></channel></rss>"
)
CHANNEL = "19:moderators@thread.tacv2"
IDS = {"Amira Khan": "amira", "Ben Okafor": "ben", "Helen Moore": "helen", "Dana Price": "dana", "Sam Teacher": "sam"}


def _config(tmp_path: Path, surface: str, field: str, channel: str) -> Path:
    (tmp_path / "feed.xml").write_text(FEED)
    text = BASE_CONFIG.format(db=tmp_path / "hm.db").replace('surface = "console"', f'surface = "{surface}"')
    for name, ident in IDS.items():
        text = text.replace(f'name = "{name}"', f'name = "{name}"\n{field} = "U-{ident}"')
    text += account_block("blog", ["feed.xml"]) + f'channel = {{ {surface} = "{channel}" }}\n'
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_doctor_send_test_against_the_mock_slack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, "slack", "slack_user", "C0MODS")
    with MockSlack() as mock:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
        monkeypatch.setenv("SLACK_API_URL", mock.url)
        rc = main(["doctor", "--send-test", "--config", str(path)])
        out = capsys.readouterr().out
        posts = mock.called("chat.postMessage")
        opened = mock.called("conversations.open")
    assert rc == 0, out
    assert "OK   accounts blog feed.xml: reached; 1 item(s) readable" in out
    assert "OK   chat slack: connected as hallmonitor in team T1" in out
    assert "doctor: 5 check(s), 0 failed, 0 warning(s)" in out
    assert [p["channel"] for p in posts] == ["C0MODS", "DU-dana"]
    assert "test card" in posts[0]["text"] and "DSL" in posts[1]["text"]
    assert [o["users"] for o in opened] == ["U-dana"]  # the DSL test goes by direct message only
    assert mock.called("auth.test")


def test_doctor_without_send_test_sends_nothing_and_fails_on_a_broken_feed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, "slack", "slack_user", "C0MODS")
    (tmp_path / "feed.xml").write_text("<html>Log in</html>")
    with MockSlack() as mock:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
        monkeypatch.setenv("SLACK_API_URL", mock.url)
        rc = main(["doctor", "--config", str(path)])
        out = capsys.readouterr().out
        assert mock.called("chat.postMessage") == []
    assert rc == 1 and "FAIL accounts blog feed.xml:" in out and "(bad_payload)" in out


def test_doctor_send_test_against_the_mock_bot_connector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MICROSOFT_APP_ID", "")  # local testing: authentication off
    path = _config(tmp_path, "teams", "teams_user", CHANNEL)
    config = load_config(path)
    engine = open_database(config.database())
    with MockConnector() as connector:
        kit = TeamsKit(Options(teams_without_auth=True))
        service = Service(config=config, engine=engine, surfaces={"teams": kit.surface(engine)})
        app = create_app(service, start_scheduler=False, routers=[kit.router(service)])

        async def install() -> None:  # the app added to the channel, and the DSL saying hello in a chat
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hm.test") as c:
                for conversation, who, data in (
                    (
                        {"id": f"{CHANNEL};messageid=1", "conversationType": "channel"},
                        "U-amira",
                        {"channel": {"id": CHANNEL}},
                    ),
                    ({"id": "a:personal-dana", "conversationType": "personal"}, "U-dana", {}),
                ):
                    activity = {
                        "type": "conversationUpdate",
                        "id": "1",
                        "channelId": "msteams",
                        "serviceUrl": connector.url,
                        "from": {"id": f"29:{who}", "aadObjectId": who},
                        "recipient": {"id": "28:bot"},
                        "conversation": conversation,
                        "channelData": data,
                    }
                    assert (await c.post("/api/messages", json=activity)).status_code in (200, 201)

        asyncio.run(install())
        before = len(connector.sent())
        rc = main(["doctor", "--send-test", "--config", str(path)])
        out = capsys.readouterr().out
        sent = [(unquote(p), b) for m, p, b in connector.sent()[before:] if m == "POST"]
    assert "OK   accounts blog channel: test sent by teams" in out
    assert "OK   staff dana (DSL): test sent by teams" in out
    channel = [b for p, b in sent if p == f"/v3/conversations/{CHANNEL}/activities"]
    dm = [b for p, b in sent if p == "/v3/conversations/a:personal-dana/activities"]
    assert len(channel) == 1 and "test card" in json.dumps(channel[0])
    assert len(dm) == 1 and "DSL" in json.dumps(dm[0])
    # with authentication off (local testing) check-config still says production needs the app's tokens
    assert rc == 1 and 'FAIL config: config.toml: chat.surface: "teams" needs' in out


@respx.mock
def test_facebook_token_expiry_warns_14_days_ahead(tmp_path: Path) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    text = BASE_CONFIG.format(db=tmp_path / "hm.db")
    for n, env in enumerate(["SOON", "LATER", "NEVER", "DEAD"]):
        text += f'\n[[accounts]]\nid = "fb{n}"\nplatform = "facebook"\nmoderators = ["amira", "ben"]\n'
        text += f'watch = ["{n}"]\ncredentials = {{ page_token = "{env}" }}\n'
    (tmp_path / "config.toml").write_text(text)
    config = load_config(tmp_path / "config.toml")
    answers = {
        "soon": {"is_valid": True, "expires_at": int((now + timedelta(days=10)).timestamp())},
        "later": {"is_valid": True, "expires_at": int((now + timedelta(days=60)).timestamp())},
        "never": {"is_valid": True, "expires_at": 0},
        "dead": {"is_valid": False, "expires_at": 1},
    }
    respx.get(f"{DEFAULT_GRAPH}/debug_token").mock(
        side_effect=lambda request: httpx.Response(200, json={"data": answers[request.url.params["input_token"]]})
    )

    async def go() -> list[str]:
        async with httpx.AsyncClient() as client:
            env = {"SOON": "soon", "LATER": "later", "NEVER": "never", "DEAD": "dead"}
            return [f.line() for f in await token_expiry(config, client, now=now, env=env)]

    lines = asyncio.run(go())
    assert lines == [
        "WARN accounts fb0 credentials.page_token: expires 2026-12-11 (in 10 day(s)); renew it before then",
        "OK   accounts fb1 credentials.page_token: valid until 2027-01-30",
        "OK   accounts fb2 credentials.page_token: valid; does not expire",
        "FAIL accounts fb3 credentials.page_token: the token is not valid (expired or revoked); "
        "make a new one and set it",
    ]
