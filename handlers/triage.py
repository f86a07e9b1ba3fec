"""Triage: category, needs_reply, escalate (none / slt / dsl) and reasons.

v1 is rules (handlers/rules.py). Precedence follows the cost of a miss:
safeguarding wins over abuse, abuse over media and spam, complaints over
plain questions. The `Classifier` protocol lets a learned model stand beside
the rules without the pipeline knowing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlmodel import Session

from handlers.rules import FIGURATIVE, RULES

log = logging.getLogger(__name__)

CATEGORIES = ("question", "complaint", "praise", "abuse", "safeguarding", "spam", "media", "other")
NEEDS_REPLY = frozenset({"question", "complaint", "media"})
ESCALATE = {"safeguarding": "dsl", "abuse": "slt", "media": "slt"}
PRECEDENCE = ("safeguarding", "abuse", "media", "spam", "complaint", "question", "praise")
THRESHOLD = 2


@dataclass(frozen=True, slots=True)
class Verdict:
    category: str
    needs_reply: bool
    escalate: str
    reasons: list[str] = field(default_factory=list)
    decided_by: str = "auto:rules-v1"

    def as_dict(self) -> dict[str, object]:
        return {
            "category": self.category,
            "needs_reply": self.needs_reply,
            "escalate": self.escalate,
            "reasons": list(self.reasons),
        }


class Classifier(Protocol):
    """Anything that triages text. `classify_many` may batch for speed.

    `school` lets a classifier use that school's own moderator labels and
    thresholds; `refresh_labels` loads labels moderators added since last time.
    """

    name: str

    def classify(
        self, text: str, *, platform: str | None = None, author: str | None = None, school: str | None = None
    ) -> Verdict: ...

    def classify_many(self, texts: Sequence[str], *, school: str | None = None) -> list[Verdict]: ...

    def refresh_labels(self, session: Session) -> None: ...


def verdict_for(category: str, reasons: list[str], decided_by: str = "auto:rules-v1") -> Verdict:
    """Build a verdict whose reply and escalation follow from the category."""
    return Verdict(
        category=category,
        needs_reply=category in NEEDS_REPLY,
        escalate=ESCALATE.get(category, "none"),
        reasons=reasons,
        decided_by=decided_by,
    )


@dataclass(slots=True)
class RuleScores:
    scores: dict[str, int]
    reasons: dict[str, list[str]]

    def strong(self, category: str) -> bool:
        return self.scores.get(category, 0) >= THRESHOLD


def rule_scores(text: str) -> RuleScores:
    """Points and reasons per category from the pattern rules."""
    cleaned = FIGURATIVE.sub(" ", text or "")
    scores: dict[str, int] = {}
    reasons: dict[str, list[str]] = {}
    for rule in RULES:
        # praise may be figurative ("smashed it"); everything else reads the literal-only text
        if rule.pattern.search(text if rule.category == "praise" else cleaned):
            scores[rule.category] = scores.get(rule.category, 0) + rule.weight
            found = reasons.setdefault(rule.category, [])
            if rule.reason not in found:
                found.append(rule.reason)
    return RuleScores(scores, reasons)


class RuleClassifier:
    """Weighted pattern rules; a category needs THRESHOLD points to win."""

    name = "auto:rules-v1"

    def classify(
        self, text: str, *, platform: str | None = None, author: str | None = None, school: str | None = None
    ) -> Verdict:
        found = rule_scores(text)
        for category in PRECEDENCE:
            needed = 1 if category in ("question", "praise") else THRESHOLD
            if found.scores.get(category, 0) >= needed:
                extra = [r for c in ("safeguarding", "abuse") if c != category for r in found.reasons.get(c, [])]
                return verdict_for(category, found.reasons[category] + extra, self.name)
        return verdict_for("other", ["no reply needed: general remark"], self.name)

    def classify_many(self, texts: Sequence[str], *, school: str | None = None) -> list[Verdict]:
        return [self.classify(t) for t in texts]

    def refresh_labels(self, session: Session) -> None:
        """Rules do not learn."""


_default: Classifier | None = None


def default_classifier() -> Classifier:
    """The hybrid (rules + MiniLM) classifier; rules alone if the model package is missing."""
    global _default
    if _default is None:
        from handlers.classifier import HybridClassifier
        from handlers.embedding import ModelUnavailable

        try:
            _default = HybridClassifier()
        except ModelUnavailable as exc:
            log.warning("triage_model_unavailable falling_back=rules reason=%s", exc)
            _default = RuleClassifier()
    return _default
