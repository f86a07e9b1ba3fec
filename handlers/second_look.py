"""When the hybrid asks MiniLM for a second look: only where the hashed-feature
head is unsure in a way that could change the route.

The second look is skipped when the first head is at least `SURE` of its
likeliest category and either that category escalates (it is sure of
safeguarding or abuse: the semantic head rarely turns such a route round in
cross-validation) or it gives safeguarding and abuse each less than `QUIET`.
Everything else is asked: an unsure head, or a routine reading with a little
safeguarding or abuse probability beside it. The numbers were chosen on the
build's out-of-fold predictions (`python scripts/second_look_gate.py`, never
on dev or blind items), safeguarding recall first: at these values the
out-of-fold DSL and escalation recall equal those of asking every comment,
while about half of our own (hard) comments are asked instead of 87 %.
"""

from __future__ import annotations

from collections.abc import Mapping

ESCALATING = ("safeguarding", "abuse")
SURE = 0.70  # the first head's top probability at which it may decide alone
QUIET = {"safeguarding": 0.05, "abuse": 0.05}  # ... if it gives these categories less than this each


def asks(p: Mapping[str, float], *, sure: float = SURE, quiet: Mapping[str, float] = QUIET) -> bool:
    """Whether the semantic head should read a comment, from the first head's probabilities."""
    top = max(p, key=lambda c: p[c])
    if p[top] >= sure and top in ESCALATING:
        return False
    return p[top] < sure or any(p[c] >= quiet[c] for c in ESCALATING)
