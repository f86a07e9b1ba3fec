"""Answering a staff question from the school's own policy.

The answer leads with a short verdict where the top clause gives one (No /
Yes / Only if ... / Report it to ...), then quotes the clauses word for word
with their numbers or headings. Where the answer depends on who the question
is about, it says so and offers the choices. Where the policy does not cover
the question it says so plainly and names who to ask; it never presents an
unrelated clause as the answer.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np

from handlers.policy.index import PERMISSION, PROCEDURE, Hit, PolicyIndex
from handlers.policy.parse import Clause
from handlers.policy.vocabulary import canonical_tokens

ABSTAIN_BELOW = 0.25  # best meaning-similarity under which nothing in the policy is about the question
ABSTAIN_OFF_TOPIC_BELOW = 0.42  # ... or under which, with no social media word in the question, it is off topic
DOMAIN = frozenset(
    [
        "socialmedia",
        "friendrequest",
        "post",
        "image",
        "account",
        "communicate",
        "harassment",
        "email",
        "device",
        "password",
        "logo",
        "anonymous",
        "journalist",
        "criticise",
        "discuss",
        "privacy",
        "policy",
        "confidentiality",
        "identifyemployer",
        "radicalisation",
        "safeguarding",
        "policyscope",
        "internet",
        "web",
        "website",
        "blog",
        "network",
        "follow",
        "monitor",
        "disciplinary",
        "workinghours",
        "scheduled",
    ]
)
AUDIENCES = {
    "pupil": "a current pupil",
    "formerpupil": "a former pupil",
    "relative": "a pupil who is a relative of yours",
    "parent": "a parent or carer",
    "colleague": "a colleague",
}
CONTACT = frozenset({"friendrequest", "communicate"})
NEGATIVE = re.compile(
    r"\b(?:must not|should not|shouldn'?t|must never|never|not permitted|not allowed|are not to|decline|do not|don'?t|"
    r"under no circumstances|prohibited|is discouraged|are discouraged|advised not|encouraged not|not be (?:used|published|"
    r"discussed|shared)|will not)\b",
    re.I,
)
EXCEPTION = re.compile(
    r"(?:the only exception[^.]*|unless[^.;]*|except(?:ing)? (?:via|where|when|in)[^.;]*|without (?:the )?(?:prior )?"
    r"permission[^.;]*|only (?:if|when|where|with|via) [^.;]*|provided (?:that )?[^.;]*|would not apply[^.;)]*|"
    r"when there is a genuine need[^.;)]*)",
    re.I,
)
# A question asking about refusing or avoiding something: a prohibition in the policy then means "yes".
REFUSING = re.compile(r"\b(?:decline|refuse|reject|ignore|block|unfollow|avoid|delete|remove|stop|say no)\b", re.I)
CAUTION = re.compile(r"\b(?:caution|cautious|careful|advised to|strongly advised)\b", re.I)
NOT_REQUIRED = re.compile(r"\bnot (?:an? )?(?:expectation|requirement|condition|required|obliged)\b", re.I)
REPORT_TO = re.compile(
    r"\b(?:report(?:ed)?|raised?|alert|inform|notify|refer(?:red)?)\b[^.;]{0,40}?\bto (?:the |their |a )?"
    r"((?:head ?teacher|head of school|designated safeguarding lead|line manager|senior (?:member of staff|leader)|"
    r"school or head ?teacher|police|head of hr|slt)[^.;,]{0,0})",
    re.I,
)


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


def _fragment(match: re.Match[str]) -> str:
    words = match.group(0).strip(" ,;()").split()
    return " ".join(words[:24]) + (" ..." if len(words) > 24 else "")


def verdict_for(question: str, clause: Clause) -> str | None:
    """A short plain-English verdict where the clause gives one; None where it does not."""
    text = clause.text if not clause.lead else f"{clause.lead} {clause.text}"
    tokens = set(canonical_tokens(question))
    if PROCEDURE.search(question) or ("harassment" in tokens and not PERMISSION.search(question)):
        found = REPORT_TO.search(text)
        if found:
            who = found.group(1).strip()
            return f"Report it to the {who}." if not who.lower().startswith("the") else f"Report it to {who}."
    if "obligation" in tokens and NOT_REQUIRED.search(text):
        return "No, it is not required."
    if not PERMISSION.search(question):
        return None
    exception = EXCEPTION.search(text)
    if NEGATIVE.search(text) and REFUSING.search(question):
        return "Yes."  # "Should I decline it?" against "Staff should decline ...": the policy agrees
    if NEGATIVE.search(text):
        return f"No, except: {_fragment(exception)}." if exception else "No."
    if exception:
        return f"Only if: {_fragment(exception)}."
    if CAUTION.search(text):
        return "Be careful: the policy advises caution."
    return None


def _audience(question: str) -> set[str]:
    return set(canonical_tokens(question)) & AUDIENCES.keys()


def _choices(index: PolicyIndex, question: str, top: Clause) -> list[dict[str, str]]:
    """Contact questions that do not say who: offer each audience the policy treats differently."""
    tokens = set(canonical_tokens(question))
    if not (tokens & CONTACT) or _audience(question):
        return []
    out = []
    for token, phrase in AUDIENCES.items():
        follow_up = f"{question.rstrip(' ?')} — with {phrase}?"
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


def should_abstain(index: PolicyIndex, question: str) -> bool:
    if index.vectors is None or index.encoder is None:
        best = float(index.bm25(canonical_tokens(question)).max(initial=0.0))
        return best < 3.0
    best = float(np.max(index.vectors @ index.encoder.encode([question])[0]))
    on_topic = bool(set(canonical_tokens(question)) & DOMAIN)
    return best < ABSTAIN_BELOW or (best < ABSTAIN_OFF_TOPIC_BELOW and not on_topic)


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
    if not question or should_abstain(index, question):
        return Answer(
            answer=f"Your school's social media policy does not cover this. Ask {ask_instead}.",
            abstained=True,
            notes=notes,
        )
    clauses = _distinct(index, index.search(question, k=10), k)
    top = clauses[0]
    verdict = verdict_for(question, _most_specific(index, question, top))
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
