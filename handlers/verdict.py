"""What triage says about a comment, and the protocol every classifier meets.

Categories: question, complaint, praise, abuse, safeguarding, spam, media,
other. Reply and escalation follow from the category: safeguarding goes to
the DSL only, abuse and media enquiries to SLT; questions, complaints and
media enquiries need a reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlmodel import Session

CATEGORIES = ("question", "complaint", "praise", "abuse", "safeguarding", "spam", "media", "other")
NEEDS_REPLY = frozenset({"question", "complaint", "media"})
ESCALATE = {"safeguarding": "dsl", "abuse": "slt", "media": "slt"}


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


OWN_POST = Verdict(
    category="other",
    needs_reply=False,
    escalate="none",
    reasons=["posted by the school's own account: stored for context, never escalated or replied to"],
    decided_by="auto:own-post",
)
