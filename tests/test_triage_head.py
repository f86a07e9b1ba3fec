"""The shipped triage head: small, loaded not trained, and exactly what the
build script makes from the pinned sources."""

from __future__ import annotations

import numpy as np
import pytest

from handlers.corpus import DATASETS, OWN_FILES, SHIPPED, CorpusError, pins, read_public, sha256
from handlers.head import HEAD_FILE, Head
from handlers.train import build, same


def test_the_shipped_head_is_small_and_says_what_built_it() -> None:
    assert HEAD_FILE.stat().st_size < 1_000_000
    head = Head.load()
    assert set(head.thresholds) == {"dsl", "slt", "media", "dsl_rule", "slt_rule"}
    for path in OWN_FILES:
        assert head.manifest["sha256"][path.name] == sha256(path)  # type: ignore[index]
    for spec in SHIPPED:
        assert head.manifest["sha256"][spec.file] == pins()[spec.file]  # type: ignore[index]


@pytest.mark.skipif(not DATASETS.exists(), reason="needs ../shared/datasets (the pinned public sets)")
def test_the_build_script_reproduces_the_shipped_head() -> None:
    """Re-fits every head on the full corpus, and the first head five times more for the
    out-of-fold probabilities the second look learns from (one to two minutes). The thresholds
    come from the build's cross-validation, which `python -m handlers.train --check` re-runs in
    full (5 to 15 min). The second look is compared by what it says on its own training inputs."""
    shipped = Head.load()
    rebuilt, built, _ = build(thresholds=dict(shipped.thresholds))
    assert same(rebuilt, shipped, built.probe()) == []
    assert rebuilt.manifest == shipped.manifest


def test_a_second_look_that_says_something_else_is_caught() -> None:
    shipped = Head.load()
    other = Head.load()
    other.semantic.w2 = other.semantic.w2[:, :, ::-1].copy()  # the classes' outputs swapped round
    other.semantic.b2 = other.semantic.b2[:, ::-1].copy()
    probe = np.zeros((4, shipped.semantic.inputs), dtype=np.float32)
    assert same(shipped, shipped, probe) == []
    assert any("semantic" in p for p in same(other, shipped, probe))
    assert any("semantic" in p for p in same(other, shipped))


def test_a_changed_public_file_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = SHIPPED[0]
    (tmp_path / spec.file).write_text('{"text": "x", "label": "hateful/slur_h", "source_id": "1"}\n')
    with pytest.raises(CorpusError, match="sha256 differs"):
        read_public(spec, tmp_path)
