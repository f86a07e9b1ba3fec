"""CLI manners (issue 15): exit codes that tell, sentences instead of tracebacks, help for every option."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from sqlmodel import select

from core.config import Config
from hallmonitor.cli import build_parser, main
from storage.db import session_scope
from storage.models import Escalation, Item
from tests.conftest import account_block
from tests.helpers import act, count, poll


def test_every_option_has_help_text() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, sub in [("hallmonitor", parser), *subparsers.choices.items()]
        for action in sub._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction) and not action.help
    ]
    assert missing == []


def test_poll_exits_non_zero_when_a_source_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ok.xml").write_text('<rss version="2.0"><channel><title>t</title></channel></rss>')
    from tests.conftest import BASE_CONFIG

    path = tmp_path / "config.toml"
    path.write_text(BASE_CONFIG.format(db=tmp_path / "hm.db") + account_block("blog", ["ok.xml", "gone.xml"]))
    assert main(["poll", "--config", str(path)]) == 1
    assert "failed" in capsys.readouterr().out
    path.write_text(BASE_CONFIG.format(db=tmp_path / "hm.db") + account_block("blog", ["ok.xml"]))
    assert main(["poll", "--config", str(path)]) == 0


def test_queue_for_an_unknown_school_is_an_error(write_config, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    config = write_config(account_block("blog", ["a.xml"]))
    assert main(["queue", "--school", "nowhere", "--config", str(config.path)]) == 2
    assert "no school has id 'nowhere'" in capsys.readouterr().err


@pytest.mark.parametrize("when", ["9999-12-31T23:00:00+00:00", "0001-01-01T00:00:00+00:00", "1800-01-01T10:00Z"])
def test_deadline_out_of_range_is_a_sentence(when: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deadline", "--received", when]) == 2
    err = capsys.readouterr().err
    assert "outside 2000-2099" in err and "Traceback" not in err


def test_triage_jsonl_names_the_bad_lines(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    stdin = '{"id": "a", "text": "Thank you!"}\n\nnot json\n{"id": "b"}\n'
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(["triage", "--jsonl"]) == 1
    captured = capsys.readouterr()
    assert '"line": 3' in captured.out and "line 3 is not JSON" in captured.out and '"line": 4' in captured.out
    assert "2 line(s) could not be read: line 3, 4" in captured.err


def test_repeated_replied_and_escalate_say_it_was_already_done(
    tmp_path: Path,
    write_config,
    engine,  # type: ignore[no-untyped-def]
) -> None:
    feed = tmp_path / "f.xml"
    feed.write_text(
        '<rss version="2.0"><channel><title>t</title>'
        "<item><guid>q</guid><description>When is parents evening?</description></item></channel></rss>"
    )
    config: Config = write_config(account_block("blog", [str(feed)]))
    poll(engine, config)
    with session_scope(engine) as s:
        item_id = s.exec(select(Item)).one().id
    first, again = act(engine, config, "mark_replied", item_id), act(engine, config, "mark_replied", item_id)
    assert "Marked replied" in first.message and again.message.startswith("Already marked replied at")
    up, up_again = act(engine, config, "escalate", item_id), act(engine, config, "escalate", item_id)
    assert "Escalated to SLT" in up.message and up_again.message.startswith("Already escalated to SLT at")
    assert count(engine, Escalation) == 1


COMMANDS = [
    "run",
    "poll",
    "check-config",
    "doctor",
    "backup",
    "restore",
    "queue",
    "triage",
    "deadline",
    "ask",
    "score",
    "policy",
    "report",
    "export",
    "audit",
    "hold",
    "subject-access",
    "erase",
    "purge",
]


def test_help_through_the_installed_command_lists_every_command_in_order() -> None:
    script = Path(sys.executable).parent / "hallmonitor"  # the console script pip made from [project.scripts]
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("usage: hallmonitor ") and "{" + ",".join(COMMANDS) + "}" in done.stdout
    again = subprocess.run(
        [sys.executable, "-m", "hallmonitor.cli", "deadline", "--help"], capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0 and again.stdout.startswith("usage: hallmonitor deadline ")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_through_the_entry_point(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The `hallmonitor` console script's own target, loaded as pip's script loads it."""
    (entry,) = entry_points(group="console_scripts", name="hallmonitor")
    with pytest.raises(SystemExit) as exit_:
        entry.load()([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith(f"usage: hallmonitor {command} ") and "options:" in out
