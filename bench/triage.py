"""Triage speed on two mixes: head load time, then comments/s batched and one
at a time (p50/p99 per comment), how often the MiniLM second look was
asked, and one very long comment.

    python bench/triage.py [--runs 3] [--mix 2000]

- hard cases: every distinct text of our training corpus (handlers/data):
  mostly safeguarding, abuse and look-alikes, so the second look is asked
  far more often than on a school's everyday comments.
- realistic mix: mostly routine comments (our question, complaint, praise,
  media and other rows that are not look-alikes, and benign teenage chatter
  none of three annotators called bullying, from
  ../shared/datasets/formspring_cyberbullying.jsonl, which the head never
  trained on), with 10 % hard cases and 5 % spam.
- school comments: what the polling benches feed (bench/comments.py:
  questions, praise, chat and a few complaints about a primary school's
  events, from templates; never training data): a cold poll pass triages
  these.

Texts are distinct within each mix, so the encoder's per-batch cache of
repeated texts does not flatter the figure. The head is loaded from the
shipped file (no training at start-up). Figures, never assertions; the
machine may be shared: the load average is printed, and `cpu` is the
process CPU time of a batched run (less sensitive to other processes than
the wall clock). Run it three times and read the medians. The encoder is
the one the service would use on this machine (HALLMONITOR_ENCODER=numpy
measures the NumPy float32 one instead).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
BENIGN = REPO.parent / "shared" / "datasets" / "formspring_cyberbullying.jsonl"


def _stable(texts: list[str]) -> list[str]:
    """Distinct texts in a fixed pseudo-random order."""
    return sorted(dict.fromkeys(texts), key=lambda t: zlib.crc32(t.encode()))


def mixes(size: int) -> dict[str, list[str]]:
    from handlers.corpus import read_training, read_written

    ours = read_training() + read_written()
    hard = [r.text for r in ours if r.category in ("safeguarding", "abuse") or r.kind.startswith("lookalike")]
    routine = [r.text for r in ours if r.category in ("question", "complaint", "praise", "media", "other")]
    routine = [t for t in routine if t not in set(hard)]
    spam = [r.text for r in ours if r.category == "spam"]
    if BENIGN.exists():  # evaluation only (no licence stated): never training data
        rows = [json.loads(line) for line in BENIGN.read_text(encoding="utf-8").splitlines()]
        routine += [r["text"] for r in rows if r["label"] == "bullying_votes_0of3"]
    mix = _stable(hard)[: size // 10] + _stable(spam)[: size // 20]
    mix += _stable(routine)[: size - len(mix)]
    from comments import comment

    school = _stable([comment(feed, n) for feed in range(size // 5) for n in range(10)])[:size]
    return {"hard cases": _stable([r.text for r in ours]), "realistic mix": _stable(mix), "school comments": school}


def run(label: str, model, texts: list[str], runs: int) -> None:  # type: ignore[no-untyped-def]
    rates, cpu = [], []
    asked_before = model.stats["second_look"]
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        model.classify_many(texts)
        rates.append(len(texts) / (time.perf_counter() - t))
        cpu.append(time.process_time() - c)
    asked = (model.stats["second_look"] - asked_before) / (runs * len(texts))
    times = []
    for text in texts[:500]:
        t = time.perf_counter()
        model.classify(text)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    print(
        f"  {label + ', batched:':<34}{statistics.median(rates):7.0f} comments/s (median of {runs}; "
        f"cpu {statistics.median(cpu):.2f} s; second look asked for {asked:.0%})"
    )
    print(f"  {label + ', one at a time:':<34}p50 {statistics.median(times):.2f} ms, p99 {p99:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="batched runs; the median is printed")
    parser.add_argument("--mix", type=int, default=2000, help="comments in the realistic mix")
    args = parser.parse_args()

    started = time.perf_counter()
    from handlers.hybrid import HybridClassifier
    from handlers.rules import RuleClassifier

    imported = time.perf_counter() - started
    clf = HybridClassifier()
    fast = HybridClassifier(semantic=False)
    backend = getattr(clf.encoder, "backend", "none")
    print(f"bench/triage.py: rules + hashed-feature head + MiniLM ({backend}, as served here) second look where unsure")
    print(f"  load: imports {imported:.2f} s, head and MiniLM {clf.load_seconds * 1000:.0f} ms")
    print(f"  load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    for name, texts in mixes(args.mix).items():
        print(f"{name}: {len(texts)} distinct comments")
        rules = RuleClassifier()
        t = time.perf_counter()
        rules.classify_many(texts)
        print(f"  {'rules only, batched:':<34}{len(texts) / (time.perf_counter() - t):7.0f} comments/s")
        run("hybrid", clf, texts, args.runs)
        run("hashed head only", fast, texts, args.runs)
    huge = "this is a very long comment about the school fair " * 20_000
    t = time.perf_counter()
    clf.classify(huge)
    took = (time.perf_counter() - t) * 1000
    print(f"one {len(huge) // 1_000_000} MB comment: {took:.1f} ms (capped for the model)")


if __name__ == "__main__":
    main()
