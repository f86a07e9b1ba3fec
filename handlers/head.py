"""The shipped triage head: softmax regressions stored as int8 weights with
one scale per class (handlers/data/triage_head.npz).

Over hashed features (handlers/features.py): the category (8 classes), and
the kind of concern and who seems to be writing, which only word the reason
a moderator reads. Over MiniLM sentence embeddings: a second category head,
`semantic`, trained on our own comments, which reads paraphrase the hashed
features miss; the hybrid asks it only where the first head is unsure.
`fit` is deterministic (full-batch Adam from zeros), so the build script
reproduces the shipped file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from handlers.features import DIM, Sparse

HEAD_FILE = Path(__file__).parent / "data" / "triage_head.npz"
PARTS = ("category", "kind", "register", "semantic")
SMALL_DIM = 1 << 12  # kind and register heads read features folded to this many columns
SEMANTIC_TOKENS = 128  # MiniLM reads at most this many tokens of a comment


class HeadMissing(RuntimeError):
    """The shipped head file is absent or unreadable; rules still work."""


@dataclass(slots=True)
class Linear:
    """One softmax regression: int8 weights, per-class scale, bias, class names."""

    weights: np.ndarray  # (dim, classes) int8
    scale: np.ndarray  # (classes,) float32
    bias: np.ndarray  # (classes,) float32
    classes: list[str]

    @property
    def dim(self) -> int:
        return int(self.weights.shape[0])

    def dequantised(self) -> np.ndarray:
        return self.weights.astype(np.float32) * self.scale

    def proba_dense(self, x: np.ndarray, dense: np.ndarray | None = None) -> np.ndarray:
        w = dense if dense is not None else self.dequantised()
        return softmax(x @ w + self.bias)

    def proba(self, x: Sparse, dense: np.ndarray | None = None) -> np.ndarray:
        w = dense if dense is not None else self.dequantised()
        rows = x if self.dim == DIM else Sparse(x.indptr, x.indices % self.dim, x.values)
        return softmax(rows.dot(w) + self.bias)


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(1, keepdims=True)


def fit(
    x: Sparse,
    y: np.ndarray,
    classes: list[str],
    weight: np.ndarray,
    *,
    dim: int = DIM,
    l2: float = 1e-5,
    iters: int = 60,
    lr: float = 0.1,
) -> Linear:
    """Weighted multinomial logistic regression, full batch, Adam from zeros; classes balanced."""
    k = len(classes)
    indices = x.indices % dim
    rows = x.row_ids()
    counts = np.bincount(y, weights=weight, minlength=k)
    sample = (weight * (weight.sum() / (k * np.clip(counts, 1e-9, None)))[y]).astype(np.float32)
    sample /= sample.sum()
    onehot = np.eye(k, dtype=np.float32)[y]
    # X^T G as one segment sum over the entries sorted by column (all classes at once)
    order = np.argsort(indices, kind="stable")
    columns, starts = np.unique(indices[order], return_index=True)
    sorted_rows, sorted_values = rows[order], x.values[order, None]
    w = np.zeros((dim, k), dtype=np.float32)
    b = np.zeros(k, dtype=np.float32)
    m_w, v_w, m_b, v_b = np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)
    beta1, beta2 = 0.9, 0.999
    folded = Sparse(x.indptr, indices, x.values)
    for t in range(1, iters + 1):
        g = (softmax(folded.dot(w) + b) - onehot) * sample[:, None]
        grad_w = l2 * w
        grad_w[columns] += np.add.reduceat(sorted_values * g[sorted_rows], starts, axis=0)
        grad_b = g.sum(0)
        for param, grad, m, v in ((w, grad_w, m_w, v_w), (b, grad_b, m_b, v_b)):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            param -= lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + 1e-8)
    return quantise(w, b, classes)


def fit_dense(
    x: np.ndarray, y: np.ndarray, classes: list[str], weight: np.ndarray, *, l2: float = 1e-4, iters: int = 300
) -> Linear:
    """The same regression over dense rows (sentence embeddings)."""
    k = len(classes)
    counts = np.bincount(y, weights=weight, minlength=k)
    sample = weight * (weight.sum() / (k * np.clip(counts, 1e-9, None)))[y]
    sample /= sample.sum()
    onehot = np.eye(k)[y]
    x = x.astype(np.float64)
    w, b = np.zeros((x.shape[1], k)), np.zeros(k)
    m_w, v_w, m_b, v_b = np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)
    for t in range(1, iters + 1):
        g = (softmax(x @ w + b) - onehot) * sample[:, None]
        for param, grad, m, v in ((w, x.T @ g + l2 * w, m_w, v_w), (b, g.sum(0), m_b, v_b)):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            param -= 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return quantise(w, b, classes)


def quantise(w: np.ndarray, b: np.ndarray, classes: list[str]) -> Linear:
    scale = np.clip(np.abs(w).max(0), 1e-9, None) / 127.0
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return Linear(q, scale.astype(np.float32), b.astype(np.float32), list(classes))


@dataclass(slots=True)
class Head:
    category: Linear
    kind: Linear
    register: Linear
    semantic: Linear
    thresholds: dict[str, float] = field(default_factory=dict)
    manifest: dict[str, object] = field(default_factory=dict)

    def save(self, path: Path = HEAD_FILE) -> None:
        arrays: dict[str, np.ndarray] = {}
        for name in PARTS:
            part: Linear = getattr(self, name)
            arrays[f"{name}_w"], arrays[f"{name}_scale"], arrays[f"{name}_bias"] = part.weights, part.scale, part.bias
        meta = {"classes": {n: getattr(self, n).classes for n in PARTS}}
        meta |= {"thresholds": self.thresholds, "manifest": self.manifest}
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path = HEAD_FILE) -> Head:
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                parts = {n: Linear(z[f"{n}_w"], z[f"{n}_scale"], z[f"{n}_bias"], meta["classes"][n]) for n in PARTS}
        except (OSError, KeyError, ValueError) as exc:
            raise HeadMissing(
                f"{path}: cannot read the triage head ({exc}); rebuild it with python -m handlers.train"
            ) from None
        return cls(**parts, thresholds=meta["thresholds"], manifest=meta["manifest"])
