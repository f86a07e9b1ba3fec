from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ConfigError
from hallmonitor.cli import main
from monitors.registry import load_config
from tests.conftest import BASE_CONFIG, REPO, account_block


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    return exc.value.problems


def test_example_config_is_valid() -> None:
    config = load_config(REPO / "config.example.toml")
    assert [s.id for s in config.schools] == ["northgate"]
    assert all(len(a.moderators) >= 2 for a in config.accounts)


def test_one_moderator_is_an_error_with_path_and_fix(tmp_path: Path) -> None:
    text = (
        BASE_CONFIG.format(db="x.db")
        + account_block("ok", ["a.xml"])
        + account_block("blog", ["b.xml"]).replace('moderators = ["amira", "ben"]', 'moderators = ["amira"]')
    )
    problems = _problems(tmp_path, text)
    assert any(p.startswith("config.toml: accounts[1].moderators:") and "at least two" in p for p in problems)


def test_unknown_key_bad_enum_and_bad_duration_are_named(tmp_path: Path) -> None:
    text = (BASE_CONFIG.format(db="x.db") + account_block("blog", ["a.xml"], poll_every="soon")).replace(
        'nation = "england"', 'nation = "cornwall"\ncolour = "blue"'
    )
    problems = "\n".join(_problems(tmp_path, text))
    assert "schools[0].nation:" in problems
    assert "schools[0].colour: unknown key" in problems
    assert "accounts[0].poll_every:" in problems and '"5m"' in problems


def test_secrets_must_be_environment_variable_names(tmp_path: Path) -> None:
    text = BASE_CONFIG.format(db="x.db") + account_block("blog", ["a.xml"]) + 'credentials = { token = "EAAB12sec" }\n'
    problems = "\n".join(_problems(tmp_path, text))
    assert "accounts[0].credentials" in problems and "environment variable" in problems


def test_moderators_must_exist_and_hold_the_role(tmp_path: Path) -> None:
    text = BASE_CONFIG.format(db="x.db") + account_block("blog", ["a.xml"]).replace(
        '["amira", "ben"]', '["sam", "zed"]'
    )
    problems = "\n".join(_problems(tmp_path, text))
    assert "zed not listed under [[staff]]" in problems
    assert 'sam lack the "moderator" role' in problems


def test_several_schools_need_school_on_each_entry(tmp_path: Path) -> None:
    second = '\n[[schools]]\nid = "harwell"\nname = "Harwell"\nnation = "wales"\n'
    text = BASE_CONFIG.format(db="x.db") + second + account_block("blog", ["a.xml"])
    problems = "\n".join(_problems(tmp_path, text))
    assert "staff[0].school: required when the file lists several schools" in problems
    fixed = text.replace('roles = ["', 'school = "northgate"\nroles = ["').replace(
        'platform = "rss"', 'platform = "rss"\nschool = "harwell"'
    )
    path = tmp_path / "ok.toml"
    path.write_text(fixed, encoding="utf-8")
    config = load_config(path)
    assert config.school_of(config.accounts[0]).id == "harwell"
    assert config.school_of(config.accounts[0]).nation.value == "wales"


def test_unknown_platform_lists_the_supported_ones(tmp_path: Path) -> None:
    text = BASE_CONFIG.format(db="x.db") + account_block("blog", ["a.xml"]).replace('"rss"', '"myspace"')
    assert any("accounts[0].platform: 'myspace' is not supported; use one of" in p for p in _problems(tmp_path, text))


def test_broken_toml_and_missing_file_are_clear(tmp_path: Path) -> None:
    assert "not valid TOML" in _problems(tmp_path, "[[schools]\nid=")[0]
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_check_config_exits_2_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BASE_CONFIG.format(db="x.db").replace('nation = "england"', 'nation = "mars"'), encoding="utf-8")
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "config.toml: schools[0].nation:" in err and "Traceback" not in err


def test_check_config_command_on_example() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hallmonitor.cli", "check-config", "--config", str(REPO / "config.example.toml")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "OK: 1 school(s), 2 account(s), 4 staff" in out


def test_database_url_prefers_the_environment_and_the_shipped_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    from storage.db import database_url

    assert database_url("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    assert database_url("sqlite:///x.db") == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert database_url("sqlite:///x.db") == "postgresql+psycopg://u@h/db"


FACEBOOK = """
[[accounts]]
id = "fb"
platform = "facebook"
moderators = ["amira", "ben"]
credentials = {{ token = "FB_TOKEN" }}
watch = [{{ url = "{page}" }}]
"""


def test_a_platform_checks_its_watch_targets_at_load_and_credentials_in_check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = BASE_CONFIG.format(db="x.db")
    problems = _problems(tmp_path, base + FACEBOOK.format(page="https://facebook.com/northgate"))
    assert (
        "config.toml: accounts[0].watch[0].url: 'https://facebook.com/northgate' is not a Facebook Page id (digits)"
        in problems
    )
    path = tmp_path / "config.toml"
    path.write_text(base + FACEBOOK.format(page="19292868552"), encoding="utf-8")
    assert load_config(path).accounts[0].platform == "facebook"  # loads: the keys are check-config's business
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "config.toml: accounts[0].credentials.page_token: required; name the environment variable" in err
    assert "config.toml: accounts[0].credentials.token: not a credential this platform uses" in err
