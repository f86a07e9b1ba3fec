"""Our NumPy MiniLM against vectors the reference stack (sentence-transformers + torch) produced."""

from __future__ import annotations

import json

import numpy as np

from handlers.embedding import shared_model
from tests.conftest import REPO


def test_matches_the_reference_model() -> None:
    ref = json.loads((REPO / "tests" / "data" / "minilm_reference.json").read_text())
    ours = shared_model().encode(ref["texts"])
    theirs = np.array(ref["vectors"], dtype=np.float32)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() > 0.9999, cosine
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batching_and_padding_do_not_change_vectors() -> None:
    model = shared_model()
    texts = ["short", "a much longer sentence about the school fair on Saturday morning", ""]
    together = model.encode(texts, batch_size=3)
    alone = np.vstack([model.encode([t]) for t in texts])
    assert np.abs(together - alone).max() < 1e-5
    assert model.encode([]).shape == (0, 384)


def test_similar_meanings_are_closer_than_unrelated_ones() -> None:
    a, b, c = shared_model().encode(
        ["A man asked my daughter to meet him", "A stranger wants to meet up with my child", "Lovely assembly today"]
    )
    assert a @ b > a @ c + 0.2
