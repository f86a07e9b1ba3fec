"""Finding the clauses that answer a question.

Each clause gets a feature vector per question (features.py): BM25 over
stemmed, canonicalised words; MiniLM similarity to the clause with its
heading path, and to the heading alone; how much of the question it covers;
what kind of statement it is and whom it addresses. A logistic model fitted
on the training questions (fit.py, weights in policy_model.json) turns the
features into one score. The clause vectors are cached on disk per policy
version, so a restart does not pay for them again.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handlers.embedding import MiniLM, ModelUnavailable, shared_model
from handlers.policy.document import PolicyDocument
from handlers.policy.features import FEATURES, QueryFeatures, clause_features
from handlers.policy.model import Model, load_model
from handlers.policy.tokens import encode_tokens
from handlers.policy.vocabulary import STOPWORDS, canonical_tokens

log = logging.getLogger(__name__)

K1, B = 1.2, 0.75
PEOPLE = frozenset({"pupil", "parent", "formerpupil", "relative", "colleague", "governor", "visitor", "volunteer"})
QUERY_CACHE = 64  # recent questions per index whose features are kept
INDEX_TOKENS = 128  # MiniLM-L6 was trained on 128-token inputs; longer clauses cost time, not accuracy
WINDOW = 16  # word pieces per passage window of a clause (mean of its word-piece vectors), half overlapping


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

    def __init__(
        self,
        document: PolicyDocument,
        *,
        encoder: MiniLM | None = None,
        use_cache: bool = True,
        model: Model | None = None,
    ) -> None:
        started = time.perf_counter()
        self.document = document
        self.clauses = document.clauses
        self.model = model or load_model()
        self.tokens = [canonical_tokens(c.context) for c in self.clauses]
        self.lengths = np.array([len(t) for t in self.tokens], dtype=np.float32)
        self.avg_length = float(self.lengths.mean()) if len(self.lengths) else 1.0
        self.tf = [Counter(t) for t in self.tokens]
        self.heading_tokens = [frozenset(canonical_tokens(c.heading)) for c in self.clauses]
        df: Counter[str] = Counter()
        for t in self.tokens:
            df.update(set(t))
        n = len(self.tokens)
        self.idf = {term: math.log(1 + (n - f + 0.5) / (f + 0.5)) for term, f in df.items()}
        self.postings: dict[str, list[tuple[int, float]]] = {}
        for i, tf in enumerate(self.tf):
            norm = K1 * (1 - B + B * self.lengths[i] / self.avg_length)
            for term, f in tf.items():
                self.postings.setdefault(term, []).append((i, f * (K1 + 1) / (f + norm)))
        try:
            self.encoder: MiniLM | None = encoder or shared_model()
        except ModelUnavailable:
            log.warning("policy_index_without_embeddings reason=model package missing; words only")
            self.encoder = None
        self.vectors: np.ndarray | None = None
        self.heading_vectors: np.ndarray | None = None
        self.pieces = np.zeros((0, 384), dtype=np.float32)  # every clause's word-piece vectors, one after another
        self.starts = np.zeros(0, dtype=np.int64)  # where each clause's word pieces begin in `pieces`
        if self.encoder is not None:
            self.vectors, self.heading_vectors, pieces, self.starts = self._vectors(use_cache)
            self.pieces = pieces.astype(np.float32)  # float16 on disk; float32 here, for BLAS at question time
        self.windows, self.window_starts = passage_windows(self.pieces, self.starts)
        self.centroid = np.zeros(384, dtype=np.float32)
        if self.vectors is not None and len(self.vectors):
            mean = self.vectors.mean(0)
            self.centroid = mean / (np.linalg.norm(mean) + 1e-9)
        self.static = np.array([clause_features(c) for c in self.clauses], dtype=np.float32).reshape(n, -1)
        self._queries: dict[str, QueryFeatures] = {}
        self.build_seconds = time.perf_counter() - started

    def _vectors(self, use_cache: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Clause vectors, heading vectors per clause, word-piece vectors and their clause offsets (cached)."""
        assert self.encoder is not None
        headings = sorted({c.heading for c in self.clauses})
        path = cache_dir() / f"policy-{self.document.digest}-v3.npz"
        if use_cache and path.exists():
            try:
                saved = np.load(path)
                if saved["clauses"].shape == (len(self.clauses), 384) and len(saved["starts"]) == len(self.clauses):
                    return saved["clauses"], saved["headings"], saved["pieces"], saved["starts"]
            except (OSError, ValueError, KeyError):
                log.warning("policy_cache_unreadable path=%s rebuilding", path)
        texts = [c.context for c in self.clauses]
        vectors, pieces, _ = encode_tokens(self.encoder, texts, max_tokens=INDEX_TOKENS)
        heading_vectors = self.encoder.encode([h or "policy" for h in headings], max_tokens=INDEX_TOKENS)
        row = {h: i for i, h in enumerate(headings)}
        by_clause = heading_vectors[[row[c.heading] for c in self.clauses]] if self.clauses else heading_vectors
        starts = np.cumsum([0] + [len(p) for p in pieces[:-1]]).astype(np.int64) if pieces else np.zeros(0, np.int64)
        flat = np.concatenate(pieces) if pieces else np.zeros((0, 384), dtype=np.float16)
        if use_cache:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npz")
                with tmp.open("wb") as handle:
                    np.savez(handle, clauses=vectors, headings=by_clause, pieces=flat, starts=starts)
                tmp.replace(path)
            except OSError as exc:
                log.warning("policy_cache_not_written path=%s error=%s", path, exc)
        return vectors, by_clause, flat, starts

    def piece_sims(self, pieces: np.ndarray, words: list[str]) -> np.ndarray:
        """(question content word pieces, clauses): each content word piece's best cosine with any of the
        clause's word pieces (ColBERT-style max-sim; no rows without embeddings)."""
        content = [i for i, w in enumerate(words) if w.lstrip("#") not in STOPWORDS and len(w.lstrip("#")) > 1]
        if not len(self.starts) or not len(self.pieces):
            return np.zeros((0, len(self.clauses)), dtype=np.float32)
        q = (pieces[content] if content else pieces).astype(np.float32)
        if not len(q):
            return np.zeros((0, len(self.clauses)), dtype=np.float32)
        sims = q @ self.pieces.T  # (question pieces, all clause pieces)
        return np.maximum.reduceat(sims, self.starts, axis=1).astype(np.float32)

    def late_interaction(self, pieces: np.ndarray, words: list[str]) -> np.ndarray:
        """Per clause, the mean over the question's content word pieces of their best cosine with any of the
        clause's word pieces (0 without embeddings)."""
        best = self.piece_sims(pieces, words)
        return best.mean(0) if len(best) else np.zeros(len(self.clauses), dtype=np.float32)

    def window_similarity(self, q: np.ndarray) -> np.ndarray:
        """Per clause, the best meaning similarity of the question to one of its passage windows: a long clause
        whose one sentence answers is not diluted by the rest (0 without embeddings)."""
        if not len(self.windows):
            return np.zeros(len(self.clauses), dtype=np.float32)
        return np.maximum.reduceat(self.windows @ q, self.window_starts).astype(np.float32)

    def bm25(self, query_tokens: list[str]) -> np.ndarray:
        scores = np.zeros(len(self.clauses), dtype=np.float32)
        for term in set(query_tokens):
            idf = self.idf.get(term)
            for i, weight in self.postings.get(term, ()):
                scores[i] += idf * weight  # type: ignore[operator]
        return scores

    def query(self, question: str) -> QueryFeatures:
        """Everything about the question the features need, computed once per question text (an answer asks
        for the same question's ranking more than once)."""
        cached = self._queries.get(question)
        if cached is None:
            cached = self._queries[question] = self._query(question)
            if len(self._queries) > QUERY_CACHE:
                self._queries.pop(next(iter(self._queries)))
        return cached

    def prepare(self, questions: list[str]) -> None:
        """Embed several questions in one batch (the follow-ups of a "who is it about?" answer)."""
        new = [q for q in dict.fromkeys(questions) if q not in self._queries]
        if not new:
            return
        if self.encoder is None or self.vectors is None:
            for question in new:
                self._queries[question] = self._query(question)
            return
        vectors, pieces, words = encode_tokens(self.encoder, new)
        for n, question in enumerate(new):
            self._queries[question] = self._query(question, (vectors[n], pieces[n], words[n]))

    def forget_queries(self) -> None:
        """Drop the kept question features (bench/ask.py times each answer as a first asking)."""
        self._queries.clear()

    def _query(self, question: str, encoded: tuple[np.ndarray, np.ndarray, list[str]] | None = None) -> QueryFeatures:
        tokens = canonical_tokens(question)
        words = self.bm25(tokens)
        wanted = {t for t in tokens if t in self.idf}
        coverage = np.array([len(wanted & tf.keys()) / len(wanted) if wanted else 0.0 for tf in self.tf], np.float32)
        in_heading = np.array(
            [len(wanted & h) / len(wanted) if wanted else 0.0 for h in self.heading_tokens], np.float32
        )
        centroid = 0.0
        if self.vectors is not None and self.heading_vectors is not None and self.encoder is not None:
            if encoded is None:
                pooled, pieces, names = encode_tokens(self.encoder, [question])
                encoded = (pooled[0], pieces[0], names[0])
            q = encoded[0]
            dense, heading = self.vectors @ q, self.heading_vectors @ q
            centroid = float(self.centroid @ q)
            best = self.piece_sims(encoded[1], encoded[2])
            late = best.mean(0) if len(best) else np.zeros(len(self.clauses), dtype=np.float32)
            window = self.window_similarity(q)
        else:
            dense = heading = late = window = np.zeros(len(self.clauses), dtype=np.float32)
            best = np.zeros((0, len(self.clauses)), dtype=np.float32)
        unknown = 1.0 - len(wanted) / len(set(tokens)) if tokens else 1.0
        weighted = np.zeros(len(self.clauses), dtype=np.float32)
        total = sum(self.idf[t] for t in wanted)
        for term in wanted:
            for i, _ in self.postings[term]:
                weighted[i] += self.idf[term] / total
        people = set(tokens) & PEOPLE
        entities = np.array([1.0 if people <= tf.keys() else 0.0 for tf in self.tf], dtype=np.float32)
        return QueryFeatures(
            question,
            words,
            dense,
            heading,
            coverage,
            self.static,
            weighted,
            entities,
            in_heading,
            unknown,
            centroid,
            late,
            best,
            len(set(tokens)),
            window,
        )

    def matrix(self, question: str) -> tuple[QueryFeatures, np.ndarray]:
        query = self.query(question)
        return query, query.matrix()

    def search(self, question: str, *, k: int = 10) -> list[Hit]:
        """Best clauses first, by the fitted model's score."""
        query, x = self.matrix(question)
        scores = x @ self.model.weights + self.model.bias
        order = np.argsort(-scores)[:k]
        return [Hit(int(i), float(scores[i]), float(query.words[i]), float(query.dense[i])) for i in order]


def passage_windows(pieces: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of each clause's passage windows (WINDOW word pieces, stride WINDOW // 2, the last window
    ending at the clause's end), one clause's windows after another, and where each clause's windows begin.
    A window's vector is the mean of its word-piece vectors from the clause's own forward pass, so windows
    cost no encoding."""
    ends = np.append(starts[1:], len(pieces)).astype(np.int64)
    spans: list[tuple[int, int]] = []
    window_starts = np.zeros(len(starts), dtype=np.int64)
    for c, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        window_starts[c] = len(spans)
        if b - a <= WINDOW:
            spans.append((a, max(b, a + 1)))
            continue
        spans.extend((s, s + WINDOW) for s in range(a, b - WINDOW + 1, WINDOW // 2))
        if spans[-1][1] < b:
            spans.append((b - WINDOW, b))
    if not spans or not len(pieces):
        return np.zeros((0, pieces.shape[1] if pieces.ndim == 2 else 384), dtype=np.float32), window_starts
    sums = np.concatenate([np.zeros((1, pieces.shape[1]), np.float64), np.cumsum(pieces, axis=0, dtype=np.float64)])
    lo, hi = np.array(spans).T
    means = (sums[hi] - sums[lo]) / (hi - lo)[:, None]
    means /= np.clip(np.linalg.norm(means, axis=1, keepdims=True), 1e-12, None)
    return means.astype(np.float32), window_starts


__all__ = ["FEATURES", "Hit", "PolicyIndex", "cache_dir"]
