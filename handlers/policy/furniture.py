"""Dropping what is on the page but is not the policy: running headers and
footers (lines repeated across pages), page numbers ("Page 3 of 18", "- 4 -"),
contents pages (dotted leaders to page numbers) and cover-sheet signature
lines. Each kind dropped is counted in a warning `policy show` prints."""

from __future__ import annotations

import re
from collections import Counter

from handlers.policy.lines import Line, Source

EDGE = 8  # running headers and footers sit within this many lines of a page's top or bottom
PAGE_NUMBER = re.compile(r"^\W*(?:page\s*)?\d{1,3}\s*(?:(?:of|/)\s*\d{1,3})?\W*$", re.I)
_LEADER = re.compile(r"(?:\.\s*){4,}\s*\d{1,3}\s*$|\u2026{2,}\s*\d{1,3}\s*$|\t\s*\d{1,3}\s*$")
_SIGNATURE = re.compile(
    r"^(?:signed|signature|sign|print name|name|date|position|role|headteacher|chair(?: of governors)?)"
    r"\s*(?:\(.*?\))?\s*(?::\s*[_.]*|[_.]{3,})\s*$|^[_.\s]{8,}$",
    re.I,
)
_CONTENTS = re.compile(r"^\s*(?:table of )?contents\s*$", re.I)


def _key(text: str) -> str:
    """Lines equal but for digits (page numbers, dates in a footer) are the same furniture."""
    return re.sub(r"\d+", "#", re.sub(r"\s+", " ", text.strip().lower()))


def _running(source: Source) -> set[str]:
    """Keys of lines found near the edge of at least half the pages (and at least two)."""
    if source.pages < 2:
        return set()
    by_page: dict[int, list[Line]] = {}
    for line in source.lines:
        by_page.setdefault(line.page, []).append(line)
    seen: Counter[str] = Counter()
    for lines in by_page.values():
        edge = lines[:EDGE] + lines[-EDGE:]
        seen.update({_key(line.text) for line in edge})
    need = max(2, (source.pages + 1) // 2)
    return {key for key, n in seen.items() if n >= need and len(key) > 1}


def clean(source: Source) -> Source:
    """The source without page furniture, with a warning for each kind dropped."""
    running = _running(source)
    dropped: Counter[str] = Counter()
    kept: list[Line] = []
    for line in source.lines:
        text = line.text.strip()
        if _key(text) in running:
            dropped["running"] += 1
        elif PAGE_NUMBER.match(text):
            dropped["page"] += 1
        elif _LEADER.search(text) or (_CONTENTS.match(text) and line.style != "body"):
            dropped["contents"] += 1
        elif _SIGNATURE.match(text):
            dropped["signature"] += 1
        else:
            kept.append(line)
    warnings = list(source.warnings)
    if dropped["running"]:
        warnings.append(
            f"{dropped['running']} lines repeated on {max(2, (source.pages + 1) // 2)} or more of "
            f"{source.pages} pages were dropped as page furniture (running headers and footers)"
        )
    if dropped["page"]:
        warnings.append(f"{dropped['page']} page numbers were dropped")
    if dropped["contents"]:
        warnings.append(f"{dropped['contents']} contents-page lines (dotted leaders to page numbers) were dropped")
    if dropped["signature"]:
        warnings.append(f"{dropped['signature']} signature or form lines (Signed: ____) were dropped")
    return Source(kept, layout=source.layout, pages=source.pages, warnings=warnings)
