"""Finding the clauses that answer a question: BM25 over canonicalised words
fused with MiniLM sentence similarity. Built once per policy version and
cached on disk, so a restart does not pay for it again."""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handlers.embedding import MiniLM, ModelUnavailable, shared_model
from handlers.policy.document import PolicyDocument
from handlers.policy.vocabulary import AUDIENCE_WEIGHT, canonical_tokens

log = logging.getLogger(__name__)

K1, B = 1.2, 0.75
INDEX_TOKENS = 128  # MiniLM-L6 was trained on 128-token inputs; longer clauses cost time, not accuracy
# "Can I ...?" is answered by a clause that states a rule, not by one that only mentions the topic.
PERMISSION = re.compile(
    r"(?:^|[,.;]\s*)(?:can|may|could|should|must|am i|are we|is it|do i|do we|would it|is there any problem)\b|"
    r"\b(?:is (?:that|this|it) (?:ok|okay|alright|all right|fine|allowed|a problem)|am i allowed|are we allowed)\b",
    re.I,
)
RULE_WORDS = re.compile(
    r"\b(?:must|should|shall|not|never|decline|permitted|allowed|prohibited|only|advised|"
    r"expectation|required|discouraged|unless)\b",
    re.I,
)
RULE_BONUS = 0.04
COVERAGE_WEIGHT = 0.10  # share of the question's words a clause contains
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def asking_sentence(question: str) -> str:
    """The sentence that asks ("Can I add my class?"), not the context before it."""
    sentences = [s for s in _SENTENCE.split(question.strip()) if s]
    asking = [s for s in sentences if s.rstrip().endswith("?")]
    return asking[-1] if asking else (sentences[-1] if sentences else question)


# "Who do I tell?" / "What should I do?" is answered by a clause that says what to do.
PROCEDURE = re.compile(
    r"\bwho (?:do|should|can) (?:i|we) (?:tell|report|contact|speak|go|ask)|\bwhat (?:should|do|can|must) "
    r"(?:i|we) do\b|\bwhat happens\b|\bhow (?:do|should) (?:i|we) (?:report|deal|handle)",
    re.I,
)
PROCEDURE_WORDS = re.compile(
    r"\b(?:report\w*|raise\w*|alert|inform|keep (?:any )?records?|screen ?prints?|contact|"
    r"refer\w*|designated safeguarding lead|headteacher|head teacher|head of school)\b",
    re.I,
)
BM25_WEIGHT = 0.45  # share of the fused score from words (the rest from meaning)


def cache_dir() -> Path:
    base = os.environ.get("HALLMONITOR_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hallmonitor"
    )
    return Path(base)


@dataclass(slots=True)
class Hit:
    index: int
    score: float
    bm25: float
    dense: float


class PolicyIndex:
    """Retrieval over one policy's clauses."""

    def __init__(self, document: PolicyDocument, *, encoder: MiniLM | None = None, use_cache: bool = True) -> None:
        started = time.perf_counter()
        self.document = document
        self.clauses = document.clauses
        self.tokens = [canonical_tokens(c.context) for c in self.clauses]
        self.lengths = np.array([len(t) for t in self.tokens], dtype=np.float32)
        self.avg_length = float(self.lengths.mean()) if len(self.lengths) else 1.0
        self.tf = [Counter(t) for t in self.tokens]
        df: Counter[str] = Counter()
        for t in self.tokens:
            df.update(set(t))
        n = len(self.tokens)
        self.idf = {term: math.log(1 + (n - f + 0.5) / (f + 0.5)) for term, f in df.items()}
        try:
            self.encoder: MiniLM | None = encoder or shared_model()
        except ModelUnavailable:
            log.warning("policy_index_without_embeddings reason=model package missing; words only")
            self.encoder = None
        self.vectors = self._vectors(use_cache) if self.encoder is not None else None
        self.procedures = np.array([1.0 if PROCEDURE_WORDS.search(c.text) else 0.0 for c in self.clauses], np.float32)
        self.rules = np.array([1.0 if RULE_WORDS.search(c.text) else 0.0 for c in self.clauses], dtype=np.float32)
        self.build_seconds = time.perf_counter() - started

    def _vectors(self, use_cache: bool) -> np.ndarray:
        assert self.encoder is not None
        path = cache_dir() / f"policy-{self.document.digest}.npy"
        if use_cache and path.exists():
            try:
                vectors = np.load(path)
                if vectors.shape == (len(self.clauses), 384):
                    return vectors
            except (OSError, ValueError):
                log.warning("policy_cache_unreadable path=%s rebuilding", path)
        vectors = self.encoder.encode([c.context for c in self.clauses], max_tokens=INDEX_TOKENS)
        if use_cache:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, vectors)
                tmp.replace(path)
            except OSError as exc:
                log.warning("policy_cache_not_written path=%s error=%s", path, exc)
        return vectors

    def bm25(self, query_tokens: list[str], *, emphasis: set[str] | None = None) -> np.ndarray:
        """BM25; audience words in `emphasis` (from the sentence that asks) count more."""
        scores = np.zeros(len(self.clauses), dtype=np.float32)
        for term in set(query_tokens):
            idf = self.idf.get(term)
            if idf is None:
                continue
            if emphasis is not None and term in emphasis:
                idf *= AUDIENCE_WEIGHT.get(term, 1.0)
            for i, tf in enumerate(self.tf):
                f = tf.get(term)
                if f:
                    scores[i] += idf * f * (K1 + 1) / (f + K1 * (1 - B + B * self.lengths[i] / self.avg_length))
        return scores

    def search(self, question: str, *, k: int = 10) -> list[Hit]:
        """Best clauses first. Several bullets of one clause in the lead means the
        question asks about the list: the whole clause answers it."""
        hits = self._rank(question, k=k + 5)
        by_label = {c.label: i for i, c in enumerate(self.clauses)}
        parents = Counter(self.clauses[h.index].parent for h in hits[:5] if self.clauses[h.index].parent)
        for parent, n in parents.items():
            i = by_label.get(parent or "")
            if n >= 2 and i is not None and self.clauses[i].complete and len(self.clauses[i].text) <= 1500:
                best = max(h.score for h in hits if self.clauses[h.index].parent == parent)
                hits = [h for h in hits if h.index != i]
                hits.append(Hit(i, best + 0.01, 0.0, 0.0))
        hits.sort(key=lambda h: -h.score)
        return hits[:k]

    def _rank(self, question: str, *, k: int) -> list[Hit]:
        tokens = canonical_tokens(question)
        words = self.bm25(tokens, emphasis=set(canonical_tokens(asking_sentence(question))))
        wanted = {t for t in tokens if t in self.idf}
        coverage = (
            np.array([len(wanted & tf.keys()) / len(wanted) for tf in self.tf], dtype=np.float32)
            if wanted
            else np.zeros(len(self.clauses), dtype=np.float32)
        )
        if self.vectors is not None and self.encoder is not None:
            dense = self.vectors @ self.encoder.encode([question])[0]
        else:
            dense = np.zeros(len(self.clauses), dtype=np.float32)
        top_words = float(words.max()) if len(words) else 0.0
        normalised = words / top_words if top_words > 0 else words
        fused = BM25_WEIGHT * normalised + (1 - BM25_WEIGHT) * dense + COVERAGE_WEIGHT * coverage
        if PERMISSION.search(question):
            fused = fused + RULE_BONUS * self.rules
        if PROCEDURE.search(question):
            fused = fused + 2 * RULE_BONUS * self.procedures
        order = np.argsort(-fused)[:k]
        return [Hit(int(i), float(fused[i]), float(words[i]), float(dense[i])) for i in order]
