"""Triage: category, needs_reply, escalate (none / slt / dsl) and reasons.

One factory, three roles: `handlers.verdict` (what a verdict is, the
`Classifier` protocol), `handlers.rules` (patterns, and the rules-only
fallback), `handlers.hybrid` (the shipped head + rules + moderator labels).
Imports point one way: this module imports them, none of them imports it.
"""

from __future__ import annotations

import logging

from handlers.head import HeadMissing
from handlers.hybrid import HybridClassifier
from handlers.rules import RuleClassifier, RuleScores, rule_scores
from handlers.verdict import CATEGORIES, ESCALATE, NEEDS_REPLY, Classifier, Verdict, verdict_for

__all__ = [
    "CATEGORIES",
    "ESCALATE",
    "NEEDS_REPLY",
    "Classifier",
    "HybridClassifier",
    "RuleClassifier",
    "RuleScores",
    "Verdict",
    "default_classifier",
    "rule_scores",
    "verdict_for",
]

log = logging.getLogger(__name__)

_default: Classifier | None = None


def default_classifier() -> Classifier:
    """The hybrid classifier (shipped head + rules); rules alone if the head cannot be read."""
    global _default
    if _default is None:
        try:
            _default = HybridClassifier()
        except HeadMissing as exc:
            log.warning("triage_head_unavailable falling_back=rules reason=%s", exc)
            _default = RuleClassifier()
    return _default
