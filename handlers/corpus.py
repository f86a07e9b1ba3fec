"""The triage training corpus: our own writing plus the public sets whose
licence lets a derived model ship (DATA.md records every decision).

Public sets are read from ../shared/datasets at build time, never copied in;
their sha256 is pinned in handlers/data/sources.json and a changed file is
an error. Each public row is mapped to our categories, filtered (C-SSRS
labels are per user, so short posts are dropped) and sampled by a stable
hash of its source id (templated sets give only a minority of their rows).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from handlers.verdict import CATEGORIES

DATA = Path(__file__).parent / "data"
TRAINING_TXT = DATA / "triage_train.txt"
WRITTEN = DATA / "triage_written.jsonl"
# Session 3's hand-written set: routine comments and look-alikes in child, teen and parent registers
# (the register the first set used mostly for disclosures), and disclosures in the same registers.
WRITTEN2 = DATA / "triage_written2.jsonl"
# Session 6's set from a helper that had not seen the code: look-alikes, routine complaints and questions
# that use risk-like words, parents describing a child at risk, abuse, rude-but-not-abusive complaints, disclosures.
WRITTEN3 = DATA / "triage_written3.jsonl"
# Session 7's, from another code-blind helper: abuse in many forms (obfuscated, inside a complaint, at pupils,
# hate, threats), rude-but-not-abusive complaints, oblique disclosures, look-alikes with alarming words.
WRITTEN4 = DATA / "triage_written4.jsonl"
# And a third: where a firm or angry but legitimate complaint ("I'll be raising this with the governors") ends
# and a threat or harassment ("I'll be waiting for her at the gate") begins, both sides written as pairs.
WRITTEN5 = DATA / "triage_written5.jsonl"
# our own files after triage_train.txt, in corpus order, with the source name each is reported under
OWN_SOURCES = (
    (WRITTEN, "written"),
    (WRITTEN2, "written2"),
    (WRITTEN3, "written3"),
    (WRITTEN4, "written4"),
    (WRITTEN5, "written5"),
)
OWN_FILES = tuple(path for path, _ in OWN_SOURCES)
PINS = DATA / "sources.json"
PUBLIC_CHARS = 400  # long Reddit posts are cut: the head learns from comment-sized text
DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


class CorpusError(ValueError):
    """A training file is missing, malformed or not the pinned version."""


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    category: str
    source: str
    kind: str = ""  # safeguarding sub-type, where the writer gave one
    register: str = ""  # who seems to be writing (child, teen, parent...), where given
    weight: float = 1.0


Mapper = Callable[[dict[str, str]], str | None]


def _keep(source_id: str, share: float) -> bool:
    return (zlib.crc32(source_id.encode()) % 1000) < share * 1000


def _hatecheck(row: dict[str, str]) -> str | None:
    label = row["label"]
    if label.startswith("hateful/") or label == "non-hateful/target_indiv_nh":
        return "abuse"
    return "other"


def _hatemoji(row: dict[str, str]) -> str | None:
    return "abuse" if row["label"].startswith("hateful") else "other"


def _cssrs(row: dict[str, str]) -> str | None:
    words = len(row["text"].split())
    if not 12 <= words <= 80:  # user-level labels: short posts are often "ok", "thanks"; long ones teach "long = risk"
        return None
    if row["label"] in ("Ideation", "Behavior", "Attempt"):
        return "safeguarding"
    return "other" if row["label"] == "Supportive" else None


def _sms(row: dict[str, str]) -> str | None:
    return "spam" if row["label"] == "spam" else "other"


@dataclass(frozen=True, slots=True)
class PublicSet:
    name: str
    file: str
    mapper: Mapper
    share: float  # the part of the mapped rows we train on
    weight: float
    other_share: float = 1.0  # a further sample of the rows mapped to `other`


SHIPPED: tuple[PublicSet, ...] = (
    PublicSet("hatecheck", "hatecheck.jsonl", _hatecheck, 0.25, 0.5),
    PublicSet("hatemoji", "hatemoji.jsonl", _hatemoji, 0.35, 0.5),
    PublicSet("reddit_cssrs", "reddit_cssrs_suicide_risk.jsonl", _cssrs, 0.6, 0.4),
    PublicSet("sms_spam", "sms_spam_collection.jsonl", _sms, 1.0, 0.5, other_share=0.3),
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pins() -> dict[str, str]:
    return dict(json.loads(PINS.read_text(encoding="utf-8"))["sha256"])


def read_training(path: Path = TRAINING_TXT) -> list[Example]:
    """`category | text` lines (ours); comments and blanks skipped; a bad line is an error naming it."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        category, sep, text = line.partition("|")
        category = category.strip()
        if not sep or category not in CATEGORIES or not text.strip():
            raise CorpusError(f"{path.name}:{n}: expected 'category | text' with a known category")
        rows.append(Example(text.strip(), category, "ours", weight=2.0))
    return rows


def read_written(path: Path = WRITTEN, source: str = "written") -> list[Example]:
    """Our hand-written JSON lines: text, category, kind, register."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path.name}:{n}: not JSON ({exc.msg})") from None
        if row.get("category") not in CATEGORIES or not str(row.get("text", "")).strip():
            raise CorpusError(f"{path.name}:{n}: needs a text and a known category")
        kind = row.get("kind") or "" if row["category"] == "safeguarding" else ""
        rows.append(Example(row["text"].strip(), row["category"], source, kind, row.get("register") or "", 2.0))
    return rows


def read_public(spec: PublicSet, root: Path = DATASETS, *, check: bool = True) -> list[Example]:
    """One public set, mapped, filtered and sampled; its sha256 must match the pin."""
    path = root / spec.file
    if not path.exists():
        raise CorpusError(f"{path}: not found; the training build reads the public sets from ../shared/datasets")
    if check and sha256(path) != pins().get(spec.file):
        raise CorpusError(f"{path}: sha256 differs from the pin in {PINS.name}; re-pin on purpose if it was updated")
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        category = spec.mapper(row)
        if category is None or not _keep(row["source_id"], spec.share):
            continue
        if category == "other" and not _keep("o" + row["source_id"], spec.other_share):
            continue
        kind = "suicidal_ideation" if category == "safeguarding" else ""
        out.append(Example(row["text"][:PUBLIC_CHARS], category, spec.name, kind, "adult" if kind else "", spec.weight))
    return out


def corpus(root: Path = DATASETS) -> list[Example]:
    """Everything the shipped head is trained on, in a fixed order."""
    rows = read_training() + [row for path, name in OWN_SOURCES for row in read_written(path, name)]
    for spec in SHIPPED:
        rows += read_public(spec, root)
    return rows
