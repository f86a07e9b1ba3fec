"""Triage speed: head load time, then comments/s batched and one at a time
(p50/p99 per comment), and one very long comment.

    python bench/triage.py [--n 5000]

Comments are our own training texts (handlers/data), cycled to n: mostly
hard cases (safeguarding and look-alikes), so the MiniLM second look is
asked for far more of them than of a school's everyday comments. The head
is loaded from the shipped file (no training at start-up). Figures, never
assertions; the machine may be shared, so run it twice and read the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _fast(clf, texts):  # type: ignore[no-untyped-def]
    """The first head's probabilities and the rules, as the hybrid sees them."""
    from handlers.features import featurise
    from handlers.normalise import normalise
    from handlers.rules import literal, rule_scores
    from handlers.verdict import CATEGORIES

    normalised = [normalise(t) for t in texts]
    x = featurise([literal(t) for t in normalised], normalised=True)
    probs = clf.head.category.proba(x)
    for row, text in zip(probs, normalised, strict=True):
        yield dict(zip(CATEGORIES, map(float, row), strict=True)), rule_scores(text, normalised=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3, help="batched runs; the median is printed")
    args = parser.parse_args()

    started = time.perf_counter()
    from handlers.corpus import read_training, read_written
    from handlers.hybrid import HybridClassifier
    from handlers.route import needs_second_look
    from handlers.rules import RuleClassifier

    imported = time.perf_counter() - started
    clf = HybridClassifier()
    texts = [r.text for r in read_training() + read_written()]
    texts = (texts * (args.n // len(texts) + 1))[: args.n]
    print(f"bench/triage.py: {args.n} comments, rules + hashed-feature head + MiniLM second look where unsure")
    print(f"  load: imports {imported:.2f} s, head and MiniLM {clf.load_seconds * 1000:.0f} ms")

    rules = RuleClassifier()
    t = time.perf_counter()
    rules.classify_many(texts[:1000])
    print(f"  rules only, batched:      {1000 / (time.perf_counter() - t):8.0f} comments/s")
    for label, model in (("hybrid", clf), ("hashed head only", HybridClassifier(semantic=False))):
        rates = []
        for _ in range(args.runs):
            t = time.perf_counter()
            model.classify_many(texts)
            rates.append(args.n / (time.perf_counter() - t))
        times = []
        for text in texts[:500]:
            t = time.perf_counter()
            model.classify(text)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        p99 = times[int(len(times) * 0.99) - 1]
        print(f"  {label + ', batched:':<26}{statistics.median(rates):8.0f} comments/s (median of {args.runs})")
        print(f"  {label + ', one at a time:':<26}p50 {statistics.median(times):.2f} ms, p99 {p99:.2f} ms")
    asked = sum(needs_second_look(p, r) for p, r in _fast(clf, texts))
    print(f"  second look (MiniLM) asked for {asked / len(texts):.0%} of these comments")
    huge = "this is a very long comment about the school fair " * 20_000
    t = time.perf_counter()
    clf.classify(huge)
    took = (time.perf_counter() - t) * 1000
    print(f"  one {len(huge) // 1_000_000} MB comment:       {took:.1f} ms (capped for the model)")


if __name__ == "__main__":
    main()
