"""Policy answers: reading and indexing each policy cold (no embedding cache) and from the cache,
a 50-page PDF read and indexed cold, then per-question latency p50/p95 with the indexes warm.

    python bench/ask.py [--repeat 3]

The 50-page PDF is built in a temporary folder by repeating the pages of
../shared/policies/real-world/rawdah-montessori-bradford.pdf (18 pages) to 54
pages. Figures, never assertions; medians over --repeat runs, because the
machine is shared and single runs are noisy.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
POLICIES = SHARED / "policies"
sys.path.insert(0, str(REPO))


def fifty_page_pdf(folder: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    source = PdfReader(str(POLICIES / "real-world" / "rawdah-montessori-bradford.pdf"))
    writer = PdfWriter()
    while len(writer.pages) < 50:
        for page in source.pages:
            writer.add_page(page)
    path = folder / "fifty-pages.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def cold_seconds(path: Path, repeat: int) -> tuple[float, int]:
    """Median seconds to read, parse and index `path` with an empty embedding cache."""
    from handlers.policy.document import load_policy
    from handlers.policy.index import PolicyIndex

    runs, clauses = [], 0
    for _ in range(repeat):
        os.environ["HALLMONITOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="hm-bench-")
        started = time.perf_counter()
        document = load_policy(path)
        PolicyIndex(document)
        runs.append(time.perf_counter() - started)
        clauses = len(document.clauses)
    return statistics.median(runs), clauses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-only", action="store_true", help="skip the cold builds (indexes from the cache)")
    args = parser.parse_args()
    from handlers.embedding import shared_model
    from handlers.policy.answer import answer_question
    from handlers.policy.document import load_policy
    from handlers.policy.index import PolicyIndex

    started = time.perf_counter()
    backend = shared_model().backend
    load = time.perf_counter() - started
    print(f"bench/ask.py: {os.cpu_count()}-core CPU, MiniLM {backend}; model load {load:.2f} s (once per process)")
    print(f"  load average {os.getloadavg()[0]:.1f}: figures are medians of {args.repeat} runs")
    paths = sorted(POLICIES.glob("*.txt")) + sorted(p for p in (POLICIES / "real-world").iterdir() if p.suffix != ".md")
    paths.append(POLICIES / "real-world" / "newstead-road-preschool-mobile-phones.md")
    indexes = {}
    for path in paths:
        if path.name == "README.md":
            continue
        if args.latency_only:
            indexes[str(path.relative_to(POLICIES))] = PolicyIndex(load_policy(path))
            continue
        cold, clauses = cold_seconds(path, args.repeat)
        started = time.perf_counter()
        warm = PolicyIndex(load_policy(path))  # the cache the last cold run wrote
        cached = time.perf_counter() - started
        indexes[str(path.relative_to(POLICIES))] = warm
        print(f"  {path.name:<44} {clauses:4d} clauses  read+index {cold:5.2f} s cold, {cached:5.3f} s from cache")
    if not args.latency_only:
        with tempfile.TemporaryDirectory() as folder:
            big = fifty_page_pdf(Path(folder))
            cold, clauses = cold_seconds(big, args.repeat)
            print(f"  50-page PDF (54 pages, {clauses} clauses): read+index {cold:.2f} s cold (median)")
    rows = [json.loads(line) for line in (REPO / "tests" / "data" / "policy_train.jsonl").open()]
    latencies = []
    for _ in range(args.repeat):
        for row in rows:
            indexes[row["policy"]].forget_queries()  # each answer as if the question were new
            started = time.perf_counter()
            answer_question(indexes[row["policy"]], row["question"])
            latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(
        f"  {len(latencies)} answers (training questions, index warm): p50 {statistics.median(latencies):.1f} ms, "
        f"p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms"
    )
    model = shared_model()
    encodes = []
    for row in rows[:40]:
        started = time.perf_counter()
        model.encode([row["question"]])
        encodes.append((time.perf_counter() - started) * 1000)
    print(f"  one question embedding alone: p50 {statistics.median(encodes):.1f} ms (how loaded the CPU is)")


if __name__ == "__main__":
    main()
