"""Hybrid triage: the shipped head + precise rules + the school's own
moderator labels, routed cost-sensitively (handlers/route.py).

- The head (handlers/head.py, built by `python -m handlers.train`) reads
  hashed features of the normalised text; where it is unsure in a way that
  could change the route (handlers/second_look.py), its second look decides
  instead: a small network over the MiniLM embedding (each distinct text
  encoded once per batch), the first head's probabilities and the rule points.
  Nothing is trained at start-up. Without the MiniLM package the hashed
  head decides alone (logged once).
- Rules catch exact patterns (a threat names a person and an act).
- A moderator's re-categorisation is remembered: a new item very like one the
  school labelled takes that label, without a code change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlmodel import Session, col

from core.config import Config, TriageConfig
from handlers.embedding import Encoder, ModelUnavailable, shared_model
from handlers.features import featurise, folded
from handlers.head import SEMANTIC_TOKENS, Head
from handlers.normalise import normalise
from handlers.route import Limits, Seen, route
from handlers.rules import RuleScores, literal, rule_scores
from handlers.second_look import asks, inputs
from handlers.verdict import CATEGORIES, Verdict, verdict_for
from storage.models import Item, Triage

log = logging.getLogger(__name__)

MACHINE_PREFIX = "auto:"


@dataclass(frozen=True, slots=True)
class SchoolLabels:
    """The school's moderator labels: latest label per item, with folded feature rows.
    Never changed once built: a refresh publishes a new one, so a batch classifying in
    another thread reads either the old labels or the new, never half of each."""

    by_item: dict[int, tuple[str, str]] = field(default_factory=dict)  # item id -> (category, text)
    matrix: np.ndarray | None = None
    categories: list[str] = field(default_factory=list)

    def adding(self, rows: dict[int, tuple[str, str]]) -> SchoolLabels:
        by_item = self.by_item | rows
        texts = [t for _, t in by_item.values()]
        return SchoolLabels(by_item, folded(featurise(texts)), [c for c, _ in by_item.values()])


def _encoder() -> Encoder | None:
    try:
        return shared_model()
    except ModelUnavailable as exc:
        log.warning("triage_semantic_unavailable deciding_with=hashed_head reason=%s", exc)
        return None


class HybridClassifier:
    name = "auto:hybrid-v4"

    def __init__(self, *, head: Head | None = None, encoder: Encoder | None = None, semantic: bool = True) -> None:
        """`semantic=False` decides with the hashed-feature head alone (faster, less accurate:
        bench/triage.py prints both). The encoder is the process's shared MiniLM (bf16 torch
        where the CPU has native bf16, else float32: handlers/embedding.choose_backend); the
        second look is trained on float32 vectors (embedding.reference_model), which bf16 ones
        match to cosine 0.9995; without the model package the hashed head decides alone."""
        started = time.perf_counter()
        self.head = head or Head.load()
        self.encoder = encoder
        if self.encoder is None and semantic:
            self.encoder = _encoder()
        self._weights = self.head.category.dequantised()
        self._semantic = self.head.semantic.dense()
        self._small = (self.head.kind.dequantised(), self.head.register.dequantised())
        self.thresholds: dict[str, TriageConfig] = {}
        self.labels: dict[str, SchoolLabels] = {}
        self._last_label_id = 0
        self._lock = threading.Lock()
        self._counting = threading.Lock()
        self.stats = {"comments": 0, "second_look": 0}  # counts since start (bench/triage.py prints them)
        self.load_seconds = time.perf_counter() - started
        log.info("triage_head_loaded seconds=%.3f", self.load_seconds)

    def configure(self, config: Config) -> None:
        """Take each school's thresholds from the config."""
        self.thresholds = {s.id: s.triage for s in config.schools}

    def limits(self, school: str | None) -> Limits:
        """The school's own thresholds where it set them, else the ones the build chose."""
        own = self.thresholds.get(school or "", TriageConfig())
        chosen = self.head.thresholds

        def pick(field_name: str, key: str) -> float:
            return float(getattr(own, field_name)) if field_name in own.model_fields_set else float(chosen[key])

        floors = {k: float(chosen[k]) for k in ("dsl_rule", "slt_rule") if k in chosen}  # the build's, never a school's
        return Limits(
            pick("dsl_threshold", "dsl"), pick("slt_threshold", "slt"), pick("media_threshold", "media"), **floors
        )

    # --- learning from the school
    def refresh_labels(self, session: Session) -> None:
        """Load moderator labels added since the last call (cheap when there are none)."""
        stmt = (
            select(col(Triage.id), col(Triage.item_id), col(Triage.category), col(Item.text), col(Item.school_id))
            .join(Item, col(Item.id) == col(Triage.item_id))
            .where(col(Triage.id) > self._last_label_id, ~col(Triage.decided_by).startswith(MACHINE_PREFIX))
            .order_by(col(Triage.id))
        )
        rows = list(session.execute(stmt))
        if not rows:
            return
        new: dict[str, dict[int, tuple[str, str]]] = {}
        for _triage_id, item_id, category, text, school in rows:
            new.setdefault(school, {})[item_id] = (category, text)
        with self._lock:  # two refreshes at once add the same rows once; readers never wait
            for school, labelled in new.items():
                self.labels[school] = self.labels.get(school, SchoolLabels()).adding(labelled)
            self._last_label_id = max(self._last_label_id, max(r[0] for r in rows))
        log.info("triage_labels_loaded new=%d schools=%d", len(rows), len(new))

    def _nearest_labels(self, rows: np.ndarray, school: str | None) -> list[tuple[str, float] | None]:
        memory = self.labels.get(school or "")
        if memory is None or memory.matrix is None or not memory.categories:
            return [None] * len(rows)
        sims = rows @ memory.matrix.T
        best = sims.argmax(1)
        return [(memory.categories[b], float(sims[i, b])) for i, b in enumerate(best)]

    # --- classifying
    def classify(
        self, text: str, *, platform: str | None = None, author: str | None = None, school: str | None = None
    ) -> Verdict:
        return self.classify_many([text], school=school)[0]

    def classify_many(self, texts: Sequence[str], *, school: str | None = None) -> list[Verdict]:
        """Verdicts for a batch. Safe from several threads at once on one classifier: the heads
        and the encoder are only read, the counters are locked, and each school's labels are
        replaced whole (tests/test_triage_threads.py)."""
        if not texts:
            return []
        normalised = [normalise(t) for t in texts]
        rules = [rule_scores(t, normalised=True) for t in normalised]
        cleaned = [literal(t) for t in normalised]  # the model reads figures of speech as their plain meaning
        x = featurise(cleaned, normalised=True)
        fast = [
            dict(zip(CATEGORIES, map(float, row), strict=True)) for row in self.head.category.proba(x, self._weights)
        ]
        probs = self._second_look(cleaned, fast, rules)
        kinds = self.head.kind.proba(x, self._small[0])
        registers = self.head.register.proba(x, self._small[1])
        labels = self._nearest_labels(folded(x), school) if school in self.labels else [None] * len(texts)
        limits = self.limits(school)
        out = []
        for i in range(len(texts)):
            seen = Seen(
                self.head.kind.classes[int(kinds[i].argmax())], self.head.register.classes[int(registers[i].argmax())]
            )
            out.append(self._decide(probs[i], rules[i], limits, seen, labels[i], school))
        return out

    def _second_look(
        self, cleaned: list[str], fast: list[dict[str, float]], rules: list[RuleScores]
    ) -> list[dict[str, float]]:
        """The second look's probabilities where `second_look.asks` says so, the first head's elsewhere."""
        ask = [i for i, p in enumerate(fast) if asks(p)]
        asked = len(ask) if self.encoder is not None else 0
        with self._counting:  # classify_many may run in two threads at once (the poller overlaps batches)
            self.stats["comments"] += len(fast)
            self.stats["second_look"] += asked
        if not asked or self.encoder is None:
            return fast
        vectors = self.encoder.encode([cleaned[i] for i in ask], max_tokens=SEMANTIC_TOKENS)
        first = np.array([[fast[i][c] for c in CATEGORIES] for i in ask])
        x = inputs(vectors, first, [rules[i] for i in ask])
        out = list(fast)
        for i, row in zip(ask, self.head.semantic.proba(x, self._semantic), strict=True):
            out[i] = dict(zip(CATEGORIES, map(float, row), strict=True))
        return out

    def _decide(
        self,
        p: dict[str, float],
        rules: RuleScores,
        limits: Limits,
        seen: Seen,
        label: tuple[str, float] | None,
        school: str | None,
    ) -> Verdict:
        similarity = self.thresholds.get(school or "", TriageConfig()).label_similarity
        if label is not None and label[1] >= similarity:
            category, score = label
            # A label never silences a clear safeguarding pattern unless it is the same text.
            if not (rules.strong("safeguarding") and category != "safeguarding" and score < 0.97):
                reason = f"your moderators labelled a very similar item as {category} (similarity {score:.2f})"
                return verdict_for(category, [reason], self.name)
        category, reasons = route(p, rules, limits, seen)
        return verdict_for(category, reasons, self.name)
