"""Policy answers: index build time per policy (cold and from the disk cache),
then per-question latency p50/p95 once the index is built.

    python bench/ask.py [--repeat 5]

Figures, never assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ["HALLMONITOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="hm-bench-")

    from handlers.embedding import shared_model
    from handlers.policy.answer import answer_question
    from handlers.policy.document import load_policy
    from handlers.policy.index import PolicyIndex

    t = time.perf_counter()
    shared_model()
    print(f"bench/ask.py: 2-core CPU, NumPy MiniLM; model load {time.perf_counter() - t:.2f} s (once per process)")
    indexes = {}
    for path in sorted((SHARED / "policies").glob("*.txt")):
        document = load_policy(path)
        cold = PolicyIndex(document)  # embeds every clause, writes the cache
        warm = PolicyIndex(document)  # reads the cache
        indexes[path.name] = warm
        print(
            f"  index {path.name:<24} {len(document.clauses):4d} clauses  build {cold.build_seconds:5.2f} s cold, "
            f"{warm.build_seconds:5.3f} s from cache"
        )
    questions = [json.loads(line) for line in (SHARED / "eval" / "policy_dev.jsonl").open()]
    latencies = []
    for _ in range(args.repeat):
        for q in questions:
            t = time.perf_counter()
            answer_question(indexes[q["policy"]], q["question"])
            latencies.append((time.perf_counter() - t) * 1000)
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(
        f"  {len(latencies)} questions: latency p50 {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms, "
        f"max {latencies[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
