"""Cost-sensitive routing: from the head's probabilities and the rule scores
to a category and honest reasons.

A missed disclosure costs most, so the DSL route is tried first and wins
whenever there is a safeguarding signal, even beside insults; then abuse
(SLT), media, spam, and the reply categories. Thresholds per route come
from the build's cross-validation (recall on safeguarding first) unless a
school sets its own. A rule of weight 1 escalates only with the model's
support (half the route's threshold); the model alone escalates to SLT
only when abuse is its likeliest reading. The second look is asked only when
the hashed-feature head is unsure or anything escalating is in view
(`handlers.second_look.asks`); then its probabilities are the ones routed.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.rules import RuleScores

RULE_WEIGHT = 0.35  # how much a rule hit adds to the model's probability for the non-escalating categories
REPLY_CATEGORIES = ("complaint", "question", "praise", "other")
MODEL_REASON = {
    "abuse": "reads like abuse aimed at staff, pupils or families",
    "media": "reads like a media enquiry",
    "spam": "reads like spam",
    "complaint": "reads like a complaint",
    "question": "reads like a question",
    "praise": "reads like praise",
    "other": "general remark; no reply needed",
}
KIND_WORDS = {
    "self_harm": "self-harm",
    "suicidal_ideation": "thoughts of suicide",
    "overdose": "an overdose",
    "neglect": "neglect",
    "domestic_abuse": "domestic abuse",
    "sexual_abuse": "sexual abuse",
    "grooming": "grooming",
    "sextortion": "sextortion",
    "cse": "sexual exploitation",
    "county_lines": "criminal exploitation (county lines)",
    "radicalisation": "radicalisation",
    "forced_marriage": "forced marriage",
    "fgm": "FGM",
    "identified": "a child who can be identified or located",
    "peer_abuse": "peer-on-peer abuse",
    "image_sharing": "images of children being shared",
    "bullying_disclosure": "being bullied",
    "missing_child": "a missing child",
    "whereabouts_court_order": "a child whose whereabouts must stay private",
    "worried_third_party": "a worry about a child's safety",
}
REGISTER_WORDS = {"child": "a child", "teen": "a young person", "parent": "a worried parent", "adult": "someone"}


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-route thresholds on the model's probability. `dsl_rule` and `slt_rule` are the least
    model support a clear pattern (a rule of weight 2) needs to escalate on its own: a pattern
    reads words, not what they are doing in the sentence ("the assembly on county lines",
    "that test made me want to die"), and the model, having read the whole comment, may veto it
    only when it gives safeguarding and abuse together less than this: an insult beside a
    disclosure never lowers the disclosure."""

    dsl: float
    slt: float
    media: float
    spam: float = 0.5
    dsl_rule: float = 0.0
    slt_rule: float = 0.0

    @classmethod
    def of(cls, thresholds: dict[str, float]) -> Limits:
        """From a head's chosen thresholds (older heads have no rule floors)."""
        floors = {k: float(thresholds[k]) for k in ("dsl_rule", "slt_rule") if k in thresholds}
        return cls(float(thresholds["dsl"]), float(thresholds["slt"]), float(thresholds["media"]), **floors)


@dataclass(frozen=True, slots=True)
class Seen:
    """What the head read beyond the category: the likeliest kind of concern and writer."""

    kind: str = ""
    register: str = ""


def safeguarding_reason(seen: Seen, p: float) -> str:
    kind = KIND_WORDS.get(seen.kind, seen.kind.replace("_", " ") or "a possible risk to a child")
    who = REGISTER_WORDS.get(seen.register, "someone")
    return f"reads like {who} describing {kind} (model {p:.2f})"


def route(p: dict[str, float], rules: RuleScores, limits: Limits, seen: Seen = Seen()) -> tuple[str, list[str]]:
    """The category and the reasons for it (only what led to that category)."""

    def because(category: str) -> list[str]:
        reasons = list(rules.reasons.get(category, []))
        if category == "safeguarding" and p[category] >= limits.dsl / 2:
            reasons.append(safeguarding_reason(seen, p[category]))
        elif category != "safeguarding" and p[category] >= 0.2:
            reasons.append(f"{MODEL_REASON[category]} (model {p[category]:.2f})")
        return reasons or [MODEL_REASON.get(category, "general remark")]

    escalating = p["safeguarding"] + p["abuse"]  # a floor vetoes a pattern only when the model reads routine

    def hit(category: str, threshold: float, floor: float) -> bool:
        score = rules.scores.get(category, 0)
        return (
            (score >= 2 and escalating >= floor)
            or p[category] >= threshold
            or (score >= 1 and p[category] >= threshold / 2)
        )

    if hit("safeguarding", limits.dsl, limits.dsl_rule):
        extra = ["also insulting or threatening"] if rules.strong("abuse") or p["abuse"] >= limits.slt else []
        return "safeguarding", because("safeguarding") + extra
    # SLT is paged on the model's word alone only when abuse is its likeliest reading (not, say, 0.3 beside 0.6 other)
    likeliest = max((*REPLY_CATEGORIES, "abuse"), key=lambda c: p[c])
    if hit("abuse", limits.slt, limits.slt_rule) and (rules.scores.get("abuse", 0) or likeliest == "abuse"):
        return "abuse", because("abuse")
    contradicted = rules.strong("praise") or rules.strong("complaint")
    if rules.strong("media") or (p["media"] >= limits.media and (not contradicted or p["media"] >= 0.8)):
        return "media", because("media")
    if rules.strong("spam") or p["spam"] >= limits.spam:
        return "spam", because("spam")
    score = {c: p[c] + RULE_WEIGHT * min(rules.scores.get(c, 0), 2) / 2 for c in REPLY_CATEGORIES}
    best = max(REPLY_CATEGORIES, key=lambda c: score[c])
    return best, because(best)
