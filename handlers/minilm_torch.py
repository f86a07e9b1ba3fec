"""MiniLM's forward pass in PyTorch: bfloat16 matrix products where the CPU has native
bf16 (AMX or AVX-512 BF16), float32 elsewhere.

The same weights and the same arithmetic as handlers/minilm_numpy.py; layer norms,
softmax and pooling are kept in float32 (only the linear layers and attention products
run in bf16). On this project's 2-core machine it reads short comments about 3x faster
than NumPy with vectors within cosine 0.9998 of the float ones
(`python scripts/encoder_options.py`; tests/test_embedding.py checks the agreement).
Without torch installed, `available()` is False and the NumPy encoder is used.
Torch releases the GIL inside its operators. Every forward pass runs on one long-lived thread of
the encoder's own (callers from any thread wait for it): OpenMP keeps a thread team per calling
thread, and a service calls from many short-lived executor threads (a CI run once segfaulted inside
`F.linear` on such a thread; pytorch/pytorch#16828 reports the same with many calling threads).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from handlers.minilm_numpy import count_layers

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the encoder falls back to NumPy (handlers/embedding.py)
    torch = None  # type: ignore[assignment]
    F = None  # type: ignore[assignment]

BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs with native bf16 products


def available() -> bool:
    return torch is not None


def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bf16 natively; elsewhere bf16 is emulated and slower than float32."""
    try:
        flags = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in BF16_FLAGS)


class TorchForward:
    """The BERT encoder over safetensors weights (`bert.` prefix removed), in torch."""

    def __init__(self, w: dict[str, np.ndarray], *, heads: int, eps: float, bf16: bool) -> None:
        if torch is None:
            raise RuntimeError("torch is not installed")
        self.heads, self.eps = heads, eps
        self.dtype = torch.bfloat16 if bf16 else torch.float32
        self.name = "torch-bf16" if bf16 else "torch-float32"
        t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in w.items()}
        self.dim = int(t["embeddings.word_embeddings.weight"].shape[1])
        # Embeddings and layer norms stay float32; linear weights take the product dtype.
        self.word = t["embeddings.word_embeddings.weight"]
        self.position = t["embeddings.position_embeddings.weight"]
        self.token_type = t["embeddings.token_type_embeddings.weight"][0]
        self.emb_ln = (t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
        self.layers = [self._layer(t, f"encoder.layer.{i}.") for i in range(count_layers(w))]
        self.runner = ThreadPoolExecutor(1, thread_name_prefix="minilm-torch")

    def _layer(self, t: dict[str, Any], p: str) -> dict[str, Any]:
        def lin(name: str) -> tuple[Any, Any]:
            return t[p + name + ".weight"].to(self.dtype), t[p + name + ".bias"].to(self.dtype)

        qkv_w = torch.cat([t[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")])
        qkv_b = torch.cat([t[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
        return {
            "qkv": (qkv_w.to(self.dtype), qkv_b.to(self.dtype)),
            "out": lin("attention.output.dense"),
            "ln1": (t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"]),
            "up": lin("intermediate.dense"),
            "down": lin("output.dense"),
            "ln2": (t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"]),
        }

    def states(self, ids: np.ndarray, mask: np.ndarray, layers: int) -> np.ndarray:
        """The last read layer's vector for every token, (batch, length, dim) float32, computed
        on the encoder's own thread."""
        return self.runner.submit(self._states, ids, mask, layers).result()

    def _states(self, ids: np.ndarray, mask: np.ndarray, layers: int) -> np.ndarray:
        batch, length = ids.shape
        dim, heads, eps = self.dim, self.heads, self.eps
        with torch.inference_mode():
            tokens = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))
            x = self.word[tokens] + self.position[:length] + self.token_type
            x = F.layer_norm(x, (dim,), *self.emb_ln, eps)
            real = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)) > 0
            allowed = real[:, None, None, :]  # attention reads real tokens only
            for layer in self.layers[:layers]:
                h = x.to(self.dtype)
                qkv = F.linear(h, *layer["qkv"]).view(batch, length, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
                ctx = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=allowed)
                ctx = ctx.transpose(1, 2).reshape(batch, length, dim)
                ln1, ln2 = layer["ln1"], layer["ln2"]
                x = F.layer_norm(x + F.linear(ctx, *layer["out"]).float(), (dim,), ln1[0], ln1[1], eps)
                up = F.gelu(F.linear(x.to(self.dtype), *layer["up"]), approximate="tanh")
                x = F.layer_norm(x + F.linear(up, *layer["down"]).float(), (dim,), ln2[0], ln2[1], eps)
            return x.numpy()
