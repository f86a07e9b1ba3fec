"""Triage a DSL can trust: the kinds of language the issue names, learning from
moderator labels, per-school thresholds, and the media rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from hallmonitor.scoring import run_triage_eval
from handlers.actions import perform
from handlers.corpus import OWN_SOURCES, read_training, read_written
from handlers.hybrid import HybridClassifier
from handlers.triage import RuleClassifier, default_classifier
from storage.db import session_scope
from storage.models import Item
from tests.conftest import REPO, SHARED, account_block
from tests.helpers import poll, request

SAT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def hybrid() -> HybridClassifier:
    clf = default_classifier()
    assert isinstance(clf, HybridClassifier)
    return clf


def escalation(clf: HybridClassifier, text: str) -> str:
    return clf.classify(text).escalate


@pytest.mark.parametrize(
    "text",
    [
        "Nobody likes her, someone should make sure she never gets home from that school",  # veiled threat
        "I know where she lives",
        "Mr Wright is pathetic, a spineless little man",  # insult without swearing
        "The PE teacher has a great backside, I'd bend her over",  # sexualised remark about staff
        "The Ahmed family should be kicked off the estate, they bring nothing but dirt",  # discriminatory
    ],
)
def test_abuse_word_lists_miss_escalates(hybrid: HybridClassifier, text: str) -> None:
    assert escalation(hybrid, text) in ("slt", "dsl")


@pytest.mark.parametrize(
    "text",
    [
        "A grown man keeps asking my 10 year old for photos on Snapchat",  # grooming
        "Kill yourself, nobody at that school wants you",  # "kill yourself"
        "My friend's little boy says his stepdad punches him",  # disclosure
        "A boy in Year 5 has been cutting himself in the toilets",  # self-harm
        "Jack in Year 2 lives at 17 Oak Street, his mum leaves him alone",  # child identified with address
        "Some older boys showed the Year 4s videos saying we should kill people of other religions",  # extremism
        "The little girl next door has no food and is left on her own all weekend",  # neglect
    ],
)
def test_safeguarding_goes_to_the_dsl(hybrid: HybridClassifier, text: str) -> None:
    verdict = hybrid.classify(text)
    assert (verdict.category, verdict.escalate) == ("safeguarding", "dsl"), verdict


@pytest.mark.parametrize(
    "text",
    [
        "Bloody brilliant show tonight, well done kids",
        "The kids smashed it at sports day",
        "This homework is killing me",
        "That spelling test was murder, she still got 10/10",
        "Disappointed the trip was cancelled, can we get a refund?",
        "The head is wrong about the phone ban and I'll raise it at the governors' meeting",
    ],
)
def test_figurative_and_friendly_language_is_not_escalated(hybrid: HybridClassifier, text: str) -> None:
    assert escalation(hybrid, text) == "none"


def test_safeguarding_wins_over_abuse(hybrid: HybridClassifier) -> None:
    verdict = hybrid.classify("That useless idiot of a TA grabbed my son by the throat")
    assert verdict.escalate == "dsl"


def test_reasons_are_readable(hybrid: HybridClassifier) -> None:
    verdict = hybrid.classify("An older man has been messaging my daughter asking to meet up")
    assert any("grooming" in r for r in verdict.reasons)


def test_dev_set_targets(hybrid: HybridClassifier) -> None:
    figures = run_triage_eval(SHARED / "eval" / "triage_dev.jsonl", hybrid)
    assert figures["escalation_recall"] >= 0.97
    assert figures["dsl_recall"] >= 0.95
    assert figures["false_escalation_rate"] <= 0.05
    assert figures["needs_reply_accuracy"] >= 0.92


def test_training_data_is_well_formed_and_not_an_evaluation_set() -> None:
    ours = read_training()
    own = [read_written(path, name) for path, name in OWN_SOURCES]
    sizes = [len(ours)] + [len(rows) for rows in own]
    assert all(n >= least for n, least in zip(sizes, (250, 300, 200, 600, 690, 290), strict=True)), sizes
    for i, rows in enumerate(own[1:], 1):  # each later file repeats nothing of the files before it
        assert not {r.text for r in rows} & {r.text for r in ours + [r for f in own[:i] for r in f]}, OWN_SOURCES[i]
    texts = {r.text for r in ours + [r for rows in own for r in rows]}
    for path in (SHARED / "eval" / "triage_dev.jsonl", REPO / "tests" / "data" / "triage_holdout.jsonl"):
        gold = {json.loads(line)["text"] for line in path.open() if line.strip()}
        assert not gold & texts, path
    # Blind sets are compared by machine, never read by a person. Sets written independently share one or two
    # short comments word for word with the training files (tests/data/BLIND.md), never more.
    for path in sorted((REPO / "tests" / "data").glob("triage_blind*.jsonl")):
        gold = {json.loads(line)["text"] for line in path.open() if line.strip()}
        assert len(gold & texts) <= 2, path


def test_per_school_thresholds(write_config, hybrid: HybridClassifier) -> None:  # type: ignore[no-untyped-def]
    config = write_config(
        account_block("blog", ["a.xml"]), extra="\n[schools.triage]\nslt_threshold = 0.99\ndsl_threshold = 0.99\n"
    )
    strict = HybridClassifier(head=hybrid.head)
    strict.configure(config)
    text = "Funny how that teacher always leaves by the back gate. I've noticed."
    assert escalation(hybrid, text) == "slt"
    assert strict.classify(text, school="northgate").escalate == "none"  # model alone cannot reach 0.99
    # clear rule matches escalate whatever the threshold
    assert strict.classify("I know where she lives", school="northgate").escalate == "slt"


def test_moderator_labels_teach_the_school_classifier(
    write_config,
    engine: Engine,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    hybrid: HybridClassifier,
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>c</title><item><guid>1</guid>'
        "<description>Our caretaker Dave is an absolute legend, mad as a box of frogs</description>"
        "</item></channel></rss>"
    )
    config = write_config(account_block("blog", [str(feed)]))
    learner = HybridClassifier(head=hybrid.head)
    learner.configure(config)
    poll(engine, config, now=SAT, classifier=learner)
    with session_scope(engine) as s:
        item = s.scalars(select(Item)).one()
        first = item.category
        perform(s, config=config, request=request("recategorise", item.id, "praise"), now=SAT)
    with session_scope(engine) as s:
        learner.refresh_labels(s)
    verdict = learner.classify("Our caretaker Dave is an absolute legend, mad as a box of frogs!!", school="northgate")
    assert verdict.category == "praise" and "your moderators labelled" in verdict.reasons[0]
    assert first is not None
    # another school's classifier is untouched by this school's labels
    assert "your moderators" not in " ".join(
        learner.classify("Our caretaker Dave is an absolute legend", school="elsewhere").reasons
    )


def test_safeguarding_items_never_keep_media(write_config, engine: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    feed = tmp_path / "feed.xml"
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>c</title>'
        "<item><guid>s</guid><description>A man keeps asking my daughter to send him photos</description>"
        '<media:thumbnail url="https://cdn.example/s.jpg"/></item>'
        "<item><guid>p</guid><description>Lovely photo of the choir, thank you</description>"
        '<media:thumbnail url="https://cdn.example/p.jpg"/></item></channel></rss>'
    )
    config = write_config(account_block("blog", [str(feed)]))
    poll(engine, config, now=SAT)
    with session_scope(engine) as s:
        media = {i.external_id: (i.category, i.media_urls) for i in s.scalars(select(Item).order_by(col(Item.id)))}
    assert media["s"] == ("safeguarding", [])
    assert media["p"][1] == ["https://cdn.example/p.jpg"]


def test_without_the_shipped_head_rules_still_triage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import handlers.triage as triage
    from handlers.head import Head, HeadMissing

    with pytest.raises(HeadMissing, match=r"python -m handlers\.train"):
        Head.load(tmp_path / "absent.npz")
    real = Head.load
    monkeypatch.setattr(Head, "load", classmethod(lambda cls: real(tmp_path / "absent.npz")))
    monkeypatch.setattr(triage, "_default", None)
    clf = triage.default_classifier()
    assert isinstance(clf, RuleClassifier)
    assert clf.classify("I know where she lives").escalate == "slt"
