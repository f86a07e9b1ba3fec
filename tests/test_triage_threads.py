"""classify_many on one shared classifier from two threads at once (the poller
overlaps two batches): the same verdicts as one thread, counters that add up,
and school labels published whole while batches read them."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from handlers.corpus import WRITTEN2, read_written
from handlers.embedding import ModelUnavailable, shared_model
from handlers.hybrid import HybridClassifier, SchoolLabels
from handlers.verdict import Verdict


def together(*jobs: Callable[[], list[Verdict]]) -> list[list[Verdict]]:
    """Run the jobs in threads started at the same moment; re-raise the first error."""
    start = threading.Barrier(len(jobs))
    results: list[list[Verdict]] = [[] for _ in jobs]
    errors: list[BaseException] = []

    def run(n: int) -> None:
        start.wait()
        try:
            results[n] = jobs[n]()
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if errors:
        raise errors[0]
    return results


def key(v: Verdict) -> tuple[str, str, tuple[str, ...]]:
    return (v.category, v.escalate, tuple(v.reasons))


@pytest.fixture(scope="module")
def classifier() -> HybridClassifier:
    try:
        return HybridClassifier(encoder=shared_model())
    except ModelUnavailable as exc:
        pytest.skip(f"needs the MiniLM package: {exc}")


def test_two_threads_at_once_give_the_verdicts_of_one(classifier: HybridClassifier) -> None:
    texts = [r.text for r in read_written(WRITTEN2, "written2")]  # look-alikes and disclosures: many second looks
    first, second = texts[::2], texts[1::2]
    alone = [key(v) for v in classifier.classify_many(first)], [key(v) for v in classifier.classify_many(second)]
    before = dict(classifier.stats)
    a, b = together(lambda: classifier.classify_many(first), lambda: classifier.classify_many(second))
    assert ([key(v) for v in a], [key(v) for v in b]) == alone
    assert classifier.stats["comments"] - before["comments"] == len(texts)
    assert 0 < classifier.stats["second_look"] - before["second_look"] <= len(texts)


def test_the_same_batch_in_two_threads_is_judged_the_same(classifier: HybridClassifier) -> None:
    texts = [r.text for r in read_written(WRITTEN2, "written2")][:60]
    a, b = together(lambda: classifier.classify_many(texts), lambda: classifier.classify_many(texts))
    assert [key(v) for v in a] == [key(v) for v in b] == [key(v) for v in classifier.classify_many(texts)]


def test_labels_are_published_whole_while_batches_read_them(classifier: HybridClassifier) -> None:
    """One thread keeps adding moderator labels while another classifies: every batch sees a
    label memory whose rows and categories match (never a half-updated one)."""
    clf = HybridClassifier(head=classifier.head, semantic=False)
    text = "Our caretaker Dave is an absolute legend, mad as a box of frogs"
    stop = threading.Event()

    def label() -> list[Verdict]:
        n = 0
        while not stop.is_set() and n < 300:
            n += 1
            memory = clf.labels.get("northgate", SchoolLabels())
            clf.labels["northgate"] = memory.adding({n: ("praise", f"{text} {n}")})
        return []

    def read() -> list[Verdict]:
        try:
            return [v for _ in range(40) for v in clf.classify_many([text] * 5, school="northgate")]
        finally:
            stop.set()

    _, verdicts = together(label, read)
    assert len(verdicts) == 200
    memory = clf.labels["northgate"]
    assert memory.matrix is not None and len(memory.categories) == memory.matrix.shape[0] == len(memory.by_item)
