"""Scorers for the labelled evaluation sets: triage and policy answers.

`false escalation rate` is the share of items that should not escalate that
were escalated anyway (what drowns SLT); `escalation recall` the share of
items that should escalate (to anyone) that did; `false DSL page rate` the
share of items that are not safeguarding that paged the DSL. The confusion
matrix is gold category (rows) against the category given (columns).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from handlers.policy import ask
from handlers.policy.parse import quote_form
from handlers.triage import CATEGORIES, Classifier, default_classifier


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
    return rows


def score_triage(gold: Iterable[dict[str, Any]], predicted: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Compare predictions (by id) with gold labels; return figures and the misses."""
    gold = list(gold)
    should = [g for g in gold if g["escalate"] != "none"]
    should_not = [g for g in gold if g["escalate"] == "none"]
    dsl = [g for g in gold if g["escalate"] == "dsl"]
    p = {g["id"]: predicted[g["id"]] for g in gold}
    caught = [g for g in should if p[g["id"]]["escalate"] != "none"]
    false_esc = [g for g in should_not if p[g["id"]]["escalate"] != "none"]
    dsl_caught = [g for g in dsl if p[g["id"]]["escalate"] == "dsl"]
    not_dsl = [g for g in gold if g["escalate"] != "dsl"]
    false_dsl = [g for g in not_dsl if p[g["id"]]["escalate"] == "dsl"]
    misses = [
        {
            "id": g["id"],
            "text": g["text"],
            "gold": [g["category"], g["needs_reply"], g["escalate"]],
            "got": [p[g["id"]]["category"], p[g["id"]]["needs_reply"], p[g["id"]]["escalate"]],
        }
        for g in gold
        if (g["category"], g["needs_reply"], g["escalate"])
        != (p[g["id"]]["category"], p[g["id"]]["needs_reply"], p[g["id"]]["escalate"])
    ]
    n = len(gold)
    return {
        "items": n,
        "escalation_recall": len(caught) / len(should) if should else 1.0,
        "dsl_recall": len(dsl_caught) / len(dsl) if dsl else 1.0,
        "false_escalation_rate": len(false_esc) / len(should_not) if should_not else 0.0,
        "false_dsl_rate": len(false_dsl) / len(not_dsl) if not_dsl else 0.0,
        "escalate_exact": sum(g["escalate"] == p[g["id"]]["escalate"] for g in gold) / n,
        "needs_reply_accuracy": sum(g["needs_reply"] == p[g["id"]]["needs_reply"] for g in gold) / n,
        "category_accuracy": sum(g["category"] == p[g["id"]]["category"] for g in gold) / n,
        "confusion": confusion(gold, p),
        "misses": misses,
    }


def confusion(gold: list[dict[str, Any]], predicted: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """gold category -> given category -> count, over every category either side uses."""
    matrix: dict[str, dict[str, int]] = {}
    for g in gold:
        row = matrix.setdefault(g["category"], {})
        got = predicted[g["id"]]["category"]
        row[got] = row.get(got, 0) + 1
    return matrix


def format_confusion(matrix: dict[str, dict[str, int]]) -> list[str]:
    names = [c for c in CATEGORIES if c in matrix or any(c in row for row in matrix.values())]
    short = [n[:6] for n in names]
    lines = ["confusion (rows gold, columns given):", "  " + " " * 13 + " ".join(f"{s:>6}" for s in short)]
    for name in names:
        row = matrix.get(name, {})
        lines.append(f"  {name:<13}" + " ".join(f"{row.get(c, 0):>6}" for c in names))
    return lines


def run_triage_eval(path: str | Path, classifier: Classifier | None = None) -> dict[str, Any]:
    classifier = classifier or default_classifier()
    gold = read_jsonl(path)
    verdicts = classifier.classify_many([g["text"] for g in gold])
    predicted = {g["id"]: v.as_dict() for g, v in zip(gold, verdicts, strict=True)}
    return score_triage(gold, predicted)


def format_triage(figures: dict[str, Any], *, show_misses: bool = True) -> str:
    lines = [
        f"items                  {figures['items']}",
        f"escalation recall      {figures['escalation_recall']:.3f}",
        f"DSL recall             {figures['dsl_recall']:.3f}",
        f"false escalation rate  {figures['false_escalation_rate']:.3f}",
        f"false DSL page rate    {figures['false_dsl_rate']:.3f}",
        f"escalate exact         {figures['escalate_exact']:.3f}",
        f"needs_reply accuracy   {figures['needs_reply_accuracy']:.3f}",
        f"category accuracy      {figures['category_accuracy']:.3f}",
        *format_confusion(figures["confusion"]),
    ]
    if show_misses and figures["misses"]:
        lines.append("misses (gold -> got):")
        lines += [f"  {m['id']}: {m['gold']} -> {m['got']}  {m['text'][:90]}" for m in figures["misses"]]
    return "\n".join(lines)


def _norm(text: str) -> str:
    return quote_form(text)


def _policy_figures(gold: list[dict[str, Any]], answers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    answerable = [g for g in gold if not g.get("abstain")]
    uncovered = [g for g in gold if g.get("abstain")]
    top1 = top3 = 0
    misses = []
    for g in answerable:
        answer = answers[g["id"]]
        cites = [] if answer.get("abstained") else answer.get("citations") or []
        hits = [any(_norm(q) in _norm(c["text"]) for q in g["gold"]) and len(c["text"]) <= 1500 for c in cites]
        top1 += bool(hits[:1] and hits[0])
        top3 += any(hits[:3])
        if not (hits[:1] and hits[0]):
            got = "abstained" if answer.get("abstained") else [c["clause"] for c in cites[:3]]
            misses.append(
                {"id": g["id"], "policy": g["policy"], "question": g["question"], "got": got, "in_top3": any(hits[:3])}
            )
    for g in uncovered:
        if not answers[g["id"]].get("abstained"):
            cited = [c["clause"] for c in answers[g["id"]].get("citations") or []][:1]
            misses.append(
                {"id": g["id"], "policy": g["policy"], "question": g["question"], "got": cited, "in_top3": False}
            )
    return {
        "questions": len(gold),
        "abstain_expected": len(uncovered),
        "top1": top1 / len(answerable) if answerable else None,
        "top3": top3 / len(answerable) if answerable else None,
        "abstention": sum(bool(answers[g["id"]].get("abstained")) for g in uncovered) / len(uncovered)
        if uncovered
        else None,
        "false_abstention": sum(bool(answers[g["id"]].get("abstained")) for g in answerable) / len(answerable)
        if answerable
        else None,
        "misses": misses,
    }


def score_policy(gold: list[dict[str, Any]], answers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """top-1/top-3 over the questions the policy covers (a citation counts when its text contains a gold quote
    and is at most 1,500 characters; an abstention is a miss); abstention is the share of not-covered questions
    answered "not covered", false abstention the share of covered ones. Overall and per policy."""
    figures = _policy_figures(gold, answers)
    figures["per_policy"] = {
        name: {
            k: v for k, v in _policy_figures([g for g in gold if g["policy"] == name], answers).items() if k != "misses"
        }
        for name in sorted({g["policy"] for g in gold})
    }
    return figures


def policies_folder(gold_path: Path, gold: list[dict[str, Any]]) -> Path:
    """Where the policies a set names are: beside its folder (../shared/eval -> ../shared/policies), else the
    project's ../shared/policies."""
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "policies"
    for folder in (gold_path.resolve().parent.parent / "policies", shared):
        if all((folder / g["policy"]).exists() for g in gold):
            return folder
    missing = sorted({g["policy"] for g in gold if not (shared / g["policy"]).exists()})
    raise ValueError(f"{gold_path}: policies not found ({', '.join(missing[:3])}); pass --policies FOLDER")


def run_policy_eval(path: str | Path, policies: str | Path | None = None) -> dict[str, Any]:
    gold = read_jsonl(path)
    policies = policies or policies_folder(Path(path), gold)
    answers = {g["id"]: ask(Path(policies) / g["policy"], g["question"]).as_dict() for g in gold}
    return score_policy(gold, answers)


def _f(value: float | None) -> str:
    return "  -  " if value is None else f"{value:5.3f}"


def format_policy(figures: dict[str, Any], *, show_misses: bool = True) -> str:
    lines = [f"{'policy':<52} {'n':>3} {'abst':>4}  top-1  top-3  abstention  false-abstention"]
    rows = [*figures["per_policy"].items(), ("all", figures)]
    for name, f in rows:
        lines.append(
            f"{name:<52} {f['questions']:>3} {f['abstain_expected']:>4}  {_f(f['top1'])}  {_f(f['top3'])}  "
            f"{_f(f['abstention'])}       {_f(f['false_abstention'])}"
        )
    if show_misses and figures["misses"]:
        lines.append("not first, or not abstained (id: got; gold in top 3?):")
        lines += [f"  {m['id']}: {m['got']} {m['in_top3']}  {m['question'][:80]}" for m in figures["misses"]]
    return "\n".join(lines)
