"""The machine contracts of the `hallmonitor` command: one real-process smoke test per command
(`process=True`; `run` is in test_service.py, `check-config` in test_config.py), the rest in-process."""

from __future__ import annotations

import json
from pathlib import Path

from hallmonitor.scoring import read_jsonl, score_triage
from tests.conftest import REPO, SHARED
from tests.helpers import hm

TRIAGE_DEV = SHARED / "eval" / "triage_dev.jsonl"
POLICIES = SHARED / "policies"


def test_triage_jsonl_contract_and_dev_set_escalation() -> None:
    lines = TRIAGE_DEV.read_text(encoding="utf-8")
    run = hm("triage", "--jsonl", stdin=lines)
    assert run.returncode == 0, run.stderr
    out = [json.loads(line) for line in run.stdout.splitlines()]
    gold = read_jsonl(TRIAGE_DEV)
    assert len(out) == len(gold)
    for row in out:
        assert set(row) == {"id", "category", "needs_reply", "escalate", "reasons"}
        assert row["escalate"] in ("none", "slt", "dsl") and isinstance(row["reasons"], list) and row["reasons"]
    figures = score_triage(gold, {r["id"]: r for r in out})
    assert figures["escalation_recall"] >= 0.80
    assert figures["false_escalation_rate"] <= 0.10


def test_triage_accepts_optional_fields_and_reports_bad_lines() -> None:
    stdin = '{"id": "a", "text": "Thank you!", "platform": "facebook", "author": "Jo"}\nnot json\n{"id": "b"}\n'
    run = hm("triage", "--jsonl", stdin=stdin, process=True)
    out = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(out) == 3 and out[0]["category"] == "praise"
    assert out[1]["error"] and out[2]["error"]
    assert run.returncode == 1 and "2 line(s) could not be read" in run.stderr


def test_poll_then_queue_json(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<item><guid>q1</guid><description>When is parents evening?</description></item>"
        "<item><guid>q2</guid><description>Well done everyone</description></item></channel></rss>"
    )
    not_a_feed = tmp_path / "page.html"
    not_a_feed.write_text("<html><body>Log in to continue</body></html>")
    text = (REPO / "config.example.toml").read_text()
    text = text.replace("sqlite:///hallmonitor.db", f"sqlite:///{tmp_path / 'q.db'}")
    text = text.replace("examples/feeds/blog-comments.xml", str(feed))
    text = text.replace("examples/feeds/youtube-channel.xml", str(tmp_path / "missing.xml"))
    text = text.replace("examples/feeds/google-alerts.xml", str(not_a_feed))
    config = tmp_path / "config.toml"
    config.write_text(text)
    run = hm("poll", "--config", str(config), process=True)
    assert run.returncode == 0, run.stderr
    assert "items_new=2" in run.stdout and "failed=2" in run.stdout  # the two bad sources fail, loudly
    assert "no such file" in run.stdout and "not a readable RSS/Atom feed" in run.stdout
    queue = hm("queue", "--json", "--config", str(config), process=True)
    rows = json.loads(queue.stdout)
    assert [(r["category"], r["needs_reply"], r["escalate"]) for r in rows] == [("question", True, "none")]
    assert rows[0]["reply_by"].endswith(("+00:00", "+01:00"))


def test_score_triage_prints_figures() -> None:
    run = hm("score", "triage", "--gold", str(TRIAGE_DEV), "--quiet", process=True)
    assert run.returncode == 0 and "escalation recall" in run.stdout and "false escalation rate" in run.stdout


def test_ask_answers_from_a_policy_file() -> None:
    run = hm(
        "ask", "--policy", str(POLICIES / "harwell.txt"), "Can I accept a friend request from a pupil?", process=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() and "Traceback" not in run.stderr
