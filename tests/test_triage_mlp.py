"""The non-linear decision head (handlers/mlp.py): deterministic, learns what a
linear head cannot, and gives probabilities."""

from __future__ import annotations

import numpy as np

from handlers import mlp


def rings(n: int = 400, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Two classes no straight line separates: inside or outside a circle."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2))
    return x, (np.hypot(x[:, 0], x[:, 1]) > 0.7).astype(np.int64)


def test_the_fit_is_deterministic_and_learns_a_non_linear_boundary() -> None:
    x, y = rings()
    a = mlp.fit(x, y, ["in", "out"], np.ones(len(y)), hidden=32, members=2, iters=300, lr=0.02, decay=0.0)
    b = mlp.fit(x, y, ["in", "out"], np.ones(len(y)), hidden=32, members=2, iters=300, lr=0.02, decay=0.0)
    assert all(np.array_equal(p, q) for p, q in zip(a.dense(), b.dense(), strict=True))
    test_x, test_y = rings(seed=2)
    p = a.proba(test_x)
    assert p.shape == (400, 2) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    assert (p.argmax(1) == test_y).mean() > 0.9  # a linear head gets about 0.6 on this


def test_classes_are_balanced_by_weight() -> None:
    y = np.array([0, 0, 0, 1])
    sample = mlp.balanced(y, np.array([1.0, 1.0, 1.0, 2.0]), 2)
    assert np.isclose(sample.sum(), 1.0)
    assert np.isclose(sample[y == 0].sum(), sample[y == 1].sum())
