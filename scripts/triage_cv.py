"""Triage figures the build does not print: 5-fold cross-validation on the
training corpus by source, and stress tests on the public sets that may not
shape the shipped head (GPL-3.0 or no licence stated; see DATA.md).

    python scripts/triage_cv.py            # both
    python scripts/triage_cv.py --cv       # cross-validation only
    python scripts/triage_cv.py --stress   # stress tests only (the shipped head)

Figures, never assertions. No item text is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from handlers.corpus import DATASETS, pins, sha256  # noqa: E402
from handlers.train import build, figures, report  # noqa: E402

STRESS_ROWS = 600  # per set, a stable sample


def cross_validation() -> None:
    head, built, probs = build()
    print("\n".join(report(head, built, probs)))


Mapper = Callable[[str], str | None]
STRESS: dict[str, Mapper] = {
    "olid_offenseval2019.jsonl": lambda label: (
        "abuse"
        if label.startswith("OFF/TIN/IND") or label.startswith("OFF/TIN/GRP")
        else ("other" if label in ("NOT", "OFF/UNT") else None)
    ),
    "formspring_cyberbullying.jsonl": lambda label: {"bullying_votes_0of3": "other"}.get(
        label, "abuse" if label in ("bullying_votes_2of3", "bullying_votes_3of3") else None
    ),
    "twitter_suicidal_intention.jsonl": lambda label: "safeguarding" if label == "1" else "other",
    "ethos.jsonl": lambda label: "abuse" if label.startswith("hate") else "other",
}


def stress() -> None:
    from handlers.triage import HybridClassifier

    clf = HybridClassifier()
    print("stress tests (not training data; the shipped head)")
    for name, mapper in STRESS.items():
        path = DATASETS / name
        if sha256(path) != pins()[name]:
            print(f"  {name}: sha256 differs from the pin; skipped")
            continue
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        rows = [r for r in rows if mapper(r["label"])]
        rows.sort(key=lambda r: zlib.crc32(r["source_id"].encode()))
        rows = rows[:STRESS_ROWS]
        verdicts = clf.classify_many([r["text"] for r in rows])
        pairs = [(mapper(r["label"]) or "other", v.category) for r, v in zip(rows, verdicts, strict=True)]
        print(f"  {name.removesuffix('.jsonl'):<30} {figures(pairs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cv", action="store_true")
    parser.add_argument("--stress", action="store_true")
    args = parser.parse_args()
    both = not (args.cv or args.stress)
    if args.cv or both:
        cross_validation()
    if args.stress or both:
        stress()


if __name__ == "__main__":
    main()
