"""A small non-linear decision head: one hidden layer (ReLU) over standardised
inputs, softmax out. Several members fitted from different seeds are averaged.

The triage build fits it over a comment's MiniLM sentence vector joined with
the hashed-feature head's category probabilities and the rule scores
(handlers/train.py); `fit` is deterministic (full-batch Adam from seeded
initial weights, decoupled weight decay), so the build reproduces the shipped
file. Weights are stored as float16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(1, keepdims=True)


@dataclass(slots=True)
class MLP:
    """Averaged one-hidden-layer networks: w1 (members, inputs, hidden), w2 (members, hidden, classes)."""

    shift: np.ndarray  # (inputs,) subtracted from the input ...
    scale: np.ndarray  # (inputs,) ... then divided by this
    w1: np.ndarray
    b1: np.ndarray  # (members, hidden)
    w2: np.ndarray
    b2: np.ndarray  # (members, classes)
    classes: list[str]

    @property
    def inputs(self) -> int:
        return int(self.w1.shape[1])

    def dense(self) -> tuple[np.ndarray, ...]:
        """The weights as float32, for serving (convert once, read many times)."""
        return tuple(a.astype(np.float32) for a in (self.shift, self.scale, self.w1, self.b1, self.w2, self.b2))

    def proba(self, x: np.ndarray, dense: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
        shift, scale, w1, b1, w2, b2 = dense or self.dense()
        z = (x.astype(np.float32) - shift) / scale
        out = np.zeros((len(x), len(self.classes)), dtype=np.float32)
        for m in range(len(w1)):
            out += softmax(np.maximum(z @ w1[m] + b1[m], 0.0) @ w2[m] + b2[m])
        return out / len(w1)


def balanced(y: np.ndarray, weight: np.ndarray, classes: int) -> np.ndarray:
    """Per-row weights that give every class the same total, summing to 1."""
    counts = np.bincount(y, weights=weight, minlength=classes)
    sample = weight * (weight.sum() / (classes * np.clip(counts, 1e-9, None)))[y]
    return sample / sample.sum()


def _adam(params: list[np.ndarray], grads: list[np.ndarray], state: list[np.ndarray], t: int, lr: float) -> None:
    for param, grad, m, v in zip(params, grads, state[0::2], state[1::2], strict=True):
        m *= 0.9
        m += 0.1 * grad
        v *= 0.999
        v += 0.001 * grad * grad
        param -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)


def _member(
    z: np.ndarray, onehot: np.ndarray, sample: np.ndarray, hidden: int, seed: int, decay: float, iters: int, lr: float
) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, np.sqrt(2.0 / z.shape[1]), (z.shape[1], hidden)).astype(np.float32)
    b1 = np.zeros(hidden, dtype=np.float32)
    w2 = rng.normal(0.0, np.sqrt(1.0 / hidden), (hidden, onehot.shape[1])).astype(np.float32)
    b2 = np.zeros(onehot.shape[1], dtype=np.float32)
    params = [w1, b1, w2, b2]
    state = [np.zeros_like(p) for p in params for _ in (0, 1)]
    for t in range(1, iters + 1):
        h = np.maximum(z @ w1 + b1, 0.0)
        g = (softmax(h @ w2 + b2) - onehot) * sample[:, None]
        gh = (g @ w2.T) * (h > 0)
        _adam(params, [z.T @ gh, gh.sum(0), h.T @ g, g.sum(0)], state, t, lr)
        w1 *= np.float32(1 - lr * decay)  # decoupled weight decay (AdamW)
        w2 *= np.float32(1 - lr * decay)
    return params


def fit(
    x: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    weight: np.ndarray,
    *,
    hidden: int = 128,
    members: int = 3,
    decay: float = 0.05,
    iters: int = 300,
    lr: float = 0.003,
    seed: int = 0,
    smooth: float = 0.0,
) -> MLP:
    """Class-balanced weighted cross-entropy (targets smoothed by `smooth`, which keeps the
    probabilities from saturating); members differ only in their seeded start."""
    x = x.astype(np.float64)
    shift = x.mean(0).astype(np.float16).astype(np.float32)  # rounded as stored, so serving sees what training saw
    scale = np.clip(x.std(0), 1e-3, None).astype(np.float16).astype(np.float32)
    z = ((x - shift) / scale).astype(np.float32)
    onehot = np.eye(len(classes), dtype=np.float32)[y] * np.float32(1 - smooth) + np.float32(smooth / len(classes))
    sample = balanced(y, weight, len(classes)).astype(np.float32)
    fitted = [_member(z, onehot, sample, hidden, seed + m, decay, iters, lr) for m in range(members)]
    w1, b1, w2, b2 = (np.stack([f[i] for f in fitted]).astype(np.float16) for i in range(4))
    return MLP(shift.astype(np.float16), scale.astype(np.float16), w1, b1, w2, b2, list(classes))
