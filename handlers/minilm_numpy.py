"""MiniLM's forward pass in NumPy float32: the reference the other backends are checked
against (tests/test_embedding.py), and the one used where PyTorch is not installed."""

from __future__ import annotations

from typing import Any

import numpy as np

_GELU_C = np.float32(np.sqrt(2.0 / np.pi))
_GELU_K = np.float32(0.044715)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + np.float32(eps)) * weight + bias


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


class NumpyForward:
    """The BERT encoder over safetensors weights (`bert.` prefix removed), float32."""

    name = "numpy"

    def __init__(self, w: dict[str, np.ndarray], *, heads: int, eps: float) -> None:
        self.heads, self.eps = heads, eps
        self.word = w["embeddings.word_embeddings.weight"]
        self.dim = int(self.word.shape[1])
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = [self._layer(w, f"encoder.layer.{i}.") for i in range(count_layers(w))]

    @staticmethod
    def _layer(w: dict[str, np.ndarray], p: str) -> tuple[Any, ...]:
        qkv_w = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
        qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
        return (
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

    def states(self, ids: np.ndarray, mask: np.ndarray, layers: int) -> np.ndarray:
        """The last read layer's vector for every token, (batch, length, dim) float32."""
        batch, length = ids.shape
        dim, eps = self.dim, self.eps
        # Linear layers run on (batch*length, dim): one large BLAS call, not one per sentence.
        x = (self.word[ids] + self.position[:length] + self.token_type).reshape(batch * length, dim)
        x = _layer_norm(x, *self.emb_ln, eps)
        bias = ((1.0 - mask[:, None, None, :]) * -1e9).astype(np.float32)
        head = dim // self.heads
        scale = np.float32(head**-0.5)
        for qkv_w, qkv_b, o_w, o_b, ln1, i_w, i_b, out_w, out_b, ln2 in self.layers[:layers]:
            qkv = (x @ qkv_w + qkv_b).reshape(batch, length, 3, self.heads, head).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            scores += bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, dim)
            x = _layer_norm(x + ctx @ o_w + o_b, ln1[0], ln1[1], eps)
            x = _layer_norm(x + _gelu(x @ i_w + i_b) @ out_w + out_b, ln2[0], ln2[1], eps)
        return x.reshape(batch, length, dim)


def count_layers(w: dict[str, np.ndarray]) -> int:
    """How many encoder layers the weights hold."""
    return len({k.split(".")[2] for k in w if k.startswith("encoder.layer.")})
