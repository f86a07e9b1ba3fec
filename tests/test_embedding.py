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


def test_repeated_texts_are_encoded_once_and_get_the_same_vector() -> None:
    model = shared_model()
    texts = ["see you at sports day", "lovely assembly", "see you at sports day"]
    vectors = model.encode(texts)
    assert np.array_equal(vectors[0], vectors[2])
    assert np.abs(vectors[:2] - model.encode(texts[:2])).max() < 1e-6


def test_fewer_layers_is_a_different_cheaper_encoder() -> None:
    model = shared_model()
    full, short = (
        model.encode(["a stranger wants to meet my child"]),
        model.encode(["a stranger wants to meet my child"], layers=3),
    )
    assert np.allclose(np.linalg.norm(short, axis=1), 1.0, atol=1e-5)
    assert float(full[0] @ short[0]) < 0.999
