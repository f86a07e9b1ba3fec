"""MiniLM on every installed backend against vectors the reference stack (sentence-transformers
+ torch) produced, and the choice of backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from handlers import minilm_torch
from handlers.embedding import BACKENDS, MiniLM, ModelUnavailable, choose_backend, shared_model
from tests.conftest import REPO

# bf16 products keep 8 bits of mantissa: vectors stay within cosine 0.9995 of float32
AGREEMENT = {"numpy": 0.9999, "torch-float32": 0.9999, "torch-bf16": 0.9995}
INSTALLED = [b for b in BACKENDS[1:] if b == "numpy" or minilm_torch.available()]


@pytest.fixture(scope="module", params=INSTALLED)
def model(request: pytest.FixtureRequest) -> MiniLM:
    try:
        return MiniLM(backend=request.param)
    except ModelUnavailable as exc:
        pytest.skip(str(exc))


def test_matches_the_reference_model(model: MiniLM) -> None:
    ref = json.loads((REPO / "tests" / "data" / "minilm_reference.json").read_text())
    ours = model.encode(ref["texts"])
    theirs = np.array(ref["vectors"], dtype=np.float32)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() > AGREEMENT[model.backend], cosine
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batching_and_padding_do_not_change_vectors(model: MiniLM) -> None:
    texts = ["short", "a much longer sentence about the school fair on Saturday morning", ""]
    together = model.encode(texts, batch_size=3)
    alone = np.vstack([model.encode([t]) for t in texts])
    if model.backend == "torch-bf16":
        # bf16 keeps 8 bits of mantissa and its kernels round differently per batch shape (emulated on CPUs
        # without native bf16): components move by up to 2**-8, while a padding or masking error moves a vector
        # far more (cosine well below 0.999)
        assert np.abs(together - alone).max() < 2**-8
        assert ((together * alone).sum(1) > 0.9999).all()
    else:
        assert np.abs(together - alone).max() < 1e-5
    assert model.encode([]).shape == (0, 384)


def test_similar_meanings_are_closer_than_unrelated_ones(model: MiniLM) -> None:
    a, b, c = model.encode(
        ["A man asked my daughter to meet him", "A stranger wants to meet up with my child", "Lovely assembly today"]
    )
    assert a @ b > a @ c + 0.2


def test_repeated_texts_are_encoded_once_and_get_the_same_vector(model: MiniLM) -> None:
    texts = ["see you at sports day", "lovely assembly", "see you at sports day"]
    vectors = model.encode(texts)
    assert np.array_equal(vectors[0], vectors[2])
    assert np.abs(vectors[:2] - model.encode(texts[:2])).max() < 1e-4


def test_fewer_layers_is_a_different_cheaper_encoder(model: MiniLM) -> None:
    full = model.encode(["a stranger wants to meet my child"])
    short = model.encode(["a stranger wants to meet my child"], layers=3)
    assert np.allclose(np.linalg.norm(short, axis=1), 1.0, atol=1e-5)
    assert float(full[0] @ short[0]) < 0.999


def test_the_shared_model_is_the_fastest_backend_the_machine_has() -> None:
    expected = "numpy"
    if minilm_torch.available():
        expected = "torch-bf16" if minilm_torch.native_bf16() else "torch-float32"
    assert shared_model().backend == expected


def test_the_environment_can_pick_a_backend_and_a_wrong_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HALLMONITOR_ENCODER", "numpy")
    assert choose_backend() == "numpy"
    asked = "torch-float32" if minilm_torch.available() else "numpy"
    assert choose_backend(asked) == asked  # an explicit backend wins over the environment
    monkeypatch.setenv("HALLMONITOR_ENCODER", "tensorflow")
    with pytest.raises(ValueError, match="HALLMONITOR_ENCODER='tensorflow' is not an encoder backend"):
        choose_backend()


def test_torch_backends_are_refused_clearly_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minilm_torch, "torch", None)
    monkeypatch.delenv("HALLMONITOR_ENCODER", raising=False)
    assert choose_backend() == "numpy"
    with pytest.raises(ModelUnavailable, match="needs torch, which is not installed"):
        choose_backend("torch-bf16")


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    with_amx, without = tmp_path / "amx", tmp_path / "plain"
    with_amx.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f amx_bf16 amx_tile\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert minilm_torch.native_bf16(with_amx)
    assert not minilm_torch.native_bf16(without)
    assert not minilm_torch.native_bf16(tmp_path / "missing")


@pytest.mark.skipif(not minilm_torch.available(), reason="torch is not installed")
def test_torch_runs_every_forward_pass_on_its_own_thread() -> None:
    """OpenMP keeps a thread team per calling thread; callers from many threads must not each get one."""
    import threading

    model = MiniLM(backend="torch-float32")
    seen: set[str] = set()
    forward = model.forward._states  # type: ignore[attr-defined]

    def spy(*args: object) -> np.ndarray:
        seen.add(threading.current_thread().name)
        return forward(*args)

    model.forward._states = spy  # type: ignore[attr-defined]
    callers = [threading.Thread(target=model.encode, args=([f"comment {i}"],)) for i in range(8)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert len(seen) == 1 and next(iter(seen)).startswith("minilm-torch"), seen
