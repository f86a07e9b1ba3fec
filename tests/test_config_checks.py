"""check-config catches what would break at run time, every problem in one run, in plain sentences.

Each case here printed OK (rc 0) before (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from hallmonitor.checks import readiness_problems
from hallmonitor.cli import main
from monitors.registry import load_config
from tests.conftest import BASE_CONFIG, account_block

SLACK_ENV = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "s"}


def _write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_config(_write(tmp_path, text))
    return exc.value.problems


def _check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(["check-config", "--config", str(_write(tmp_path, text))])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


def _feed(tmp_path: Path) -> str:
    feed = tmp_path / "feed.xml"
    feed.write_text("<rss/>")
    return str(feed)


def test_a_school_without_a_dsl_is_refused(tmp_path: Path) -> None:
    text = BASE_CONFIG.format(db="x.db").replace('roles = ["dsl"]', 'roles = ["slt"]')
    problems = _problems(tmp_path, text + account_block("blog", ["a.xml"]))
    assert any(p.startswith("config.toml: schools[0]:") and "no designated safeguarding lead" in p for p in problems)
    assert any('roles = ["dsl"]' in p for p in problems)


def test_slack_without_tokens_chat_ids_or_channel_lists_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = BASE_CONFIG.format(db="x.db").replace('surface = "console"', 'surface = "slack"')
    text += account_block("blog", [_feed(tmp_path)])
    rc, out = _check(tmp_path, text, capsys)
    assert rc == 2
    assert 'chat.surface: "slack" needs the environment variable(s) SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET' in out
    for i, person in enumerate(["amira", "ben", "helen", "dana", "sam"]):
        assert f"staff[{i}].slack_user: {person!r} has no Slack id" in out
    assert "accounts[0].channel.slack: account 'blog' has no Slack channel" in out


def test_slack_fully_wired_is_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SLACK_ENV.items():
        monkeypatch.setenv(key, value)
    text = BASE_CONFIG.format(db="x.db").replace('surface = "console"', 'surface = "slack"')
    text = text.replace('roles = ["', 'slack_user = "U1"\nroles = ["')
    text += account_block("blog", [_feed(tmp_path)]) + 'channel = { slack = "C1" }\n'
    assert readiness_problems(load_config(_write(tmp_path, text))) == []


def test_teams_without_tokens_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = BASE_CONFIG.format(db="x.db").replace('surface = "console"', 'surface = "teams"')
    text = text.replace('roles = ["', 'teams_user = "aad"\nroles = ["')
    text += account_block("blog", [_feed(tmp_path)]) + 'channel = { teams = "19:x@thread.tacv2" }\n'
    rc, out = _check(tmp_path, text, capsys)
    assert rc == 2
    assert (
        'config.toml: chat.surface: "teams" needs the environment variable(s) MICROSOFT_APP_ID, '
        "MICROSOFT_APP_PASSWORD; set them in the service's environment file (README: Deployment)"
    ) in out
    assert (
        readiness_problems(
            load_config(tmp_path / "config.toml"), env={"MICROSOFT_APP_ID": "a", "MICROSOFT_APP_PASSWORD": "p"}
        )
        == []
    )


def test_missing_policy_and_missing_local_feed_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = BASE_CONFIG.format(db="x.db").replace('nation = "england"', 'nation = "england"\npolicy = "policy.txt"')
    rc, out = _check(tmp_path, text + account_block("blog", ["feeds/missing.xml"]), capsys)
    assert rc == 2
    assert f"schools[0].policy: no file at {tmp_path / 'policy.txt'}" in out
    assert f"accounts[0].watch[0].url: no feed file at {tmp_path / 'feeds' / 'missing.xml'}" in out
    (tmp_path / "policy.txt").write_text("1. Policy\n1.1 Be kind.\n")
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "missing.xml").write_text("<rss/>")
    rc, out = _check(tmp_path, text + account_block("blog", ["feeds/missing.xml"]), capsys)
    assert rc == 0 and "OK" in out


def test_credentials_must_be_set_and_webhooks_need_a_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = BASE_CONFIG.format(db="x.db") + account_block("blog", [_feed(tmp_path)])
    text += '\n[[accounts]]\nid = "form"\nplatform = "webhook"\nmoderators = ["amira", "ben"]\n'
    text += 'credentials = { secret = "FORM_SECRET" }\n'
    text += '\n[[accounts]]\nid = "fb"\nplatform = "facebook"\nmoderators = ["amira", "ben"]\nwatch = ["123"]\n'
    text += 'credentials = { page_token = "NORTHGATE_FB_TOKEN" }\n'
    rc, out = _check(tmp_path, text, capsys)
    assert rc == 2
    assert "accounts[1].credentials.secret: the environment variable FORM_SECRET is not set" in out
    assert "accounts[2].credentials.page_token: the environment variable NORTHGATE_FB_TOKEN is not set" in out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", '5 has no unit; write "5s" for seconds, "5m" for minutes or "5h" for hours'),
        ("-5", '-5 has no unit; write "-5s"'),
        ('"-5m"', "'-5m' must be longer than zero"),
        ('"0s"', "'0s' must be longer than zero"),
        ('"5s"', '"5s" is out of range; use between "30s" and "7d"'),
        ('"30d"', '"30d" is out of range; use between "30s" and "7d"'),
    ],
)
def test_durations_need_units_and_sane_bounds(tmp_path: Path, value: str, expected: str) -> None:
    text = BASE_CONFIG.format(db="x.db") + account_block("blog", ["a.xml"]).replace('poll_every = "5m"', "")
    text += f"poll_every = {value}\n"
    problems = _problems(tmp_path, text)
    assert any(p.startswith("config.toml: accounts[0].poll_every: " + expected) for p in problems), problems


def test_tick_zero_and_retention_without_units(tmp_path: Path) -> None:
    text = BASE_CONFIG.format(db="x.db").replace('tick = "1s"', 'tick = "0s"')
    text = text.replace('nation = "england"', 'nation = "england"\nretention = { webhooks = 30 }')
    problems = "\n".join(_problems(tmp_path, text + account_block("blog", ["a.xml"])))
    assert "service.tick: '0s' must be longer than zero" in problems
    assert 'schools[0].retention.webhooks: 30 has no unit; write "30s"' in problems


def test_several_mistakes_keep_every_cross_check(tmp_path: Path) -> None:
    text = (
        BASE_CONFIG.format(db="x.db")
        .replace('roles = ["dsl"]', 'roles = ["slt"]')
        .replace('tick = "1s"', "tick = 1")
        .replace('nation = "england"', 'nation = "cornwall"')
    )
    text += account_block("blog", ["a.xml"], poll_every="soon").replace('["amira", "ben"]', '["amira", "zed"]')
    text += account_block("news", ["b.xml"]).replace('["amira", "ben"]', '["sam"]')
    problems = "\n".join(_problems(tmp_path, text))
    for expected in (
        "service.tick: 1 has no unit",
        "schools[0].nation: must be one of",
        "accounts[0].poll_every: 'soon' is not a duration",
        "schools[0]: school 'northgate' has no designated safeguarding lead",
        "accounts[0].moderators: zed not listed under [[staff]]",
        'accounts[1].moderators: sam lack the "moderator" role',
        "accounts[1].moderators: account 'news' names 1 moderator(s)",
    ):
        assert expected in problems, problems


def test_a_bad_staff_entry_is_not_reported_again_as_unknown(tmp_path: Path) -> None:
    text = BASE_CONFIG.format(db="x.db").replace('name = "Amira Khan"', 'name = "Amira Khan"\nemail = 7')
    problems = _problems(tmp_path, text + account_block("blog", ["a.xml"]))
    assert problems == ['config.toml: staff[0].email: must be text in quotes, like "example"']


def test_messages_are_sentences_not_library_text(tmp_path: Path) -> None:
    text = BASE_CONFIG.format(db="x.db").replace("tick =", 'max_concurrent_polls = "eight"\ntick =')
    text = text.replace('id = "sam"', 'id = "Siân Jones"')
    problems = "\n".join(_problems(tmp_path, text + account_block("blog", ["a.xml"])))
    assert "service.max_concurrent_polls: must be a whole number, like 8" in problems
    assert "staff[4].id: 'Siân Jones' is not an id" in problems and 'for example "siân-jones"' in problems
    for raw in ("Input should", "pattern", "^[", "type=", "pydantic"):
        assert raw not in problems


def test_staff_ids_allow_real_names_letters(tmp_path: Path) -> None:
    text = BASE_CONFIG.format(db="x.db").replace('id = "amira"', 'id = "siân"').replace('id = "ben"', 'id = "zoë"')
    text += account_block("blog", ["a.xml"]).replace('["amira", "ben"]', '["siân", "zoë"]')
    config = load_config(_write(tmp_path, text))
    assert config.accounts[0].moderators == ["siân", "zoë"]


def test_sqlite_path_is_beside_the_config_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    text = BASE_CONFIG.replace('database_url = "sqlite:///{db}"', 'database_url = "sqlite:///data/hm.db"')
    config = load_config(_write(folder, text + account_block("blog", ["a.xml"])))
    assert config.database() == f"sqlite:///{folder / 'data' / 'hm.db'}"
    monkeypatch.chdir("/")
    assert main(["queue", "--config", str(folder / "config.toml")]) == 0
    assert (folder / "data" / "hm.db").exists()


def test_a_misspelt_facebook_credential_is_caught_before_polling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = BASE_CONFIG.format(db="x.db") + account_block("blog", [_feed(tmp_path)])
    text += '\n[[accounts]]\nid = "fb"\nplatform = "facebook"\nmoderators = ["amira", "ben"]\nwatch = ["123"]\n'
    text += 'credentials = { pagetoken = "NORTHGATE_FB_TOKEN" }\n'
    rc, out = _check(tmp_path, text, capsys)
    assert rc == 2
    assert "accounts[1].credentials.pagetoken: not a credential this platform uses; check its spelling" in out
    assert "accounts[1].credentials.page_token: required" in out


def test_a_school_on_slack_and_teams_needs_both_wired(tmp_path: Path) -> None:
    """A per-school surface list: every listed surface's chat ids and channels are checked."""
    text = BASE_CONFIG.format(db="x.db").replace(
        'nation = "england"', 'nation = "england"\nsurface = ["slack", "teams"]', 1
    )
    text += account_block("blog", [_feed(tmp_path)])
    joined = "\n".join(readiness_problems(load_config(_write(tmp_path, text)), env={}))
    assert "staff[0].slack_user" in joined and "staff[0].teams_user" in joined
    assert "accounts[0].channel.slack" in joined and "accounts[0].channel.teams" in joined
