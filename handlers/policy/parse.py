"""Splitting a school's social media policy into clauses a person would cite.

Handles the numbering styles real policies use: `28.` paragraphs with `- a)`
sub-items; `6.2` dotted numbers with bullets under them; lines broken
mid-sentence with private-use bullet glyphs; `**bold**` markers; and policies
with no numbers at all, cited by heading and bullet ("HANDLING ABUSE,
bullet 2"). Clause text is built only by joining the source's own lines, so
every citation is the policy's words (whitespace, bullet glyphs, bold markers
and curly quotes normalised; see `normalise`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from handlers.policy.lines import Line

BULLET_GLYPHS = "-\u2022\uf0b7\uf0a7\uf076\uf0d8\u25aa\u25cf\u2013\u00b7*"
_BULLET = re.compile(rf"^\s*(?:[{re.escape(BULLET_GLYPHS)}]|o(?=\s+[A-Z]))\s+")
_NUMBER = re.compile(rf"^\s*(?:[{re.escape(BULLET_GLYPHS)}]\s*)?(\d{{1,3}}(?:\.\d{{1,3}})*)\.?\s+(\S.*)$")
_SUBITEM = re.compile(rf"^\s*(?:[{re.escape(BULLET_GLYPHS)}]\s*)?\(?([a-z]|[ivx]{{1,4}})\)\s+(\S.*)$")
_TERMINAL = (".", ";", ":", ":-", "!", "?", ".)", '."', ".'")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})
_SPACE = re.compile(r"\s+")
# a line that ends in one of these has not ended its sentence ("... for teaching purposes e.g." / "See-Saw, but")
_ABBREVIATION_END = re.compile(r"\b(?:e\.g|i\.e|eg|ie|viz|cf|vs|incl|mr|mrs|ms|dr)\.$", re.I)
_WRAPPED_HYPHEN = re.compile(r"(?<=\w)- (?=\w)")


def normalise(text: str) -> str:
    """The comparison form of policy text: bold markers and bullet glyphs at line
    starts removed, curly quotes straightened, whitespace collapsed."""
    lines = [_BULLET.sub("", line) for line in text.replace("**", "").translate(_QUOTES).splitlines()]
    return _SPACE.sub(" ", " ".join(lines)).strip()


def quote_form(text: str) -> str:
    """The form a quote and a clause are compared in: `normalise`d, lower case, and a hyphen that a line
    wrap left a space after joined up ("Pre- school" copied from wrapped text is "pre-school")."""
    return _WRAPPED_HYPHEN.sub("-", normalise(text).lower())


@dataclass(slots=True)
class Clause:
    """A citable unit: a numbered clause, one of its sub-items or bullets, or an
    unnumbered paragraph or bullet under a heading."""

    label: str  # "28", "21 d)", "7.1, bullet 4", "HANDLING ABUSE, bullet 2"
    heading: str  # the section heading it sits under
    text: str  # verbatim (normalised) policy words
    kind: str  # clause / item / bullet / paragraph
    lead: str = ""  # for items and bullets: the words that introduce them ("employees must not:")
    parent: str | None = None
    complete: bool = True  # False when a long clause is cited by its lead words only
    audience: str = "all"  # who the clause is addressed to: staff, pupils, parents, governors, visitors, all
    role: str = "rule"  # rule / definition / scope / agreement / heading-like text (see audience.py)

    @property
    def context(self) -> str:
        """What retrieval reads: heading, lead and text."""
        return " ".join(p for p in (self.heading, self.lead, self.text) if p)


@dataclass(slots=True)
class _Block:
    """A numbered clause or top-level paragraph/bullet while parsing."""

    label: str
    heading: str
    kind: str
    parts: list[str] = field(default_factory=list)  # the lead text, line by line
    children: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (kind, marker, lines)
    section: str = ""  # for unnumbered blocks: the heading they are counted under

    def introduces(self) -> bool:
        """A paragraph ending in ':' or ':-' introduces the bullets after it."""
        return bool(self.parts) and self.parts[-1].rstrip().endswith((":", ":-"))

    def add(self, line: str) -> None:
        (self.children[-1][2] if self.children else self.parts).append(line)

    def ended(self) -> bool:
        last = ((self.children[-1][2] if self.children else self.parts) or [""])[-1].rstrip()
        return last.endswith(_TERMINAL) and not _ABBREVIATION_END.search(last)


def _join(lines: list[str]) -> str:
    return normalise("\n".join(lines))


def _number_key(number: str) -> tuple[int, ...]:
    return tuple(int(p) for p in number.split("."))


def _is_heading(line: str, previous_ended: bool) -> bool:
    text = line.strip().replace("**", "")
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 3 or len(text) > 90:
        return False
    if text.isupper() and not text.endswith((",", ";")):
        return True
    words = text.split()
    return (
        previous_ended
        and text[0].isupper()
        and len(words) <= 9
        and not text.endswith((*_TERMINAL, ","))
        and not _BULLET.match(line)
    )


class PolicyParser:
    """A line-by-line state machine; one instance per document."""

    def __init__(self, lines: list[Line]) -> None:
        self.source = [line for line in lines if line.text.strip()]
        self.lines = [line.text.rstrip() for line in self.source]
        self.styles = [line.style for line in self.source]
        self.xs = [line.x for line in self.source]
        self.x: float | None = None  # where the current line starts on the page (PDF), when known
        self.bullet_x: float | None = None  # where the open bullet's glyph starts
        self.style = ""
        self.next_style = ""
        self.path: list[tuple[int, str]] = []  # (level, heading) from layout headings
        self.whole = False
        # a format that marks some headings (styles, larger fonts) marks them all: its body lines are never headings
        self.marked = any(style in ("heading", "title") for style in self.styles)
        numbered = sum(1 for line in self.lines if _NUMBER.match(line) and len(line.strip()) > 40)
        self.unnumbered = numbered < 5
        self.blocks: list[_Block] = []
        self.heading = ""
        self.sub_heading = ""
        self.open = False  # may the next bullet or continuation line join the last block?
        self.last_number: tuple[int, ...] = ()
        self.previous = ""
        self.next = ""

    def _numbered(self, line: str) -> tuple[str, str] | None:
        match = _NUMBER.match(line)
        if not match or self.unnumbered:
            return None
        number, rest = match.group(1), match.group(2)
        key = _number_key(number)
        if self.last_number and (key <= self.last_number or key[0] > self.last_number[0] + 3):
            return None  # not the next clause: a wrapped line that starts with a number
        return number, rest

    def parse(self) -> list[_Block]:
        for i, line in enumerate(self.lines):
            self.next = self.lines[i + 1] if i + 1 < len(self.lines) else ""
            self.style, self.next_style = self.styles[i], (self.styles[i + 1] if i + 1 < len(self.lines) else "")
            self.whole = self.source[i].whole
            self.x = self.xs[i]
            if self.style == "title":
                continue  # the document's title is metadata, not a section
            if self.style == "heading" and not self._numbered_clause(line):
                self._layout_heading(line, self.source[i].level)
            else:
                self._line(line)
            self.previous = line
        return self.blocks

    def _numbered_clause(self, line: str) -> bool:
        """A numbered line set bold is still a clause when it is a sentence ("6.2 Staff must not ...")."""
        match = _NUMBER.match(line)
        return bool(match and len(match.group(2)) > 80 and not self.unnumbered)

    def _layout_heading(self, line: str, level: int) -> None:
        """A heading the format marked (style or font): kept as a path of levels."""
        text = _BULLET.sub("", line).strip().replace("**", "").rstrip(":").strip()
        numbered = _NUMBER.match(line)
        if numbered and not self.unnumbered:
            self.last_number = _number_key(numbered.group(1))
        level = max(level, 1)
        self.path = [(lv, h) for lv, h in self.path if lv < level] + [(level, text)]
        self.heading = " › ".join(h for _, h in self.path)
        self.sub_heading, self.open = "", False

    def _set_heading(self, text: str) -> None:
        text = text.strip().replace("**", "").rstrip(":").strip()
        if self.path:  # a heading found from the words, under the ones the layout marked
            self.path = [(lv, h) for lv, h in self.path if lv < 9] + [(9, text)]
            text = " › ".join(h for _, h in self.path)
        self.heading = text
        self.sub_heading, self.open = "", False

    def _full_heading(self) -> str:
        return f"{self.heading} › {self.sub_heading}" if self.sub_heading else self.heading

    def _line(self, line: str) -> None:
        current = self.blocks[-1] if self.blocks else None
        ended = current is None or not self.open or current.ended()
        short_previous = len(self.previous.strip()) < 50
        numbered = self._numbered(line)
        if numbered:
            number, rest = numbered
            self.last_number = _number_key(number)
            short_title = len(rest) <= 80 and not rest.rstrip().endswith((*_TERMINAL, ":-"))
            dotted_doc = any("." in b.label for b in self.blocks if b.kind == "clause")
            if (
                short_title
                and rest[:1].isupper()
                and (number.endswith(".0") or ("." not in number and (dotted_doc or len(rest.split()) <= 6)))
            ):
                self._set_heading(rest)
                return
            self.blocks.append(_Block(number, self.heading, "clause", [rest]))
            self.open = True
            return
        bullet = bool(_BULLET.match(line)) or (self.unnumbered and line.startswith(" ") and not line.startswith("  "))
        text = _BULLET.sub("", line).strip()
        sub = _SUBITEM.match(line)
        if sub and len(sub.group(1)) == 1 and self.open and current is not None and current.kind == "clause":
            current.children.append(("item", sub.group(1) + ")", [sub.group(2)]))
            return
        layout_body = self.marked and self.style in ("body", "small", "row", "bullet")
        titled = _title_like(line) and bool(_BULLET.match(self.next) or _NUMBER.match(self.next))
        if (
            not bullet
            and not layout_body
            and self.style != "row"
            and _is_heading(line, ended or short_previous or titled)
        ):
            self._set_heading(line)
            return
        if bullet:
            short = len(text.split()) <= 3 and not text.endswith(_TERMINAL) and text[:1].isupper()
            if self.unnumbered and short and text.isupper() and sum(c.isalpha() for c in text) >= 5:
                self._set_heading(text)
                return
            next_long = bool(self.next.startswith(" ")) and len(self.next.split()) >= 5
            if self.unnumbered and short and next_long:
                # a role or topic ("SLT", "Parents/Carers") introducing the bullets below: a sub-heading,
                # never a clause of its own
                self.sub_heading, self.open = text, False
                return
            self.bullet_x = self.x
            introduced = current is not None and self.open and (current.kind == "clause" or current.introduces())
            if introduced and current is not None and current.heading == self._full_heading():
                current.children.append(("bullet", "", [text]))
            else:
                self._new_block("bullet", text)
            return
        if self.style == "row":  # a table row is its own clause
            self.bullet_x = None
            self._new_block("row", text)
            return
        if (
            current is not None
            and self.open
            and not self.whole
            and not (self.unnumbered and current.ended())
            and not self._outdented()
        ):
            current.add(line)
        else:
            self.bullet_x = None
            self._new_block("paragraph", text)

    def _outdented(self) -> bool:
        """A line that starts left of the open bullet's glyph (PDF positions) is a new paragraph, never the
        bullet's continuation: "It covers:" after a bullet without a full stop."""
        return self.bullet_x is not None and self.x is not None and self.x < self.bullet_x - 2

    def _new_block(self, kind: str, text: str) -> None:
        section = self.heading.split(" › ")[-1] or "Preamble"
        self.blocks.append(_Block("", self._full_heading(), kind, [text], section=section))
        self.open = True


def _title_like(line: str) -> bool:
    """A few words starting with a capital, without a full stop: "Parents/Carers", "Reporting concerns"."""
    words = line.strip().replace("**", "").split()
    return 0 < len(words) <= 6 and words[0][:1].isupper() and not line.rstrip().endswith((*_TERMINAL, ","))


def split_clauses(source: list[Line], *, max_chars: int = 1500) -> list[Clause]:
    """Citable units in document order. A clause with sub-items or bullets is
    cited whole when it is short enough, and each item is citable on its own.
    Unnumbered text is cited by heading: "HANDLING ABUSE, bullet 2"."""
    out: list[Clause] = []
    counts: dict[tuple[str, str], int] = {}

    def count(section: str, kind: str) -> int:
        counts[(section, kind)] = counts.get((section, kind), 0) + 1
        return counts[(section, kind)]

    for block in PolicyParser(source).parse():
        label = block.label or f"{block.section}, {block.kind} {count(block.section, block.kind)}"
        lead = _join(block.parts)
        if not block.children:
            if lead:
                out.append(Clause(label, block.heading, lead, block.kind))
            continue
        pieces = [lead] + [f"{marker} {_join(lines)}".strip() for _, marker, lines in block.children]
        whole = " ".join(p for p in pieces if p)
        if len(whole) <= max_chars:
            out.append(Clause(label, block.heading, whole, block.kind))
        elif lead:
            out.append(Clause(label, block.heading, lead, block.kind, complete=False))
        n_bullet = 0
        for kind, marker, lines in block.children:
            if kind == "item":
                child = f"{label} {marker}"
            elif block.label:
                n_bullet += 1
                child = f"{label}, bullet {n_bullet}"
            else:
                child = f"{block.section}, bullet {count(block.section, 'bullet')}"
            out.append(Clause(child, block.heading, _join(lines), kind, lead=lead, parent=label))
    return [c for c in out if c.text]
