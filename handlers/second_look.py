"""When the hybrid asks MiniLM for a second look (only where the hashed-feature
head is unsure in a way that could change the route), and what the decision
head then reads (`inputs`).

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

from collections.abc import Mapping, Sequence

import numpy as np

from handlers.rules import RuleScores
from handlers.verdict import CATEGORIES

ESCALATING = ("safeguarding", "abuse")
SURE = 0.70  # the first head's top probability at which it may decide alone
QUIET = {"safeguarding": 0.05, "abuse": 0.05}  # ... if it gives these categories less than this each


def asks(p: Mapping[str, float], *, sure: float = SURE, quiet: Mapping[str, float] = QUIET) -> bool:
    """Whether the semantic head should read a comment, from the first head's probabilities."""
    top = max(p, key=lambda c: p[c])
    if p[top] >= sure and top in ESCALATING:
        return False
    return p[top] < sure or any(p[c] >= quiet[c] for c in ESCALATING)


def inputs(vectors: np.ndarray, fast: np.ndarray, rules: Sequence[RuleScores]) -> np.ndarray:
    """What the decision head (handlers/mlp.py) reads for each asked comment: its MiniLM sentence
    vector, the first head's category probabilities (columns in CATEGORIES order) and the rule
    points per category (0, 0.5 for a weight-1 hit, 1 for a clear pattern)."""
    points = np.array([[min(r.scores.get(c, 0), 2) / 2 for c in CATEGORIES] for r in rules], dtype=np.float32)
    return np.hstack([vectors.astype(np.float32), fast.astype(np.float32), points.reshape(len(rules), len(CATEGORIES))])
