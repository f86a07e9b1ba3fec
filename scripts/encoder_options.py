"""Encoder options for MiniLM, measured side by side on our training corpus: the NumPy
float32 forward pass, PyTorch float32 and PyTorch bf16 (handlers/embedding.choose_backend
picks among them), each on 1 and 2 threads. Prints embeddings/s, process CPU milliseconds
per text and the cosine to the NumPy float32 vectors (the reference).

    python scripts/encoder_options.py [--limit N]

An int8 ONNX Runtime graph was measured in session 4 (2.2x the NumPy speed, cosine down
to 0.958, cross-validated false DSL pages up from 0.101 to 0.123) and dropped: bf16 is
faster on CPUs with native bf16 and keeps cosine above 0.9995. Figures, never assertions;
on a shared machine run it three times and read the medians.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from handlers import minilm_torch  # noqa: E402
from handlers.corpus import read_training, read_written  # noqa: E402
from handlers.embedding import BACKENDS, MiniLM  # noqa: E402
from handlers.head import SEMANTIC_TOKENS  # noqa: E402


def measure(model: MiniLM, texts: list[str], reference: np.ndarray, threads: int) -> None:
    if minilm_torch.torch is not None:
        minilm_torch.torch.set_num_threads(threads)
    model.encode(texts[:64], max_tokens=SEMANTIC_TOKENS)  # warm
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = model.encode(texts, max_tokens=SEMANTIC_TOKENS)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    cosine = (vectors * reference).sum(1)
    print(
        f"  {model.backend:<14} {threads} thread(s) {len(texts) / wall:6.0f} embeddings/s"
        f"  cpu {cpu / len(texts) * 1000:5.2f} ms/text  cosine min {cosine.min():.5f} mean {cosine.mean():.6f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=3000, help="comments to encode (default 3000)")
    args = parser.parse_args(argv)
    texts = list(dict.fromkeys(r.text for r in read_training() + read_written()))[: args.limit]
    reference = MiniLM(backend="numpy").encode(texts, max_tokens=SEMANTIC_TOKENS)
    print(f"encoder options, {len(texts)} distinct comments of our corpus, {SEMANTIC_TOKENS} tokens at most")
    print(f"  native bf16 on this CPU: {minilm_torch.native_bf16()}; torch installed: {minilm_torch.available()}")
    for backend in BACKENDS[1:]:
        if backend.startswith("torch") and not minilm_torch.available():
            print(f"  {backend}: torch not installed, skipped")
            continue
        model = MiniLM(backend=backend)
        for threads in (1, 2):
            if backend == "numpy":
                os.environ["OPENBLAS_NUM_THREADS"] = str(threads)  # read at import: numpy rows use the start value
            measure(model, texts, reference, threads)
            if backend == "numpy":
                break


if __name__ == "__main__":
    main()
