"""Cost-sensitive routing, on its own: the DSL route wins, weak rules need the
model, reasons say only what led to the route, school thresholds override."""

from __future__ import annotations

from core.config import TriageConfig
from handlers.route import Limits, Seen, route
from handlers.rules import RuleScores, rule_scores
from handlers.verdict import CATEGORIES

LIMITS = Limits(dsl=0.3, slt=0.3, media=0.4)


def probs(**given: float) -> dict[str, float]:
    rest = (1.0 - sum(given.values())) / (len(CATEGORIES) - len(given))
    return {c: given.get(c, rest) for c in CATEGORIES}


def test_safeguarding_wins_over_insults() -> None:
    rules = rule_scores("that useless idiot of a TA grabbed my son by the throat")
    category, reasons = route(probs(abuse=0.7, safeguarding=0.1), rules, LIMITS)
    assert category == "safeguarding"
    assert "an adult may have physically harmed a child" in reasons
    assert "insulting language" not in reasons  # only what led to the DSL route, plus a plain note
    assert "also insulting or threatening" in reasons


def test_a_weak_rule_escalates_only_with_the_model() -> None:
    rules = rule_scores("we did a project on terrorism in history")
    assert rules.scores == {"safeguarding": 1}
    assert route(probs(other=0.9), rules, LIMITS)[0] == "other"
    assert route(probs(safeguarding=0.2), rules, LIMITS)[0] == "safeguarding"


def test_a_clear_pattern_escalates_unless_the_model_is_sure_there_is_nothing_there() -> None:
    rules = rule_scores("the science test today made me want to die fr")
    assert rules.strong("safeguarding")
    floored = Limits(dsl=0.3, slt=0.3, media=0.4, dsl_rule=0.05)
    assert route(probs(safeguarding=0.06, other=0.6), rules, floored)[0] == "safeguarding"
    assert route(probs(safeguarding=0.01, other=0.9), rules, floored)[0] != "safeguarding"
    assert route(probs(safeguarding=0.01, other=0.9), rules, LIMITS)[0] == "safeguarding"  # no floor: the rule alone
    insulting = rule_scores("that useless idiot of a TA grabbed my son by the throat")
    assert route(probs(safeguarding=0.01, abuse=0.9), insulting, floored)[0] == "safeguarding"  # insults never veto
    assert Limits.of({"dsl": 0.3, "slt": 0.3, "media": 0.4}) == LIMITS  # a head built before floors existed


def test_loose_words_do_not_page_the_dsl() -> None:
    for text in (
        "the homework has gone missing again",
        "he was drunk at the wedding lol",
        "bruise on his knee from football",
    ):
        assert "safeguarding" not in rule_scores(text).scores, text


def test_the_model_reason_says_what_it_read() -> None:
    category, reasons = route(probs(safeguarding=0.8), RuleScores({}, {}), LIMITS, Seen("self_harm", "teen"))
    assert category == "safeguarding"
    assert reasons == ["reads like a young person describing self-harm (model 0.80)"]


def test_school_thresholds_override_only_when_set() -> None:
    assert "dsl_threshold" not in TriageConfig().model_fields_set
    assert TriageConfig(dsl_threshold=0.5).model_fields_set == {"dsl_threshold"}


def test_scoring_counts_false_dsl_pages_and_no_misses_prints_no_text() -> None:
    from hallmonitor.cli import build_parser
    from hallmonitor.scoring import format_triage, score_triage

    gold = [
        {"id": "a", "text": "SECRET one", "category": "abuse", "needs_reply": False, "escalate": "slt"},
        {"id": "b", "text": "SECRET two", "category": "question", "needs_reply": True, "escalate": "none"},
    ]
    got = {
        "a": {"category": "safeguarding", "needs_reply": False, "escalate": "dsl"},
        "b": {"category": "question", "needs_reply": True, "escalate": "none"},
    }
    figures = score_triage(gold, got)
    assert figures["false_dsl_rate"] == 0.5 and figures["escalation_recall"] == 1.0
    assert figures["confusion"] == {"abuse": {"safeguarding": 1}, "question": {"question": 1}}
    text = format_triage(figures, show_misses=False)
    assert "confusion" in text and "SECRET" not in text
    assert "SECRET" in format_triage(figures)
    assert build_parser().parse_args(["score", "triage", "--no-misses"]).no_misses
