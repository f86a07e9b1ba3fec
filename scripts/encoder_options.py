"""Encoder options for the MiniLM second look, measured side by side: the
float NumPy encoder (6 layers, and its first 3 layers only) and the same
weights as an ONNX Runtime graph in float32 and dynamically
quantised to int8. Prints embeddings/s, process CPU seconds and the cosine
to the shipped encoder's vectors.

    python scripts/encoder_options.py

The ONNX graphs are built with handlers/minilm_int8.build_onnx from the
installed model package (nothing is committed); the int8 one is what triage
now ships (handlers/minilm_int8.py), the float NumPy encoder is what the
policy answers use. Figures, never assertions; on
a shared machine run it three times and read the medians.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from handlers import minilm_int8  # noqa: E402
from handlers.corpus import read_training, read_written  # noqa: E402
from handlers.embedding import DIM, MiniLM, batches, model_dir, shared_model  # noqa: E402
from handlers.head import SEMANTIC_TOKENS  # noqa: E402

Encode = Callable[[list[str]], np.ndarray]


def build_onnx(path: Path) -> None:
    minilm_int8.build_onnx(path, model_dir() / "model.safetensors")


def onnx_encoder(model: MiniLM, path: Path) -> Encode:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(texts: list[str]) -> np.ndarray:
        encodings = model.tokenizer.encode_batch(texts)
        for enc in encodings:
            enc.truncate(SEMANTIC_TOKENS)
        lengths = [len(enc.ids) for enc in encodings]
        out = np.zeros((len(texts), DIM), np.float32)
        for chunk in batches(sorted(range(len(texts)), key=lengths.__getitem__), lengths, 64):
            ids = np.zeros((len(chunk), max(lengths[i] for i in chunk)), np.int32)
            for row, i in enumerate(chunk):
                ids[row, : lengths[i]] = encodings[i].ids
            mask = (ids != 0).astype(np.int32)
            hidden = session.run(None, {"input_ids": ids, "segment_ids": np.zeros_like(ids), "mask": mask})[0]
            pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
            out[chunk] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out

    return encode


def measure(name: str, encode: Encode, texts: list[str], reference: np.ndarray) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = encode(texts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    cosine = (vectors * reference).sum(1)
    print(f"  {name:<26} {len(texts) / wall:6.0f} embeddings/s  cpu {cpu:5.2f} s  cosine min {cosine.min():.4f}")


def main() -> None:
    texts = list(dict.fromkeys(r.text for r in read_training() + read_written()))
    model = shared_model()
    reference = model.encode(texts, max_tokens=SEMANTIC_TOKENS)
    print(f"encoder options, {len(texts)} distinct comments of our corpus, {SEMANTIC_TOKENS} tokens at most")
    measure("numpy, 6 layers (shipped)", lambda t: model.encode(t, max_tokens=SEMANTIC_TOKENS), texts, reference)
    measure("numpy, first 3 layers", lambda t: model.encode(t, max_tokens=SEMANTIC_TOKENS, layers=3), texts, reference)
    try:
        from onnx import TensorProto
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        print("  onnxruntime / onnx not installed: ONNX rows skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "minilm.onnx", Path(tmp) / "minilm_int8.onnx"
        build_onnx(fp32)
        options = {"DefaultTensorType": TensorProto.FLOAT}
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True, extra_options=options)
        measure("onnxruntime float32", onnx_encoder(model, fp32), texts, reference)
        measure("onnxruntime int8 (dynamic)", onnx_encoder(model, int8), texts, reference)


if __name__ == "__main__":
    main()
