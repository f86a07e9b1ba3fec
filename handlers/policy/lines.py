"""What every policy reader returns: lines with what the format says about them, and the reader's error."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import HallMonitorError


class PolicyError(HallMonitorError):
    """The policy file is missing, empty or unreadable; the message says which and what to do."""


@dataclass(slots=True)
class Line:
    text: str
    page: int = 0
    style: str = ""  # "" (unknown), "heading", "title", "body", "bullet", "row"
    level: int = 0  # heading level where the format gives one
    whole: bool = False  # the line is a whole paragraph (DOCX, Markdown, antiword, table rows): never continued
    x: float | None = None  # PDF: where on the page the line starts (points from the left), when known


@dataclass(slots=True)
class Source:
    """What a reader returns: the lines, whether the format had layout, and notes for `policy show`."""

    lines: list[Line]
    layout: bool
    pages: int = 1
    warnings: list[str] = field(default_factory=list)
