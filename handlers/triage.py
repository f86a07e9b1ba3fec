"""Triage: category, needs_reply, escalate (none / slt / dsl) and reasons.

v1 is rules (handlers/rules.py). Precedence follows the cost of a miss:
safeguarding wins over abuse, abuse over media and spam, complaints over
plain questions. The `Classifier` protocol lets a learned model stand beside
the rules without the pipeline knowing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from handlers.rules import FIGURATIVE, RULES

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
    decided_by: str = "rules-v1"

    def as_dict(self) -> dict[str, object]:
        return {
            "category": self.category,
            "needs_reply": self.needs_reply,
            "escalate": self.escalate,
            "reasons": list(self.reasons),
        }


class Classifier(Protocol):
    """Anything that triages text. `classify_many` may batch for speed."""

    name: str

    def classify(self, text: str, *, platform: str | None = None, author: str | None = None) -> Verdict: ...

    def classify_many(self, texts: Iterable[str]) -> list[Verdict]: ...


def verdict_for(category: str, reasons: list[str], decided_by: str = "rules-v1") -> Verdict:
    """Build a verdict whose reply and escalation follow from the category."""
    return Verdict(
        category=category,
        needs_reply=category in NEEDS_REPLY,
        escalate=ESCALATE.get(category, "none"),
        reasons=reasons,
        decided_by=decided_by,
    )


class RuleClassifier:
    """Weighted pattern rules; a category needs THRESHOLD points to win."""

    name = "rules-v1"

    def classify(self, text: str, *, platform: str | None = None, author: str | None = None) -> Verdict:
        cleaned = FIGURATIVE.sub(" ", text or "")
        scores: dict[str, int] = {}
        reasons: dict[str, list[str]] = {}
        for rule in RULES:
            # praise may be figurative ("smashed it"); everything else reads the literal-only text
            if rule.pattern.search(text if rule.category == "praise" else cleaned):
                scores[rule.category] = scores.get(rule.category, 0) + rule.weight
                reasons.setdefault(rule.category, [])
                if rule.reason not in reasons[rule.category]:
                    reasons[rule.category].append(rule.reason)
        for category in PRECEDENCE:
            needed = 1 if category in ("question", "praise") else THRESHOLD
            if scores.get(category, 0) >= needed:
                extra = [r for c in ("safeguarding", "abuse") if c != category for r in reasons.get(c, [])]
                return verdict_for(category, reasons[category] + extra, self.name)
        return verdict_for("other", ["no reply needed: general remark"], self.name)

    def classify_many(self, texts: Iterable[str]) -> list[Verdict]:
        return [self.classify(t) for t in texts]


_default: Classifier | None = None


def default_classifier() -> Classifier:
    global _default
    if _default is None:
        _default = RuleClassifier()
    return _default
