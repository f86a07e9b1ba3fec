"""A policy document: its file read (reader.py), page furniture dropped
(furniture.py), split into clauses (parse.py) tagged with audience and role
(audience.py), with its title, school and review dates."""

from __future__ import annotations

import calendar
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from handlers.policy.audience import tag
from handlers.policy.cover import cover_rows
from handlers.policy.furniture import clean
from handlers.policy.parse import Clause, split_clauses
from handlers.policy.reader import Line, PolicyError, read_source

__all__ = ["PolicyDocument", "PolicyError", "load_policy"]

PARSER_VERSION = "7"
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_NEXT_REVIEW = re.compile(r"next review(?: date| due)?(?: by| on)?\s*:?\s*(.+)", re.I)
_LAST_REVIEW = re.compile(r"(?:last )?reviewed(?: by [^\t:]*)?(?: on)?\s*[:\t]\s*(.+)", re.I)


@dataclass(slots=True)
class PolicyDocument:
    path: Path
    text: str  # the extracted text, page furniture dropped: every clause is a substring of it (normalised)
    clauses: list[Clause]
    title: str | None
    school: str | None
    last_reviewed: str | None
    next_review: str | None
    next_review_date: date | None
    digest: str
    warnings: list[str] = field(default_factory=list)
    pages: int = 1

    def overdue(self, today: date) -> bool:
        return self.next_review_date is not None and self.next_review_date < today


def _review_date(value: str) -> date | None:
    """'September 2026' -> 30 Sep 2026; 'academic year 2022/2023' -> 31 Aug 2023; else None."""
    value = value.lower()
    academic = re.search(r"(\d{4})\s*/\s*(\d{2,4})", value)
    if academic:
        end = int(academic.group(2))
        return date(end + 2000 if end < 100 else end, 8, 31)
    year = re.search(r"(19|20)\d{2}", value)
    if not year:
        return None
    month = next((n for name, n in MONTHS.items() if name in value or name[:3] in value.split()), 12)
    day_match = re.search(r"\b(\d{1,2})(?:st|nd|rd|th)?\b", value.replace(year.group(0), ""))
    last_day = calendar.monthrange(int(year.group(0)), month)[1]
    day = int(day_match.group(1)) if day_match and int(day_match.group(1)) <= last_day else last_day
    return date(int(year.group(0)), month, day)


def _metadata(source: list[Line]) -> tuple[str | None, str | None, str | None, str | None]:
    lines = [line.text.strip().replace("**", "").replace("\t", " ") for line in source if line.text.strip()][:40]
    marked = [line.text.strip() for line in source[:25] if line.style in ("title", "heading")]

    def title_like(line: str) -> bool:  # short, capitalised, not a sentence or a numbered clause
        return (
            len(line) < 70 and line[:1].isupper() and not line.endswith((".", ":", ",", ";")) and not line[:1].isdigit()
        )

    top = [line for line in lines[:15] if title_like(line)]
    policy_words = re.compile(r"\b(?:policy|policies|statement|procedures?|guidance)\b", re.I)
    title = next((line for line in marked + top if policy_words.search(line) and len(line.split()) > 1), None)
    school = next(
        (
            line
            for line in top
            if re.search(r"\b(primary|school|academy|college)\b", line, re.I)
            and "policy" not in line.lower()
            and ":" not in line
        ),
        None,
    )
    next_review = last_review = None
    for i, line in enumerate(lines):
        match = _NEXT_REVIEW.search(line)
        if match and next_review is None:
            value = match.group(1).strip()
            if not re.search(r"\d{4}", value) and i + 1 < len(lines):  # "September" / "2026" split over lines
                value = f"{value} {lines[i + 1]}"
            next_review = value.strip()
        elif last_review is None and (match := _LAST_REVIEW.search(line)):
            last_review = match.group(1).strip()
    return title, school, last_review, next_review


def load_policy(path: str | Path) -> PolicyDocument:
    path = Path(path).expanduser()
    source = read_source(path)
    furnished = clean(source)
    cleaned = cover_rows(furnished)
    text = "\n".join(line.text for line in cleaned.lines)
    clauses = tag(split_clauses(cleaned.lines))
    if not clauses:
        raise PolicyError(f"{path}: no clauses could be found in the policy text")
    title, school, last_review, next_review = _metadata(source.lines)
    digest = hashlib.sha256((PARSER_VERSION + text).encode()).hexdigest()[:16]
    return PolicyDocument(
        path=path,
        text=text,
        clauses=clauses,
        title=title,
        school=school,
        last_reviewed=last_review,
        next_review=next_review,
        next_review_date=_review_date(next_review) if next_review else None,
        digest=digest,
        warnings=cleaned.warnings + _rows(furnished.lines) + _quality(clauses),
        pages=source.pages,
    )


def _rows(lines: list[Line]) -> list[str]:
    """The document's own table rows (counted before cover-sheet fields are made rows: those have their own
    warning)."""
    rows = sum(1 for line in lines if line.style == "row")
    return [f"{rows} table rows were kept as rows (each cited whole, never read as a heading)"] if rows else []


def _quality(clauses: list[Clause]) -> list[str]:
    """What a school should check: fragments, and clauses with no heading."""
    out = []
    short = [c for c in clauses if len(c.text) < 25 and c.kind != "row"]  # "Version: 1.0" is a whole row
    if short:
        examples = ", ".join(f'{c.label} "{c.text}"' for c in short[:3])
        out.append(
            f"{len(short)} clauses are under 25 characters (fragments or headings read as text), e.g. {examples}"
        )
    unheaded = [c for c in clauses if not c.heading]
    if unheaded:
        out.append(f"{len(unheaded)} clauses have no heading above them (cited by number or position only)")
    return out
