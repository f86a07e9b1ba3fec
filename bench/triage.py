"""Triage speed: model load time, then comments/s one at a time and batched.

    python bench/triage.py [--n 2000]

Comments are drawn from the training file and the dev set, cycled to n.
Figures, never assertions.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()

    started = time.perf_counter()
    from handlers.classifier import HybridClassifier, read_training
    from handlers.embedding import shared_model
    from handlers.triage import RuleClassifier

    encoder = shared_model()
    encoder_s = time.perf_counter() - started
    clf = HybridClassifier(encoder=encoder)
    load_s = time.perf_counter() - started
    texts = [t for _, t in read_training()]
    texts = (texts * (args.n // len(texts) + 1))[: args.n]
    print(f"bench/triage.py: {args.n} comments, 2-core CPU, NumPy MiniLM (no torch)")
    print(f"  load: {load_s:.2f} s (embedding model {encoder_s:.2f} s, head training {clf.load_seconds:.2f} s)")

    rules = RuleClassifier()
    t = time.perf_counter()
    rules.classify_many(texts)
    print(f"  rules only, batched:      {args.n / (time.perf_counter() - t):8.1f} comments/s")
    single = texts[:300]
    t = time.perf_counter()
    for text in single:
        clf.classify(text)
    print(f"  hybrid, one at a time:    {len(single) / (time.perf_counter() - t):8.1f} comments/s")
    t = time.perf_counter()
    clf.classify_many(texts)
    print(f"  hybrid, batched:          {args.n / (time.perf_counter() - t):8.1f} comments/s")


if __name__ == "__main__":
    main()
