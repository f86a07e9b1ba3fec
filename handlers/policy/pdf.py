"""PDF pages into lines, with each line's font size and weight.

pypdf reconstructs the lines (`extract_text`); its text visitor reports the
font and size of every text run in the same order, so walking both strings
character by character (whitespace aside) gives each line its dominant size
and how much of it is bold. Lines set larger than the body text, or wholly
bold at body size and short, are headings; smaller lines (table cells,
footnotes) never are.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

from handlers.policy.lines import Line, Source

_SPACE = re.compile(r"\s")


def _styled_lines(page: object) -> list[tuple[str, float, float]]:
    """(line, dominant font size, bold share) for one page."""
    runs: list[tuple[str, float, bool]] = []

    def visit(text: str, cm: list[float], tm: list[float], font: dict | None, size: float) -> None:
        if not text:
            return
        scale = (tm[0] ** 2 + tm[1] ** 2) ** 0.5 * (cm[0] ** 2 + cm[1] ** 2) ** 0.5
        name = str((font or {}).get("/BaseFont", ""))
        runs.append((text, round(size * scale, 1), bool(re.search(r"bold|black|heavy|semibold", name, re.I))))

    text = page.extract_text(visitor_text=visit) or ""  # type: ignore[attr-defined]
    chars = [(size, bold) for run, size, bold in runs for c in run if not c.isspace()]
    out = []
    position = 0
    aligned = len(chars) == len(_SPACE.sub("", text))
    for line in text.split("\n"):
        n = len(_SPACE.sub("", line))
        if not aligned or n == 0:
            out.append((line, 0.0, 0.0))
            position += n
            continue
        styles = chars[position : position + n]
        position += n
        size = Counter(s for s, _ in styles).most_common(1)[0][0]
        out.append((line, size, sum(b for _, b in styles) / n))
    return out


def read_pdf(path: Path) -> Source:
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # "wrong pointing object" noise on many real PDFs
    reader = PdfReader(str(path))
    pages = [_styled_lines(page) for page in reader.pages]
    weights: Counter[float] = Counter()
    for page in pages:
        for line, size, _ in page:
            if size:
                weights[size] += len(line)
    body = weights.most_common(1)[0][0] if weights else 0.0
    larger = sorted({s for s in weights if s >= body * 1.15}, reverse=True)
    lines = []
    for number, page in enumerate(pages, 1):
        for text, size, bold in page:
            if text.strip():
                style, level = _style(text, size, bold, body, larger)
                lines.append(Line(text.rstrip(), page=number, style=style, level=level))
    return Source(lines, layout=bool(body), pages=len(pages))


def _style(text: str, size: float, bold: float, body: float, larger: list[float]) -> tuple[str, int]:
    """(style, heading level) for one line from its font size and bold share."""
    stripped = text.strip()
    if not size or not body:
        return "", 0
    sentence = stripped.endswith((".", ";", ",")) or len(stripped) > 100
    if size in larger and not sentence:
        return "heading", larger.index(size) + 1
    if bold > 0.9 and abs(size - body) < 0.5 and not sentence and len(stripped.split()) <= 12:
        return "heading", len(larger) + 1
    if size < body - 0.4:
        return "small", 0
    return "body", 0
