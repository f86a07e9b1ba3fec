"""The fitted policy model: rebuilt from the pinned training set, scored per policy, verdicts by modality."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hallmonitor.scoring import format_policy, score_policy
from handlers.policy.abstain import ABSTAIN_FEATURES, abstain_signals
from handlers.policy.document import load_policy
from handlers.policy.features import QueryFeatures
from handlers.policy.fit import TRAIN, choose_threshold
from handlers.policy.fit import main as fit_main
from handlers.policy.index import PolicyIndex
from handlers.policy.parse import Clause
from handlers.policy.verdict import sentences, verdict_for
from tests.conftest import REPO, SHARED


def test_training_sets_span_all_eleven_policies_with_uncovered_questions() -> None:
    for path in TRAIN:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        assert len({r["policy"] for r in rows}) == 11
        assert sum(bool(r.get("abstain")) for r in rows) / len(rows) >= 0.15
        for row in rows:
            assert (SHARED / "policies" / row["policy"]).exists()
    assert len({json.loads(line)["id"] for path in TRAIN for line in path.read_text().splitlines() if line}) >= 700


def test_the_model_file_is_what_a_refit_of_the_training_set_gives() -> None:
    if shutil.which("antiword") is None:  # the training set covers the legacy .doc policy
        pytest.skip("antiword is not installed (apt-get install antiword): the .doc policy cannot be read to refit")
    assert fit_main(["--check"]) == 0


def _clause(text: str, lead: str = "", heading: str = "Personal use") -> Clause:
    return Clause("1", heading, text, "bullet", lead=lead)


def test_verdicts_come_from_the_clauses_own_modality() -> None:
    must_not = _clause("use social media during working hours unless on a designated break.", "employees must not:")
    assert verdict_for("Can I use Facebook during working hours?", must_not) == "No, unless on a designated break."
    may = _clause("Staff may use their own phones in the staff room.")
    assert verdict_for("Can I use my phone in the staff room?", may) == "Yes."
    only = _clause("Photos of pupils may be posted only with written consent from parents.")
    assert verdict_for("Can I post photos of pupils?", only) == "Only with written consent from parents."
    report = _clause("Staff should report any abuse they receive online to the headteacher.")
    assert verdict_for("Someone is abusing me online, who do I tell?", report) == "Report it to the headteacher."
    misfiled = _clause(
        "ensure that where their account is updated by proxy, it remains in line with this policy.",
        "employees must not:",
    )
    assert verdict_for("My partner updates my Facebook for me, can I let them?", misfiled) != "No."
    alias = _clause("set up and/or use an alias social media account to circumvent the policy", "employees must not:")
    assert verdict_for("Can I set up an alias account?", alias) == "No."
    unrelated = _clause("The school minibus must be booked a week ahead.")
    assert verdict_for("Can I accept a friend request from a parent?", unrelated) is None


def test_sentences_never_end_at_an_abbreviation_and_long_conditions_are_not_cut() -> None:
    text = "Staff must not post images, e.g. photos or videos, of pupils. Staff may post news, i.e. events."
    assert sentences(text) == [
        "Staff must not post images, e.g. photos or videos, of pupils.",
        "Staff may post news, i.e. events.",
    ]
    long = _clause("Staff must not post images unless " + "the parent and the headteacher agree in writing " * 4 + ".")
    assert verdict_for("Can I post images?", long) == "No."


def test_score_policy_counts_per_policy_and_abstentions() -> None:
    gold: list[dict[str, Any]] = [
        {"id": "a", "policy": "p.txt", "question": "Q a", "gold": ["friend requests"]},
        {"id": "b", "policy": "p.txt", "question": "Q b", "gold": ["photos"]},
        {"id": "c", "policy": "q.txt", "question": "Q c", "abstain": True, "gold": []},
        {"id": "d", "policy": "q.txt", "question": "Q d", "gold": ["email"]},
    ]
    cite = lambda text: {"clause": "1", "heading": "", "text": text}  # noqa: E731
    answers = {
        "a": {"abstained": False, "citations": [cite("Decline friend requests.")]},
        "b": {"abstained": False, "citations": [cite("Other."), cite("No photos.")]},
        "c": {"abstained": True, "citations": []},
        "d": {"abstained": True, "citations": []},
    }
    figures = score_policy(gold, answers)
    assert (figures["top1"], figures["top3"], figures["abstention"], figures["false_abstention"]) == (
        1 / 3,
        2 / 3,
        1.0,
        1 / 3,
    )
    assert figures["per_policy"]["q.txt"]["false_abstention"] == 1.0
    assert "Q b" in format_policy(figures) and "Q b" not in format_policy(figures, show_misses=False)


def hm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hallmonitor.cli", *args], capture_output=True, text=True, timeout=600)


def test_score_policy_no_misses_prints_figures_only(tmp_path: Path) -> None:
    gold = tmp_path / "gold.jsonl"
    rows = [
        {
            "id": "x1",
            "policy": "northgate.txt",
            "question": "SECRET-QUESTION friend request from a pupil?",
            "gold": ["a"],
        },
        {"id": "x2", "policy": "real-world/breacc-twickenham.pdf", "question": "SECRET-TWO lunch?", "abstain": True},
    ]
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for flags in (["--policies", str(SHARED / "policies")], ["--json"]):  # without --policies: ../shared/policies
        out = hm("score", "policy", "--gold", str(gold), "--no-misses", *flags)
        assert out.returncode == 0, out.stderr
        assert "SECRET" not in out.stdout and "northgate.txt" in out.stdout
    assert "real-world/breacc-twickenham.pdf" in out.stdout and "false_abstention" in out.stdout


def test_policy_show_prints_the_tree_and_warnings() -> None:
    out = hm("policy", "show", str(SHARED / "policies" / "real-world" / "breacc-twickenham.pdf"))
    assert out.returncode == 0, out.stderr
    assert "page furniture" in out.stdout and "We will seek to promote e-safety by" in out.stdout
    missing = hm("policy", "show", "/nonexistent/policy.pdf")
    assert missing.returncode == 2 and "no such policy file" in missing.stderr


def test_every_gold_quote_of_both_training_sets_is_in_a_clause_of_its_policy() -> None:
    """The training golds resolve to clauses as the reader splits them (a quote lost to bad segmentation
    would silently drop a question from the fit)."""
    from handlers.policy.parse import quote_form

    clauses: dict[str, list[str]] = {}
    missing = []
    for path in TRAIN:
        for row in (json.loads(line) for line in path.read_text().splitlines() if line.strip()):
            if row["policy"] not in clauses:
                document = load_policy(SHARED / "policies" / row["policy"])
                clauses[row["policy"]] = [quote_form(c.text) for c in document.clauses]
            for quote in row.get("gold") or []:
                if not any(quote_form(quote) in text for text in clauses[row["policy"]]):
                    missing.append((row["id"], quote))
    assert not missing


def test_the_abstention_line_bounds_the_share_of_covered_questions_told_not_covered() -> None:
    rng = np.random.default_rng(0)
    y = np.array([True] * 50 + [False] * 200)
    p = np.concatenate([rng.uniform(0.3, 1.0, 50), rng.uniform(0.0, 0.7, 200)])
    for bound in (0.0, 0.04, 0.1):
        line = choose_threshold(p, y, bound=bound)
        assert (p[~y] >= line).mean() <= bound
        lower = np.sort(p[~y])[::-1][int(bound * 200)]  # one step lower lets one covered question too many through
        assert (p[~y] >= lower).mean() > bound
        assert (p[y] >= line).mean() > 0


def test_abstain_signals_are_one_value_per_named_signal_and_finite() -> None:
    index = PolicyIndex(load_policy(SHARED / "policies" / "st-matthews.txt"))
    for question in ("Can I accept a friend request from a pupil?", "What is the staff dress code on INSET days?"):
        query, x = index.matrix(question)
        signals = abstain_signals(x @ index.model.weights, x, query)
        assert signals.shape == (len(ABSTAIN_FEATURES),) and np.isfinite(signals).all()
    covered = index.model.p_uncovered(abstain_signals(*_scored(index, "Can I accept a friend request from a pupil?")))
    assert covered < index.model.threshold


def _scored(index: PolicyIndex, question: str) -> tuple[np.ndarray, np.ndarray, QueryFeatures]:
    query, x = index.matrix(question)
    return x @ index.model.weights, x, query


def test_no_training_question_is_an_evaluation_question() -> None:
    """The fit never sees a question of the current blind set, the v1 holdout or the dev set (compared by machine,
    never read by a person). Older blind sets share a few short questions word for word with training sets
    written independently (v3: 5 of 164, v4: 1 of 169; see tests/data/BLIND.md), so they are checked only against
    the training files written after them (v4 and v5, from which a script dropped every evaluation question)."""
    from handlers.policy.parse import normalise

    def questions(path: Path) -> set[str]:
        return {
            normalise(json.loads(line)["question"]).lower() for line in path.read_text().splitlines() if line.strip()
        }

    trained = set().union(*(questions(path) for path in TRAIN))
    data = REPO / "tests" / "data"
    for path in (data / "policy_blind_v5.jsonl", data / "policy_holdout.jsonl", SHARED / "eval" / "policy_dev.jsonl"):
        assert path.exists(), path
        assert not trained & questions(path), path.name
    latest = questions(data / "policy_train_v4.jsonl") | questions(data / "policy_train_v5.jsonl")
    for path in sorted(data.glob("policy_blind*.jsonl")):
        assert not latest & questions(path), path.name
