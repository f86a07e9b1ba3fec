"""Hybrid triage: precise rules + a learned head on MiniLM embeddings + the
school's own moderator labels.

- Rules catch exact patterns (a threat names a person and an act).
- The head (softmax regression over sentence embeddings, trained at start-up
  from handlers/data/triage_train.txt) catches paraphrase the rules miss.
- A moderator's re-categorisation is remembered: a new item very like one the
  school labelled takes that label, without a code change.

Escalation is decided before anything else and errs towards the DSL: a
safeguarding signal from either the rules or the model wins over abuse.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlmodel import Session, col

from core.config import Config, TriageConfig
from handlers.embedding import MiniLM, shared_model
from handlers.rules import literal
from handlers.triage import CATEGORIES, RuleScores, Verdict, rule_scores, verdict_for
from storage.models import Item, Triage

log = logging.getLogger(__name__)

TRAINING_DATA = Path(__file__).parent / "data" / "triage_train.txt"
MACHINE_PREFIX = "auto:"
MODEL_REASON = {
    "safeguarding": "reads like a possible safeguarding concern about a child",
    "abuse": "reads like abuse aimed at staff, pupils or families",
    "media": "reads like a media enquiry",
    "spam": "reads like spam",
    "complaint": "reads like a complaint",
    "question": "reads like a question",
    "praise": "reads like praise",
    "other": "general remark; no reply needed",
}
RULE_WEIGHT = 0.35  # how much a rule hit adds to the model's probability for the non-escalating categories


def read_training(path: Path = TRAINING_DATA) -> list[tuple[str, str]]:
    """`category | text` lines; comments and blanks skipped; a bad line is an error naming it."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        category, sep, text = line.partition("|")
        category = category.strip()
        if not sep or category not in CATEGORIES or not text.strip():
            raise ValueError(f"{path.name}:{n}: expected 'category | text' with a known category")
        rows.append((category, text.strip()))
    return rows


class SoftmaxHead:
    """Multinomial logistic regression with L2 and balanced class weights."""

    def __init__(self, x: np.ndarray, y: np.ndarray, classes: int, *, l2: float = 1e-3, iters: int = 600) -> None:
        n, d = x.shape
        counts = np.bincount(y, minlength=classes).astype(np.float32)
        weights = (n / (classes * np.clip(counts, 1, None)))[y]
        onehot = np.eye(classes, dtype=np.float32)[y]
        self.w = np.zeros((d, classes), dtype=np.float32)
        self.b = np.zeros(classes, dtype=np.float32)
        velocity_w, velocity_b = np.zeros_like(self.w), np.zeros_like(self.b)
        lr, momentum = 2.0, 0.9
        for _ in range(iters):
            grad = (self.proba(x) - onehot) * weights[:, None] / n
            velocity_w = momentum * velocity_w - lr * (x.T @ grad + l2 * self.w)
            velocity_b = momentum * velocity_b - lr * grad.sum(0)
            self.w += velocity_w
            self.b += velocity_b

    def proba(self, x: np.ndarray) -> np.ndarray:
        logits = x @ self.w + self.b
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(1, keepdims=True)


@dataclass(slots=True)
class SchoolLabels:
    """The school's moderator labels: latest label per item, with embeddings."""

    by_item: dict[int, tuple[str, str]] = field(default_factory=dict)  # item id -> (category, text)
    matrix: np.ndarray | None = None
    categories: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


class HybridClassifier:
    name = "auto:hybrid-v2"

    def __init__(self, *, encoder: MiniLM | None = None, training: list[tuple[str, str]] | None = None) -> None:
        started = time.perf_counter()
        self.encoder = encoder or shared_model()
        rows = training if training is not None else read_training()
        x = self.encoder.encode([literal(text) for _, text in rows])
        y = np.array([CATEGORIES.index(c) for c, _ in rows])
        self.head = SoftmaxHead(x, y, len(CATEGORIES))
        self.thresholds: dict[str, TriageConfig] = {}
        self.labels: dict[str, SchoolLabels] = {}
        self._last_label_id = 0
        self._lock = threading.Lock()
        self.load_seconds = time.perf_counter() - started
        log.info("triage_model_ready seconds=%.2f examples=%d", self.load_seconds, len(rows))

    def configure(self, config: Config) -> None:
        """Take each school's thresholds from the config."""
        self.thresholds = {s.id: s.triage for s in config.schools}

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
        with self._lock:
            touched = set()
            for triage_id, item_id, category, text, school in rows:
                self.labels.setdefault(school, SchoolLabels()).by_item[item_id] = (category, text)
                touched.add(school)
                self._last_label_id = max(self._last_label_id, triage_id)
            for school in touched:
                memory = self.labels[school]
                memory.categories = [c for c, _ in memory.by_item.values()]
                memory.texts = [t for _, t in memory.by_item.values()]
                memory.matrix = self.encoder.encode([literal(t) for t in memory.texts])
        log.info("triage_labels_loaded new=%d schools=%d", len(rows), len(touched))

    def _nearest_label(self, vector: np.ndarray, school: str | None) -> tuple[str, float, str] | None:
        memory = self.labels.get(school or "")
        if memory is None or memory.matrix is None or not len(memory.categories):
            return None
        sims = memory.matrix @ vector
        best = int(np.argmax(sims))
        return memory.categories[best], float(sims[best]), memory.texts[best]

    # --- classifying
    def classify(
        self, text: str, *, platform: str | None = None, author: str | None = None, school: str | None = None
    ) -> Verdict:
        return self.classify_many([text], school=school)[0]

    def classify_many(self, texts: Sequence[str], *, school: str | None = None) -> list[Verdict]:
        if not texts:
            return []
        vectors = self.encoder.encode([literal(t) for t in texts])
        probs = self.head.proba(vectors)
        limits = self.thresholds.get(school or "", TriageConfig())
        return [
            self._decide(
                text, dict(zip(CATEGORIES, p, strict=True)), rule_scores(text), limits, self._nearest_label(v, school)
            )
            for text, p, v in zip(texts, probs, vectors, strict=True)
        ]

    def _decide(
        self,
        text: str,
        p: dict[str, float],
        rules: RuleScores,
        limits: TriageConfig,
        label: tuple[str, float, str] | None,
    ) -> Verdict:
        if label is not None and label[1] >= limits.label_similarity:
            category, similarity, _ = label
            # A label never silences a clear safeguarding pattern unless it is the same text.
            if not (rules.strong("safeguarding") and category != "safeguarding" and similarity < 0.97):
                reason = f"your moderators labelled a very similar item as {category} (similarity {similarity:.2f})"
                return verdict_for(category, [reason], self.name)

        def because(category: str) -> list[str]:
            reasons = list(rules.reasons.get(category, []))
            if p[category] >= 0.2:
                reasons.append(f"{MODEL_REASON[category]} (model {p[category]:.2f})")
            return reasons or [MODEL_REASON[category]]

        weak_sg = rules.scores.get("safeguarding", 0) >= 1 and p["safeguarding"] >= limits.dsl_threshold / 2
        if rules.strong("safeguarding") or p["safeguarding"] >= limits.dsl_threshold or weak_sg:
            return verdict_for("safeguarding", because("safeguarding") + rules.reasons.get("abuse", []), self.name)
        weak_abuse = rules.scores.get("abuse", 0) >= 1 and p["abuse"] >= limits.slt_threshold / 2
        if rules.strong("abuse") or p["abuse"] >= limits.slt_threshold or weak_abuse:
            return verdict_for("abuse", because("abuse"), self.name)
        contradicted = rules.strong("praise") or rules.strong("complaint")
        if rules.strong("media") or (p["media"] >= limits.media_threshold and (not contradicted or p["media"] >= 0.8)):
            return verdict_for("media", because("media"), self.name)
        if rules.strong("spam") or p["spam"] >= 0.5:
            return verdict_for("spam", because("spam"), self.name)
        rest = ("complaint", "question", "praise", "other")
        score = {c: p[c] + RULE_WEIGHT * min(rules.scores.get(c, 0), 2) / 2 for c in rest}
        best = max(rest, key=lambda c: score[c])
        return verdict_for(best, because(best), self.name)
