"""Build the shipped triage head from the pinned corpus.

    python -m handlers.train            # rebuild handlers/data/triage_head.npz
    python -m handlers.train --check    # rebuild in memory, compare with the shipped file

Steps: read the corpus (handlers/corpus.py), featurise (and embed our own
comments with MiniLM for the second look), 5-fold cross-validation for
out-of-fold probabilities, choose the route thresholds on them by expected
cost (a missed disclosure costs most), fit the heads on everything, save.

The second look (handlers/mlp.py) reads the first head's probabilities, so it
is stacked: it learns from out-of-fold ones, never from a head that saw the
comment (that head is surer than it will be on new text). Inside the
cross-validation that means nested folds: for outer fold k, the training
rows' first-head probabilities come from heads fitted without fold k and
without their own fold (one fit per pair of folds, ten in all).
Deterministic: the same files give the same head.
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handlers.corpus import DATASETS, OWN_FILES, OWN_SOURCES, PINS, SHIPPED, Example, corpus, sha256
from handlers.embedding import reference_model
from handlers.features import Sparse, featurise
from handlers.head import HEAD_FILE, PARTS, SEMANTIC_TOKENS, SMALL_DIM, Head, Linear, fit
from handlers.mlp import MLP
from handlers.mlp import fit as fit_mlp
from handlers.normalise import normalise
from handlers.route import Limits, route
from handlers.rules import RuleScores, literal, rule_scores
from handlers.second_look import asks, inputs
from handlers.verdict import CATEGORIES, ESCALATE

FOLDS = 5
IN_DOMAIN = ("ours", *(name for _, name in OWN_SOURCES))
# What a wrong route costs, relative to a needless SLT ping.
COST = {"missed_dsl": 10.0, "false_dsl": 4.0, "missed_escalation": 5.0, "false_escalation": 3.0}
GRID = tuple(round(0.05 + 0.025 * i, 3) for i in range(27))  # 0.05 .. 0.70
# The second look's network (handlers/mlp.py): the best of a small grid (width, decay, steps, seeds,
# label smoothing) on this cross-validation; README records the alternatives tried.
DECISION = {"hidden": 128, "members": 3, "decay": 0.5, "iters": 200, "lr": 0.003, "smooth": 0.2}


@dataclass(slots=True)
class Built:
    rows: list[Example]
    x: Sparse
    rules: list[RuleScores]
    semantic: np.ndarray  # indices of the rows the semantic head learns from (ours)
    embeddings: np.ndarray  # their MiniLM vectors, in that order
    first: np.ndarray | None = None  # the first head's out-of-fold probabilities for those rows, once built

    def probe(self) -> np.ndarray:
        """What the shipped second look was fitted on: its inputs for every one of our rows."""
        assert self.first is not None, "build() sets the first head's out-of-fold probabilities"
        return inputs(self.embeddings, self.first, [self.rules[i] for i in self.semantic])


def prepare(rows: list[Example]) -> Built:
    normalised = [normalise(r.text) for r in rows]
    rules = [rule_scores(t, normalised=True) for t in normalised]
    cleaned = [literal(t) for t in normalised]  # as the hybrid reads them
    ours = np.array([i for i, r in enumerate(rows) if r.source in IN_DOMAIN], dtype=np.int64)
    vectors = reference_model().encode([cleaned[i] for i in ours], max_tokens=SEMANTIC_TOKENS)
    return Built(rows, featurise(cleaned, normalised=True), rules, ours, vectors)


def fold_of(example: Example) -> int:
    return zlib.crc32(example.text.encode()) % FOLDS


def fit_category(built: Built, which: np.ndarray) -> Linear:
    y = np.array([CATEGORIES.index(built.rows[i].category) for i in which])
    weight = np.array([built.rows[i].weight for i in which])
    return fit(built.x.take(which), y, list(CATEGORIES), weight)


def fit_labels(built: Built, attr: str) -> Linear:
    which = np.array([i for i, r in enumerate(built.rows) if getattr(r, attr)])
    classes = sorted({getattr(built.rows[i], attr) for i in which})
    y = np.array([classes.index(getattr(built.rows[i], attr)) for i in which])
    return fit(built.x.take(which), y, classes, np.ones(len(which)), dim=SMALL_DIM)


def fit_semantic(built: Built, which: np.ndarray, first: np.ndarray) -> MLP:
    """The second look over our rows `which` (indices into built.semantic / built.embeddings);
    `first` holds the first head's out-of-fold probabilities for every one of our rows."""
    rows = [built.rows[i] for i in built.semantic[which]]
    y = np.array([CATEGORIES.index(r.category) for r in rows])
    x = inputs(built.embeddings[which], first[which], [built.rules[i] for i in built.semantic[which]])
    return fit_mlp(x, y, list(CATEGORIES), np.array([r.weight for r in rows]), **DECISION)  # type: ignore[arg-type]


def first_out_of_fold(built: Built, folds: np.ndarray) -> np.ndarray:
    """The hashed-feature head's out-of-fold probabilities for every row (five fits)."""
    probs = np.zeros((len(built.rows), len(CATEGORIES)))
    for k in range(FOLDS):
        test = np.flatnonzero(folds == k)
        probs[test] = fit_category(built, np.flatnonzero(folds != k)).proba(built.x.take(test))
    return probs


def nested_first(built: Built, folds: np.ndarray, first: np.ndarray) -> list[np.ndarray]:
    """Per outer fold k, the first head's probabilities for our rows as a head fitted without
    fold k would see them: a row of fold j != k from the fit on the folds other than j and k,
    the rows of fold k themselves from the outer fit (`first`)."""
    ours = folds[built.semantic]
    nested = [first[built.semantic].copy() for _ in range(FOLDS)]
    for j in range(FOLDS):
        for k in range(j + 1, FOLDS):
            head = fit_category(built, np.flatnonzero((folds != j) & (folds != k)))
            for seen, outer in ((j, k), (k, j)):
                local = np.flatnonzero(ours == seen)
                nested[outer][local] = head.proba(built.x.take(built.semantic[local]))
    return nested


def second_look(built: Built, semantic: MLP, which: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The second look's probabilities for our rows `which`, given the first head's (`first`)."""
    x = inputs(built.embeddings[which], first[which], [built.rules[i] for i in built.semantic[which]])
    return semantic.proba(x).astype(np.float64)


def out_of_fold(built: Built) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities as the hybrid computes them, and the first head's alone: the
    hashed-feature head for every row, replaced by the second look where it would be asked
    (our rows only; the public rows have no embeddings, so their figures are the first head's)."""
    folds = np.array([fold_of(r) for r in built.rows])
    first = first_out_of_fold(built, folds)
    probs = first.copy()
    ours = folds[built.semantic]
    for k, seen in enumerate(nested_first(built, folds, first)):
        semantic = fit_semantic(built, np.flatnonzero(ours != k), seen)
        local = np.flatnonzero(ours == k)
        for i, row in zip(local, second_look(built, semantic, local, seen), strict=True):
            if asks(dict(zip(CATEGORIES, map(float, first[built.semantic[i]]), strict=True))):
                probs[built.semantic[i]] = row
    return probs, first


def routes(built: Built, probs: np.ndarray, limits: Limits, which: Sequence[int]) -> list[str]:
    return [route(dict(zip(CATEGORIES, map(float, probs[i]), strict=True)), built.rules[i], limits)[0] for i in which]


def cost(gold: list[str], got: list[str]) -> float:
    total = 0.0
    for g, p in zip(gold, got, strict=True):
        g_esc, p_esc = ESCALATE.get(g, "none"), ESCALATE.get(p, "none")
        if g_esc == "dsl" and p_esc != "dsl":
            total += COST["missed_dsl"]
        elif g_esc != "dsl" and p_esc == "dsl":
            total += COST["false_dsl"]
        elif g_esc != "none" and p_esc == "none":
            total += COST["missed_escalation"]
        elif g_esc == "none" and p_esc != "none":
            total += COST["false_escalation"]
    return total


RULE_FLOORS = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2)
# Recall first: each escalating route keeps at least this out-of-fold recall on our own rows (the
# targets a DSL set), and among the settings that do, the one with the lowest expected cost wins.
RECALL_FIRST = {"dsl": 0.97, "slt": 0.95}


def recall(gold: list[str], got: list[str], route_: str) -> float:
    """DSL recall (route_ "dsl") or escalation recall (route_ "slt": any escalation counts)."""
    pairs = [(ESCALATE.get(g, "none"), ESCALATE.get(p, "none")) for g, p in zip(gold, got, strict=True)]
    if route_ == "dsl":
        hits = [p == "dsl" for g, p in pairs if g == "dsl"]
    else:
        hits = [p != "none" for g, p in pairs if g != "none"]
    return sum(hits) / max(1, len(hits))


def choose_thresholds(built: Built, probs: np.ndarray) -> dict[str, float]:
    """The DSL threshold with the least model support a clear pattern needs (its floor), then
    the SLT pair, on our own (in-domain) rows: the lowest expected cost among the settings that
    keep the route's recall target, or the best recall if none does; ties go to the lower
    values (more recall). The DSL route is tried first, so it is chosen first."""
    which = [i for i, r in enumerate(built.rows) if r.source in IN_DOMAIN]
    gold = [built.rows[i].category for i in which]
    chosen = {"dsl": 0.3, "slt": 0.45, "media": 0.5, "dsl_rule": 0.0, "slt_rule": 0.0}

    def score(route_: str, threshold: float, floor: float) -> tuple[bool, float, float, float, float]:
        got = routes(built, probs, Limits(**(chosen | {route_: threshold, f"{route_}_rule": floor})), which)
        reached = recall(gold, got, route_)
        kept = reached >= RECALL_FIRST[route_]
        return (not kept, cost(gold, got) if kept else -reached, cost(gold, got), threshold, floor)

    for route_ in ("dsl", "slt"):
        best = min(score(route_, t, f) for t in GRID for f in RULE_FLOORS)
        chosen[route_], chosen[f"{route_}_rule"] = best[3], best[4]
    chosen["media"] = min(
        GRID,
        key=lambda t: (
            sum(
                g != p
                for g, p in zip(gold, routes(built, probs, Limits(**(chosen | {"media": t})), which), strict=True)
            ),
            t,
        ),
    )
    return chosen


def manifest(rows: list[Example]) -> dict[str, object]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[f"{r.source}/{r.category}"] = counts.get(f"{r.source}/{r.category}", 0) + 1
    files = {s.file: sha256(DATASETS / s.file) for s in SHIPPED}
    files |= {path.name: sha256(path) for path in OWN_FILES}
    return {"examples": len(rows), "counts": dict(sorted(counts.items())), "sha256": files}


def build(
    rows: list[Example] | None = None, thresholds: dict[str, float] | None = None
) -> tuple[Head, Built, np.ndarray]:
    """The head, the prepared corpus and the out-of-fold probabilities. With `thresholds`
    given, cross-validation is skipped (the test that re-fits the shipped head uses this)."""
    built = prepare(rows if rows is not None else corpus())
    if thresholds is None:
        probs, first = out_of_fold(built)
        thresholds = choose_thresholds(built, probs)
    else:
        first = first_out_of_fold(built, np.array([fold_of(r) for r in built.rows]))
        probs = np.zeros((0, len(CATEGORIES)))
    everything = np.arange(len(built.rows))
    built.first = first[built.semantic]
    semantic = fit_semantic(built, np.arange(len(built.semantic)), built.first)
    head = Head(
        fit_category(built, everything), fit_labels(built, "kind"), fit_labels(built, "register"), semantic, thresholds
    )
    head.manifest = manifest(built.rows)
    return head, built, probs


PROBE_TOLERANCE = 0.02  # the most a second-look probability may move between the shipped head and a rebuild


def same(a: Head, b: Head, probe: np.ndarray | None = None) -> list[str]:
    """Where two heads differ: int8 weights may move by one step; the second look's float16
    network is compared by what it says on `probe` (its training inputs: every probability
    within PROBE_TOLERANCE), or without one by its weights; thresholds and classes must match."""
    problems = []
    x_mlp, y_mlp = a.semantic, b.semantic
    if x_mlp.classes != y_mlp.classes or x_mlp.w1.shape != y_mlp.w1.shape:
        problems.append("semantic: classes or shape differ")
    elif probe is not None:
        moved = float(np.abs(x_mlp.proba(probe) - y_mlp.proba(probe)).max())
        if moved > PROBE_TOLERANCE:
            problems.append(f"semantic: probabilities differ by up to {moved:.3f}")
    elif any(not np.allclose(p, q, atol=0.01) for p, q in zip(x_mlp.dense(), y_mlp.dense(), strict=True)):
        problems.append("semantic: weights differ")
    for name in PARTS:
        x, y = getattr(a, name), getattr(b, name)
        if x.classes != y.classes or x.weights.shape != y.weights.shape:
            problems.append(f"{name}: classes or shape differ")
        elif np.abs(x.weights.astype(int) - y.weights.astype(int)).max() > 1 or not np.allclose(
            x.bias, y.bias, atol=1e-3
        ):
            problems.append(f"{name}: weights differ")
    if a.thresholds != b.thresholds:
        problems.append(f"thresholds differ: {a.thresholds} vs {b.thresholds}")
    return problems


def figures(pairs: list[tuple[str, str]]) -> str:
    """gold and given categories -> the issue's figures as one line."""
    esc = [(ESCALATE.get(g, "none"), ESCALATE.get(p, "none")) for g, p in pairs]
    should = [e for e in esc if e[0] != "none"]
    dsl = [e for e in esc if e[0] == "dsl"]
    rest = [e for e in esc if e[0] == "none"]
    not_dsl = [e for e in esc if e[0] != "dsl"]
    parts = [f"n={len(pairs):5d}", f"category acc {sum(g == p for g, p in pairs) / len(pairs):.3f}"]
    if should:
        parts.append(f"esc recall {sum(p != 'none' for _, p in should) / len(should):.3f} (of {len(should)})")
    if dsl:
        parts.append(f"DSL recall {sum(p == 'dsl' for _, p in dsl) / len(dsl):.3f} (of {len(dsl)})")
    if rest:
        parts.append(f"false esc {sum(p != 'none' for _, p in rest) / len(rest):.3f}")
    if not_dsl:
        parts.append(f"false DSL {sum(p == 'dsl' for _, p in not_dsl) / len(not_dsl):.3f}")
    return "  ".join(parts)


def report(head: Head, built: Built, probs: np.ndarray) -> list[str]:
    """Out-of-fold figures by source, routed with the chosen thresholds and the rules."""
    limits = Limits.of(head.thresholds)
    given = routes(built, probs, limits, range(len(built.rows)))
    by_source: dict[str, list[tuple[str, str]]] = {}
    for row, got in zip(built.rows, given, strict=True):
        by_source.setdefault(row.source, []).append((row.category, got))
    lines = [f"{FOLDS}-fold cross-validation (out-of-fold), thresholds {head.thresholds}"]
    lines += [f"  {source:<13} {figures(pairs)}" for source, pairs in sorted(by_source.items())]
    ours = [p for s in IN_DOMAIN for p in by_source.get(s, [])]
    lines.append(f"  {'ours+written*':<13} {figures(ours)}")
    lines.append(f"  {'all':<13} {figures([p for pairs in by_source.values() for p in pairs])}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="rebuild and compare with the shipped head; write nothing")
    parser.add_argument("--out", type=Path, default=HEAD_FILE)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    head, built, probs = build()
    print(f"built from {len(built.rows)} examples in {time.perf_counter() - started:.1f} s")
    print("\n".join(report(head, built, probs)))
    if args.check:
        problems = same(head, Head.load(args.out), built.probe())
        print("\n".join(problems) or f"{args.out.name} matches the rebuild")
        return 1 if problems else 0
    head.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB); pins in {PINS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
