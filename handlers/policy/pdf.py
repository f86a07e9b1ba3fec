"""PDF pages into lines, with each line's font size and weight.

pypdf reconstructs the lines (`extract_text`); its text visitor reports the
font and size of every text run in the same order, so walking both strings
character by character (whitespace aside) gives each line its dominant size
and how much of it is bold, and where it starts on the page. Lines set
larger than the body text, or wholly bold at body size and short, are
headings; smaller lines (table cells, footnotes) never are.

Tables: pypdf reads a table cell by cell, each cell's wrapped lines in turn.
Lines that start well right of the page's text margin are a second column;
from the first such line, the lines of one row (its first cell's lines, then
the other cells') are joined into one `row` line, and a row ends where a
first-column line starts after another column's, or after a gap taller than
the table's line spacing. A row is cited whole and never read as a heading.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from handlers.policy.furniture import PAGE_NUMBER
from handlers.policy.lines import Line, Source

_SPACE = re.compile(r"\s")
_BULLET = re.compile(r"^\s*[-\u2022\uf0b7\uf0a7\uf076\uf0d8\u25aa\u25cf\u2013\u00b7*o]\s")


@dataclass(slots=True)
class _Styled:
    text: str
    size: float = 0.0  # dominant font size, 0 when unknown
    bold: float = 0.0  # share of its characters set bold
    x: float | None = None  # where its first character starts
    y: float | None = None


def _styled_lines(page: object) -> list[_Styled]:
    """Each line of one page with its dominant font size, bold share and starting position."""
    runs: list[tuple[str, float, bool, float, float]] = []

    def visit(text: str, cm: list[float], tm: list[float], font: dict | None, size: float) -> None:
        if not text:
            return
        scale = (tm[0] ** 2 + tm[1] ** 2) ** 0.5 * (cm[0] ** 2 + cm[1] ** 2) ** 0.5
        name = str((font or {}).get("/BaseFont", ""))
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        bold = bool(re.search(r"bold|black|heavy|semibold", name, re.I))
        runs.append((text, round(size * scale, 1), bold, x, y))

    text = page.extract_text(visitor_text=visit) or ""  # type: ignore[attr-defined]
    chars = [(size, bold, x, y) for run, size, bold, x, y in runs for c in run if not c.isspace()]
    out = []
    position = 0
    aligned = len(chars) == len(_SPACE.sub("", text))
    for line in text.split("\n"):
        n = len(_SPACE.sub("", line))
        if not aligned or n == 0:
            out.append(_Styled(line))
            position += n
            continue
        styles = chars[position : position + n]
        position += n
        size = Counter(s for s, *_ in styles).most_common(1)[0][0]
        out.append(_Styled(line, size, sum(b for _, b, *_ in styles) / n, styles[0][2], styles[0][3]))
    return out


COLUMN = 150.0  # a line starting this many points right of the page's margin is in a table's later column


def _rows(page: list[_Styled]) -> list[_Styled | list[_Styled]]:
    """The page's lines, each table row's lines grouped into a list (see the module docstring)."""
    xs = [round(line.x) for line in page if line.x is not None and line.text.strip()]
    if not xs:
        return list(page)
    margin = Counter(xs).most_common(1)[0][0]
    later = [line.x is not None and line.x > margin + COLUMN for line in page]
    spacing = _spacing(page)
    items: list[list] = []  # ["line", index] or ["row", [indexes], has a later-column line]
    row: list | None = None

    def at_margin(i: int, size: float) -> bool:
        line = page[i]
        return line.x is not None and round(line.x) == margin and line.size == size and not _BULLET.match(line.text)

    def close() -> None:  # rows that never had a later column after the last real row were not rows
        while items and items[-1][0] == "row" and not items[-1][2]:
            items.extend(["line", j] for j in items.pop()[1])

    for i, line in enumerate(page):
        if PAGE_NUMBER.match(line.text.strip()):  # page furniture, never a table cell
            if row is not None:
                close()
                row = None
            items.append(["line", i])
        elif later[i]:
            if row is None:
                cell: list[int] = []
                while items and items[-1][0] == "line" and at_margin(items[-1][1], line.size):
                    j = items[-1][1]
                    if page[j].text.rstrip().endswith(":") or (cell and _gap(page[j], page[cell[0]]) > 1.5 * spacing):
                        break
                    cell.insert(0, items.pop()[1])
                row = ["row", cell, True]
                items.append(row)
            row[1].append(i)
            row[2] = True
        elif row is not None and at_margin(i, page[row[1][-1]].size):
            if later[i - 1] or _gap(page[i - 1], line) > 1.5 * spacing:
                row = ["row", [i], False]
                items.append(row)
            else:
                row[1].append(i)
        else:
            if row is not None:
                close()
                row = None
            items.append(["line", i])
    close()
    return [page[item[1]] if item[0] == "line" else [page[j] for j in item[1]] for item in items]


def _gap(above: _Styled, below: _Styled) -> float:
    return (above.y or 0.0) - (below.y or 0.0)


def _spacing(page: list[_Styled]) -> float:
    """The usual distance from one line to the next on this page."""
    gaps = sorted(
        _gap(a, b)
        for a, b in itertools.pairwise(page)
        if a.y is not None and b.y is not None and a.x == b.x and 0 < _gap(a, b) < 60
    )
    return gaps[len(gaps) // 2] if gaps else 14.0


def read_pdf(path: Path) -> Source:
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # "wrong pointing object" noise on many real PDFs
    reader = PdfReader(str(path))
    pages = [_styled_lines(page) for page in reader.pages]
    weights: Counter[float] = Counter()
    for page in pages:
        for line in page:
            if line.size:
                weights[line.size] += len(line.text)
    body = weights.most_common(1)[0][0] if weights else 0.0
    larger = sorted({s for s in weights if s >= body * 1.15}, reverse=True)
    lines = []
    for number, page in enumerate(pages, 1):
        for item in _rows([line for line in page if line.text.strip()]):
            if isinstance(item, list):
                text = " ".join(cell.text.strip() for cell in item)
                lines.append(Line(text, page=number, style="row", whole=True, x=item[0].x))
                continue
            style, level = _style(item.text, item.size, item.bold, body, larger)
            lines.append(Line(item.text.rstrip(), page=number, style=style, level=level, x=item.x))
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
