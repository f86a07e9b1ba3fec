"""The triage second look's encoder: all-MiniLM-L6-v2 as an ONNX Runtime graph
with int8 weights (dynamic quantisation, per channel).

The graph is built from the same safetensors the NumPy encoder reads
(handlers/embedding.py), from ONNX Runtime's fused BERT operators
(EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu), then
quantised; the result (about 23 MB) is kept in the cache directory
(`HALLMONITOR_CACHE_DIR`, else ~/.cache/hallmonitor), so only the first start
on a machine pays the 2-4 s of building it. Its vectors are within cosine
0.96 (mean 0.99) of the float model's; the semantic head is trained on these
int8 vectors (`python -m handlers.train`), so training and serving read the
same encoder. On 2 cores it reads a short comment about 2.5x faster than the
NumPy encoder (`python scripts/encoder_options.py`). The policy answers keep
the float NumPy encoder. `session.run` is safe from several threads at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from handlers.embedding import DIM, MAX_TOKENS, model_dir, tokenizer

log = logging.getLogger(__name__)

MS = "com.microsoft"
GRAPH_VERSION = "1"  # bump when build_onnx or the quantisation settings change (a new cache file)


class EncoderUnavailable(RuntimeError):
    """onnxruntime or onnx is not installed."""


def cache_dir() -> Path:
    base = os.environ.get("HALLMONITOR_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hallmonitor"
    )
    return Path(base)


def build_onnx(path: Path, weights: Path) -> None:
    """MiniLM as one float32 ONNX graph of fused BERT operators, from its safetensors."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    w = {k.removeprefix("bert."): v for k, v in load_file(str(weights)).items()}
    inits, nodes = [], []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> None:
        domain = "" if op == "MatMul" else MS
        nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attrs))

    e = "embeddings."
    embed = [const("word", w[e + "word_embeddings.weight"]), const("pos", w[e + "position_embeddings.weight"])]
    embed += [const("seg", w[e + "token_type_embeddings.weight"]), const("eg", w[e + "LayerNorm.weight"])]
    embed += [const("eb", w[e + "LayerNorm.bias"])]
    nodes.append(
        helper.make_node(
            "EmbedLayerNormalization", ["ids", "segments", *embed, "mask"], ["x0", "mi"], domain=MS, epsilon=1e-12
        )
    )
    x = "x0"
    for i in range(6):
        p = f"encoder.layer.{i}."
        qkv = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
        qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
        node("Attention", [x, const(f"qw{i}", qkv), const(f"qb{i}", qkv_b), "mi"], f"a{i}", num_heads=12)
        node("MatMul", [f"a{i}", const(f"ow{i}", w[p + "attention.output.dense.weight"].T)], f"o{i}")
        ln1 = [const(f"g1{i}", w[p + "attention.output.LayerNorm.weight"])]
        ln1 += [const(f"b1{i}", w[p + "attention.output.LayerNorm.bias"])]
        ln1 += [const(f"ob{i}", w[p + "attention.output.dense.bias"])]
        node("SkipLayerNormalization", [f"o{i}", x, *ln1], f"h{i}", epsilon=1e-12)
        node("MatMul", [f"h{i}", const(f"iw{i}", w[p + "intermediate.dense.weight"].T)], f"m{i}")
        node("BiasGelu", [f"m{i}", const(f"ib{i}", w[p + "intermediate.dense.bias"])], f"ge{i}")
        node("MatMul", [f"ge{i}", const(f"uw{i}", w[p + "output.dense.weight"].T)], f"u{i}")
        ln2 = [const(f"g2{i}", w[p + "output.LayerNorm.weight"]), const(f"b2{i}", w[p + "output.LayerNorm.bias"])]
        ln2.append(const(f"ub{i}", w[p + "output.dense.bias"]))
        node("SkipLayerNormalization", [f"u{i}", f"h{i}", *ln2], f"x{i + 1}", epsilon=1e-12)
        x = f"x{i + 1}"
    ins = [helper.make_tensor_value_info(n, TensorProto.INT32, ["B", "L"]) for n in ("ids", "segments", "mask")]
    out = [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["B", "L", DIM])]
    graph = helper.make_graph(nodes, "minilm", ins, out, inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets, ir_version=9), str(path))


def quantised_graph(weights: Path) -> Path:
    """The int8 graph for these weights, built once per machine and kept in the cache."""
    import onnxruntime

    stat = weights.stat()
    key = f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{onnxruntime.__version__}|{GRAPH_VERSION}"
    path = cache_dir() / f"minilm-int8-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
    if path.exists():
        return path
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        where = Path(tempfile.mkdtemp(dir=path.parent))
    except OSError as exc:  # a read-only home: build for this process only
        log.warning("triage_encoder_cache_unwritable dir=%s reason=%s building_uncached", path.parent, exc)
        where, path = Path(tempfile.mkdtemp()), Path()
    fp32, int8 = where / "fp32.onnx", where / "int8.onnx"
    build_onnx(fp32, weights)
    options = {"DefaultTensorType": TensorProto.FLOAT}
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True, extra_options=options)
    if path == Path():
        return int8
    int8.replace(path)  # atomic: a second process building at once writes the same bytes
    shutil.rmtree(where, ignore_errors=True)
    log.info("triage_encoder_built path=%s", path)
    return path


class MiniLMInt8:
    """Encoder with the NumPy MiniLM's interface: `encode` returns unit vectors (n, 384) float32.

    Each text runs on its own (dynamic quantisation scales activations per call, so a batch
    would make one comment's vector depend on the comments beside it); single-threaded runs
    on a small pool, one per core, use the cores without ONNX Runtime's thread spinning."""

    def __init__(self, path: Path | None = None, *, threads: int = 2) -> None:
        started = time.perf_counter()
        path = path or model_dir()
        try:
            import onnxruntime as ort

            graph = quantised_graph(path / "model.safetensors")
        except ImportError as exc:
            raise EncoderUnavailable(f"{exc.name} is not installed; run `make install`") from None
        self.tokenizer = tokenizer(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.pool = ThreadPoolExecutor(max(1, min(threads, os.cpu_count() or 1)), thread_name_prefix="minilm")
        self.load_seconds = time.perf_counter() - started

    def _one(self, ids: list[int]) -> np.ndarray:
        row = np.array([ids], dtype=np.int32)
        hidden = self.session.run(None, {"ids": row, "segments": np.zeros_like(row), "mask": np.ones_like(row)})[0]
        pooled = hidden[0].mean(0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, max_tokens: int = MAX_TOKENS) -> np.ndarray:
        """Embed texts, each distinct text once (`batch_size` is accepted for the NumPy
        encoder's interface; texts run one at a time)."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        distinct = list(dict.fromkeys(t or "" for t in texts))
        encodings = self.tokenizer.encode_batch(distinct)
        ids = [e.ids[:max_tokens] for e in encodings]
        vectors = np.array(list(self.pool.map(self._one, ids)), dtype=np.float32).reshape(len(distinct), DIM)
        if len(distinct) == len(texts):
            return vectors
        where = {t: i for i, t in enumerate(distinct)}
        return vectors[[where[t or ""] for t in texts]]


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _shared() -> MiniLMInt8:
    model = MiniLMInt8()
    log.info("triage_encoder_loaded seconds=%.2f", model.load_seconds)
    return model


def triage_encoder() -> MiniLMInt8:
    """One int8 encoder per process (read-only after loading; safe to share between threads)."""
    with _lock:
        return _shared()
