"""The second-look gate and the hybrid's use of it: MiniLM reads only the
comments the first head is unsure of, each distinct text once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from handlers.embedding import DIM
from handlers.features import featurise
from handlers.hybrid import HybridClassifier
from handlers.normalise import normalise
from handlers.rules import literal
from handlers.second_look import asks
from handlers.verdict import CATEGORIES


def probs(**given: float) -> dict[str, float]:
    rest = (1.0 - sum(given.values())) / (len(CATEGORIES) - len(given))
    return {c: given.get(c, rest) for c in CATEGORIES}


def test_a_sure_first_head_decides_alone() -> None:
    assert not asks(probs(question=0.95))
    assert not asks(probs(safeguarding=0.9))  # sure of an escalating route
    assert not asks(probs(abuse=0.75))


def test_an_unsure_head_or_a_little_risk_beside_a_routine_reading_is_asked() -> None:
    assert asks(probs(question=0.5, other=0.3))
    assert asks(probs(safeguarding=0.6, abuse=0.3))  # unsure between two escalating routes
    assert asks(probs(question=0.85, safeguarding=0.06))
    assert asks(probs(praise=0.8, abuse=0.05))


class CountingEncoder:
    """Stands in for MiniLM: records what it was asked to read."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str], **_: object) -> np.ndarray:
        self.seen += list(texts)
        return np.full((len(texts), DIM), 1 / np.sqrt(DIM), dtype=np.float32)


def test_the_hybrid_asks_the_encoder_only_where_the_gate_says() -> None:
    encoder = CountingEncoder()
    clf = HybridClassifier(encoder=encoder)  # type: ignore[arg-type]
    plain = HybridClassifier(semantic=False)
    texts = ["What time does the school fair start on Saturday?", "idk what to do anymore i cant keep going"]
    verdicts = clf.classify_many(texts)
    assert len(verdicts) == 2
    cleaned = [literal(normalise(t)) for t in texts]
    first = plain.head.category.proba(featurise(cleaned, normalised=True))
    expected = [
        c for c, row in zip(cleaned, first, strict=True) if asks(dict(zip(CATEGORIES, map(float, row), strict=True)))
    ]
    assert encoder.seen == expected == cleaned[1:]  # the plain question is decided by the first head alone
    assert clf.stats == {"comments": 2, "second_look": len(expected)}
