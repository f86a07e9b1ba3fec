"""The cover sheet: "Field: value" lines before the policy's first prose.

Cover sheets list who approved the policy and when it is reviewed, one
field per line ("Next review due by: September 2026", "Ratified by FGB<tab>17
November 2020"), often with the value wrapped onto the next line or set
apart from its field ("Approved by:" then "Northgate Governing Body"). Read
as prose, such lines became headings or were glued into one paragraph. Here
each field becomes one table row (its own citable clause, never a heading)
with a wrapped or detached value joined on, so "when is the policy next
reviewed?" can cite the line that says so. The row's text is the lines'
own words joined by a space: every clause stays a substring of the text.
"""

from __future__ import annotations

import re

from handlers.policy.lines import Line, Source

# field names a cover sheet uses (general to document control, not to any one policy)
_FIELD = re.compile(
    r"^(?P<field>[A-Z][\w'’/&(). -]{1,48}?)\s*(?::|\t)\s*(?P<value>.*)$",
)
_FIELD_WORDS = re.compile(
    r"\b(?:review\w*|ratified|approved|adopted|agreed|written|dated?|version|author|owner|cycle|updated|issued|"
    r"responsible|signed|status|implemented|committee|frequency|published|effective)\b",
    re.I,
)
HEAD = 40  # a cover sheet sits within the first lines of the document
LONG = 100  # a line this long is prose: the cover sheet has ended
SENTENCE = 60  # so is a sentence this long ending in a full stop


def _field(text: str) -> re.Match[str] | None:
    match = _FIELD.match(text.strip())
    return match if match and _FIELD_WORDS.search(match.group("field")) else None


def _continues(value: str, following: str) -> bool:
    """The next line completes the field: a value set apart from an empty field, or a date wrapped after
    its month ("September" / "2026")."""
    if not following or len(following) > 60 or _field(following):
        return False
    return not value.strip() or (following[:1].isdigit() and len(following.split()) <= 3)


def cover_rows(source: Source) -> Source:
    """The source with each cover-sheet field (before the first long line) made one whole table row."""
    lines = source.lines
    out: list[Line] = []
    i, rows, seen = 0, 0, 0
    while i < len(lines):
        line = lines[i]
        text = line.text.strip()
        seen += bool(text)
        if len(text) >= LONG or (len(text) >= SENTENCE and text.endswith((".", "!", "?"))) or seen > HEAD:
            out.extend(lines[i:])
            break
        match = _field(text) if text else None
        if match is None:
            out.append(line)
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].text.strip():
            j += 1
        parts = [text]
        if j < len(lines) and _continues(match.group("value"), lines[j].text.strip()):
            parts.append(lines[j].text.strip())
            i = j
        out.append(Line(" ".join(parts), page=line.page, style="row", level=0, whole=True, x=line.x))
        rows += 1
        i += 1
    warnings = list(source.warnings)
    if rows:
        warnings.append(f"{rows} cover-sheet fields (approved, reviewed ...) were read as rows, one clause each")
    return Source(out, layout=source.layout, pages=source.pages, warnings=warnings)
