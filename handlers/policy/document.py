"""Reading a policy document (.txt, .md, .docx, .pdf) into text, clauses and
its title, school and review dates."""

from __future__ import annotations

import calendar
import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from core.errors import HallMonitorError
from handlers.policy.parse import Clause, split_clauses

PARSER_VERSION = "3"
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_NEXT_REVIEW = re.compile(r"next review(?: date| due)?(?: by| on)?\s*:?\s*(.+)", re.I)
_LAST_REVIEW = re.compile(r"(?:last )?reviewed(?: by [^\t:]*)?(?: on)?\s*[:\t]\s*(.+)", re.I)


class PolicyError(HallMonitorError):
    """The policy file is missing, empty or unreadable; the message says which and what to do."""


@dataclass(slots=True)
class PolicyDocument:
    path: Path
    text: str
    clauses: list[Clause]
    title: str | None
    school: str | None
    last_reviewed: str | None
    next_review: str | None
    next_review_date: date | None
    digest: str

    def overdue(self, today: date) -> bool:
        return self.next_review_date is not None and self.next_review_date < today


def read_text(path: Path) -> str:
    """The document's text; a clear PolicyError for anything we cannot read."""
    if not path.exists():
        raise PolicyError(f"{path}: no such policy file; check the school's `policy` path in the config")
    if path.is_dir():
        raise PolicyError(f"{path}: is a folder; point `policy` at the policy document itself")
    suffix = path.suffix.lower()
    try:
        if suffix in (".txt", ".md", ".markdown", ""):
            raw = path.read_bytes()
            for encoding in ("utf-8-sig", "cp1252"):
                try:
                    text = raw.decode(encoding)
                    break
                except UnicodeDecodeError:
                    continue
        elif suffix == ".docx":
            text = _docx_text(path)
        elif suffix == ".pdf":
            text = _pdf_text(path)
        else:
            raise PolicyError(f"{path}: {suffix} files are not supported; save the policy as .docx, .pdf, .txt or .md")
    except PolicyError:
        raise
    except Exception as exc:  # a corrupt .docx/.pdf raises many different things
        raise PolicyError(
            f"{path}: could not be read as {suffix or 'text'} ({type(exc).__name__}: {exc}); "
            "re-save it or export it as .txt"
        ) from None
    if len(text.strip()) < 40:
        raise PolicyError(f"{path}: the policy is empty (or is a scanned image with no text); export it with text")
    return text


def _docx_text(path: Path) -> str:
    import docx

    lines = []
    for paragraph in docx.Document(str(path)).paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "").lower()
        numbered = paragraph._p.pPr is not None and paragraph._p.pPr.numPr is not None
        lines.append(f"- {text}" if ("list" in style or numbered) and not re.match(r"^\d", text) else text)
    return "\n".join(lines)


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)


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


def _metadata(text: str) -> tuple[str | None, str | None, str | None, str | None]:
    lines = [line.strip().replace("**", "") for line in text.splitlines() if line.strip()][:40]

    def title_like(line: str) -> bool:  # short, capitalised, not a sentence or a numbered clause
        return (
            len(line) < 70 and line[:1].isupper() and not line.endswith((".", ":", ",", ";")) and not line[:1].isdigit()
        )

    top = [line for line in lines[:15] if title_like(line)]
    title = next((line for line in top if "policy" in line.lower()), None)
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
    text = read_text(path)
    clauses = split_clauses(text)
    if not clauses:
        raise PolicyError(f"{path}: no clauses could be found in the policy text")
    title, school, last_review, next_review = _metadata(text)
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
    )
