"""The shipped triage head: softmax regressions stored as int8 weights with
one scale per class (handlers/data/triage_head.npz).

Over hashed features (handlers/features.py): the category (8 classes), and
the kind of concern and who seems to be writing, which only word the reason
a moderator reads. The second look, `semantic`, is a small non-linear head
(handlers/mlp.py, float16) trained on our own comments over the MiniLM
sentence vector joined with the first head's out-of-fold category
probabilities and the rule points (handlers/second_look.inputs); it reads
paraphrase the hashed features miss, and the hybrid asks it only where the
first head is unsure. Every fit is deterministic (full-batch Adam from zeros
or seeded weights), so the build script reproduces the shipped file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from handlers.features import DIM, Sparse
from handlers.mlp import MLP
from handlers.mlp import softmax as softmax

HEAD_FILE = Path(__file__).parent / "data" / "triage_head.npz"
PARTS = ("category", "kind", "register")  # the softmax regressions; `semantic` is the MLP
MLP_ARRAYS = ("shift", "scale", "w1", "b1", "w2", "b2")
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

    def proba(self, x: Sparse, dense: np.ndarray | None = None) -> np.ndarray:
        w = dense if dense is not None else self.dequantised()
        rows = x if self.dim == DIM else Sparse(x.indptr, x.indices % self.dim, x.values)
        return softmax(rows.dot(w) + self.bias)


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


def quantise(w: np.ndarray, b: np.ndarray, classes: list[str]) -> Linear:
    scale = np.clip(np.abs(w).max(0), 1e-9, None) / 127.0
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return Linear(q, scale.astype(np.float32), b.astype(np.float32), list(classes))


@dataclass(slots=True)
class Head:
    category: Linear
    kind: Linear
    register: Linear
    semantic: MLP
    thresholds: dict[str, float] = field(default_factory=dict)
    manifest: dict[str, object] = field(default_factory=dict)

    def save(self, path: Path = HEAD_FILE) -> None:
        arrays: dict[str, np.ndarray] = {}
        for name in PARTS:
            part: Linear = getattr(self, name)
            arrays[f"{name}_w"], arrays[f"{name}_scale"], arrays[f"{name}_bias"] = part.weights, part.scale, part.bias
        arrays |= {f"semantic_{n}": getattr(self.semantic, n) for n in MLP_ARRAYS}
        meta = {"classes": {n: getattr(self, n).classes for n in (*PARTS, "semantic")}}
        meta |= {"thresholds": self.thresholds, "manifest": self.manifest}
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path = HEAD_FILE) -> Head:
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                parts: dict[str, Linear | MLP] = {
                    n: Linear(z[f"{n}_w"], z[f"{n}_scale"], z[f"{n}_bias"], meta["classes"][n]) for n in PARTS
                }
                arrays = {n: z[f"semantic_{n}"] for n in MLP_ARRAYS}
                parts["semantic"] = MLP(**arrays, classes=meta["classes"]["semantic"])
        except (OSError, KeyError, ValueError) as exc:
            raise HeadMissing(
                f"{path}: cannot read the triage head ({exc}); rebuild it with python -m handlers.train"
            ) from None
        return cls(**parts, thresholds=meta["thresholds"], manifest=meta["manifest"])  # type: ignore[arg-type]
