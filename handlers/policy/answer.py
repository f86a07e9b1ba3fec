"""Answering a staff question from the school's own policy.

The answer leads with a short verdict where the top clause gives one (No /
Yes / Only if ... / Report it to ...), then quotes the clauses word for word
with their numbers or headings. Where the answer depends on who the question
is about, it says so and offers the choices. Where the policy does not cover
the question it says so plainly and names who to ask; it never presents an
unrelated clause as the answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np

from handlers.policy.abstain import abstain_signals
from handlers.policy.features import DEFINITION_QUESTION
from handlers.policy.index import Hit, PolicyIndex
from handlers.policy.parse import Clause
from handlers.policy.verdict import verdict_for
from handlers.policy.vocabulary import canonical_tokens

LONG_DEFINITION = 400  # a definition longer than this is not quoted unless the question asks what a term means

AUDIENCES = {
    "pupil": "a current pupil",
    "formerpupil": "a former pupil",
    "relative": "a pupil who is a relative of yours",
    "parent": "a parent or carer",
    "colleague": "a colleague",
}
CONTACT = frozenset({"friendrequest", "communicate"})


@dataclass(slots=True)
class Citation:
    clause: str
    heading: str
    text: str

    @classmethod
    def of(cls, clause: Clause) -> Citation:
        heading = clause.heading + (f" — {clause.lead}" if clause.lead else "")
        return cls(clause=clause.label, heading=heading, text=clause.text)


@dataclass(slots=True)
class Answer:
    answer: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    verdict: str | None = None
    choices: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _audience(question: str) -> set[str]:
    return set(canonical_tokens(question)) & AUDIENCES.keys()


def _choices(index: PolicyIndex, question: str, top: Clause) -> list[dict[str, str]]:
    """Contact questions that do not say who: offer each audience the policy treats differently."""
    tokens = set(canonical_tokens(question))
    if not (tokens & CONTACT) or _audience(question):
        return []
    out = []
    follow_ups = {token: f"{question.rstrip(' ?')} — with {phrase}?" for token, phrase in AUDIENCES.items()}
    index.prepare(list(follow_ups.values()))
    for token, phrase in AUDIENCES.items():
        follow_up = follow_ups[token]
        about = [h for h in index.search(follow_up, k=15) if token in index.tf[h.index]]
        if about:  # the policy says something about this audience
            out.append({"audience": phrase, "question": follow_up, "clause": index.clauses[about[0].index].label})
    return out if len({c["clause"] for c in out}) > 1 else []


def _distinct(index: PolicyIndex, hits: list[Hit], k: int) -> list[Clause]:
    """Top clauses without repeating a clause and its own parent or child."""
    chosen: list[Clause] = []
    for hit in hits:
        clause = index.clauses[hit.index]
        related = any(c.label == clause.parent or c.parent == clause.label for c in chosen)
        if not related and clause not in chosen:
            chosen.append(clause)
        if len(chosen) == k:
            break
    return chosen


def uncovered(index: PolicyIndex, question: str) -> tuple[float, list[Hit]]:
    """The fitted abstainer's probability that nothing here answers the question, and the ranked clauses."""
    query, x = index.matrix(question)
    scores = x @ index.model.weights + index.model.bias
    order = np.argsort(-scores)[:15]
    hits = [Hit(int(i), float(scores[i]), float(query.words[i]), float(query.dense[i])) for i in order]
    return index.model.p_uncovered(abstain_signals(scores, x, query)), hits


def should_abstain(index: PolicyIndex, question: str) -> bool:
    return uncovered(index, question)[0] >= index.model.threshold


def answer_question(
    index: PolicyIndex,
    question: str,
    *,
    today: date | None = None,
    ask_instead: str = "your headteacher or line manager",
    k: int = 3,
) -> Answer:
    """Answer from this policy only, with verbatim citations in relevance order."""
    question = question.strip()
    document = index.document
    notes = []
    if today and document.overdue(today):
        notes.append(
            f"This policy was due for review by {document.next_review}; check with {ask_instead} "
            "that it is still current."
        )
    p_uncovered, hits = uncovered(index, question) if question else (1.0, [])
    if not question or p_uncovered >= index.model.threshold:
        return Answer(
            answer=f"Your policy does not cover this; ask {ask_instead}.",
            abstained=True,
            notes=notes,
        )
    defining = bool(DEFINITION_QUESTION.search(question))
    quotable = [
        h
        for h in hits
        if defining
        or index.clauses[h.index].role != "definition"
        or len(index.clauses[h.index].text) <= LONG_DEFINITION
    ]
    clauses = _distinct(index, quotable or hits, k)
    top = clauses[0]
    # a verdict only where the model is more confident than at the abstention line: halfway between it and
    # even odds (the class-balanced abstainer's own boundary); between there and the line, clauses but no verdict
    confident = p_uncovered < (0.5 + index.model.threshold) / 2
    verdict = verdict_for(question, _most_specific(index, question, top)) if confident else None
    choices = _choices(index, question, top)
    lines = []
    if choices:
        lines.append("It depends who it is. Choose: " + "; ".join(c["audience"] for c in choices) + ".")
    elif verdict:
        lines.append(verdict)
    lines.append(f"Your policy ({document.title}) says:" if document.title else "Your school's policy says:")
    for clause in clauses:
        lines.append(f'  {_cite_label(clause)}: "{clause.text}"')
    lines += notes
    return Answer(
        answer="\n".join(lines),
        abstained=False,
        citations=[Citation.of(c) for c in clauses],
        verdict=None if choices else verdict,
        choices=choices,
        notes=notes,
    )


def _most_specific(index: PolicyIndex, question: str, top: Clause) -> Clause:
    """For a whole clause with bullets, the bullet that best answers the question gives the verdict."""
    children = [i for i, c in enumerate(index.clauses) if c.parent == top.label]
    if not children:
        return top
    ranked = index.search(question, k=len(index.clauses))
    best = next((h for h in ranked if h.index in children), None)
    return index.clauses[best.index] if best is not None else top


def _cite_label(clause: Clause) -> str:
    return f"clause {clause.label}" if clause.label[:1].isdigit() else clause.label
