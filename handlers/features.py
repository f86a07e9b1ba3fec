"""Hashed text features for the triage head: words, word pairs and the letter
groups inside words, read from the normalised text.

Letter groups (3 to 5 characters, word edges marked) let "idiooot", "fukin"
and "h8" land near the words they stand for; word pairs keep "kill yourself"
apart from "kill time". Each feature is hashed (CRC-32, stable across
processes) to one of DIM columns with a sign, so no vocabulary is stored.
Vectors are L2-normalised with sublinear counts.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from handlers.normalise import normalise

DIM = 1 << 16
TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9.,;:()\"'-]")
CHAR_SIZES = (3, 4, 5)


@dataclass(frozen=True, slots=True)
class Sparse:
    """Rows of hashed features, CSR style: row i owns indices[indptr[i]:indptr[i+1]]."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    def row_ids(self) -> np.ndarray:
        return np.repeat(np.arange(self.rows), np.diff(self.indptr))

    def take(self, rows: Sequence[int] | np.ndarray) -> Sparse:
        parts = [self._part(int(r)) for r in rows]
        lengths = np.array([len(i) for i, _ in parts], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if not parts:
            return Sparse(indptr, np.zeros(0, np.int64), np.zeros(0, np.float32))
        return Sparse(indptr, np.concatenate([i for i, _ in parts]), np.concatenate([v for _, v in parts]))

    def _part(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.indptr[row], self.indptr[row + 1]
        return self.indices[start:end], self.values[start:end]

    def dot(self, weights: np.ndarray) -> np.ndarray:
        """(rows, DIM) x (DIM, k) -> (rows, k)."""
        if not self.rows:
            return np.zeros((0, weights.shape[1]), dtype=np.float32)
        # every row has at least one feature (tokens() never returns none), so reduceat is safe
        return np.add.reduceat(weights[self.indices] * self.values[:, None], self.indptr[:-1], axis=0)


def tokens(text: str, *, normalised: bool = False) -> list[str]:
    """The feature strings of one comment."""
    words = TOKEN.findall((text if normalised else normalise(text)).replace("ck", "k"))
    found = [f"w:{w}" for w in words]
    found += [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
    for w in words:
        if len(w) < 3 or not w.isalpha():
            continue
        padded = f"<{w}>"
        for n in CHAR_SIZES:
            found += [padded[i : i + n] for i in range(len(padded) - n + 1)]
    return found or ["w:<empty>"]


def _row(text: str, normalised: bool) -> tuple[np.ndarray, np.ndarray]:
    counts: dict[int, float] = {}
    for feature in tokens(text, normalised=normalised):
        h = zlib.crc32(feature.encode())
        column = h & (DIM - 1)
        counts[column] = counts.get(column, 0.0) + (1.0 if h & (1 << 31) else -1.0)
    columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
    raw = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
    values = np.sign(raw) * np.log1p(np.abs(raw))
    norm = float(np.linalg.norm(values)) or 1.0
    return columns, (values / norm).astype(np.float32)


def featurise(texts: Sequence[str], *, normalised: bool = False) -> Sparse:
    """Hashed feature rows for the texts (normalised here unless they already are)."""
    rows = [_row(t, normalised) for t in texts]
    lengths = np.array([len(c) for c, _ in rows], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if not rows:
        return Sparse(indptr, np.zeros(0, np.int64), np.zeros(0, np.float32))
    return Sparse(indptr, np.concatenate([c for c, _ in rows]), np.concatenate([v for _, v in rows]))


FOLD = 1 << 13


def folded(rows: Sparse) -> np.ndarray:
    """Dense unit rows over FOLD columns (features folded modulo FOLD): small enough to
    keep one per moderator label, close enough to compare near-duplicates by cosine."""
    dense = np.zeros((rows.rows, FOLD), dtype=np.float32)
    np.add.at(dense, (rows.row_ids(), rows.indices % FOLD), rows.values)
    return dense / np.clip(np.linalg.norm(dense, axis=1, keepdims=True), 1e-9, None)
