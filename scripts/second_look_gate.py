"""How often the MiniLM second look is asked, and what asking less costs, on the
build's out-of-fold predictions (our own comments; never dev or blind items).

    python scripts/second_look_gate.py [--layers 6]

For each candidate gate (handlers/second_look.asks with other numbers) the
out-of-fold second-look probabilities replace the first head's where the gate asks, the route
thresholds are chosen as the build chooses them, and the figures for our
own comments are printed: the share asked, category accuracy, escalation
and DSL recall, false escalations and false DSL pages. "every comment" and
"never" bound the range. `--layers N` embeds with only the first N of
MiniLM's 6 layers (a cheaper encoder; the semantic head is re-fitted on
those vectors). Figures, never assertions; takes ten minutes or more.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from handlers import train  # noqa: E402
from handlers.corpus import corpus  # noqa: E402
from handlers.embedding import reference_model  # noqa: E402
from handlers.route import Limits  # noqa: E402
from handlers.second_look import QUIET, SURE, asks  # noqa: E402
from handlers.verdict import CATEGORIES  # noqa: E402

Gate = Callable[[Mapping[str, float]], bool]


def out_of_fold(built: train.Built) -> tuple[np.ndarray, dict[int, dict[str, float]]]:
    """The first head's out-of-fold probabilities (every row) and the second look's (our rows),
    stacked on nested folds as the build does."""
    folds = np.array([train.fold_of(r) for r in built.rows])
    fast = train.first_out_of_fold(built, folds)
    second: dict[int, dict[str, float]] = {}
    ours = folds[built.semantic]
    for k, seen in enumerate(train.nested_first(built, folds, fast)):
        semantic = train.fit_semantic(built, np.flatnonzero(ours != k), seen)
        local = np.flatnonzero(ours == k)
        for i, row in zip(built.semantic[local], train.second_look(built, semantic, local, seen), strict=True):
            second[int(i)] = dict(zip(CATEGORIES, map(float, row), strict=True))
    return fast, second


def figures(built: train.Built, fast: np.ndarray, blended: dict[int, dict[str, float]], gate: Gate) -> str:
    probs = fast.copy()
    asked = 0
    for i, p in blended.items():
        if gate(dict(zip(CATEGORIES, map(float, fast[i]), strict=True))):
            probs[i] = [p[c] for c in CATEGORIES]
            asked += 1
    th = train.choose_thresholds(built, probs)
    ours = [i for i, r in enumerate(built.rows) if r.source in train.IN_DOMAIN]
    got = train.routes(built, probs, Limits.of(th), ours)
    pairs = [(built.rows[i].category, g) for i, g in zip(ours, got, strict=True)]
    return f"asked {asked / len(blended):6.1%}  {train.figures(pairs)}  thresholds {th}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=6, help="MiniLM layers to read (6 = the whole model)")
    args = parser.parse_args()
    if args.layers != 6:
        model = reference_model()
        model.encode = partial(model.encode, layers=args.layers)  # type: ignore[method-assign]
    built = train.prepare(corpus())
    fast, blended = out_of_fold(built)
    gates: dict[str, Gate] = {"every comment": lambda p: True, "never": lambda p: False}
    for sure in (0.6, SURE, 0.85):
        for quiet in (0.03, QUIET["safeguarding"], 0.08):
            q = {"safeguarding": quiet, "abuse": QUIET["abuse"]}
            mark = " (shipped)" if (sure, quiet) == (SURE, QUIET["safeguarding"]) else ""
            gates[f"sure {sure:.2f}, quiet {quiet:.2f}{mark}"] = partial(asks, sure=sure, quiet=q)
    print(f"out-of-fold, our {len(blended)} comments, MiniLM layers {args.layers}")
    for name, gate in gates.items():
        print(f"  {name:<32} {figures(built, fast, blended, gate)}")


if __name__ == "__main__":
    main()
