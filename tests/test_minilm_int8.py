"""The triage encoder: MiniLM's int8 ONNX graph, built once per machine and cached,
close to the float model, and a comment's vector never depends on the comments
encoded beside it."""

from __future__ import annotations

import numpy as np
import pytest

from handlers.embedding import ModelUnavailable, shared_model
from handlers.minilm_int8 import EncoderUnavailable, MiniLMInt8, quantised_graph, triage_encoder

TEXTS = [
    "What time does the Christmas fair start on Saturday?",
    "ive took loads of my mums tablets idk what to do",
    "Well done Year 6, what a brilliant sports day!",
    "",
]


@pytest.fixture(scope="module")
def encoder() -> MiniLMInt8:
    try:
        return triage_encoder()
    except (EncoderUnavailable, ModelUnavailable) as exc:
        pytest.skip(f"needs onnxruntime and the MiniLM package: {exc}")


def test_close_to_the_float_model(encoder: MiniLMInt8) -> None:
    int8, float32 = encoder.encode(TEXTS), shared_model().encode(TEXTS)
    assert int8.shape == (4, 384) and np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert (int8 * float32).sum(1).min() > 0.95


def test_a_vector_does_not_depend_on_its_neighbours(encoder: MiniLMInt8) -> None:
    together = encoder.encode(TEXTS + TEXTS[:1])
    alone = np.vstack([encoder.encode([t]) for t in TEXTS])
    assert np.array_equal(together[:4], alone)
    assert np.array_equal(together[4], together[0])  # a repeated text, encoded once


def test_the_token_cap_is_applied(encoder: MiniLMInt8) -> None:
    long = "the school fair was lovely " * 200
    capped = encoder.encode([long, long + " but the car park was chaos"], max_tokens=8)
    assert np.array_equal(capped[0], capped[1])  # the tail past the cap is never read
    assert not np.array_equal(capped[0], encoder.encode([long])[0])


def test_the_graph_is_built_once_and_then_read_from_the_cache(encoder: MiniLMInt8, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from handlers.embedding import model_dir

    monkeypatch.setenv("HALLMONITOR_CACHE_DIR", str(tmp_path))
    first = quantised_graph(model_dir() / "model.safetensors")
    built = first.stat().st_mtime_ns
    assert quantised_graph(model_dir() / "model.safetensors") == first and first.stat().st_mtime_ns == built
    assert np.array_equal(MiniLMInt8().encode(TEXTS), encoder.encode(TEXTS))  # same graph, same vectors


def test_an_unwritable_cache_still_gives_an_encoder(encoder: MiniLMInt8, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from handlers.embedding import model_dir

    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("HALLMONITOR_CACHE_DIR", str(blocked / "cache"))
    graph = quantised_graph(model_dir() / "model.safetensors")
    assert graph.exists() and not (blocked / "cache").exists()
