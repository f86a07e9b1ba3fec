"""Reading a policy file into lines with what its format says about them.

Every format becomes a list of `Line`s: the text, its page, and a `style`
where the format knows one (a DOCX heading style or list numbering, a PDF
line set in a larger or bold font, a Markdown `#` heading, a table row).
Plain text has no layout, so its lines carry no style and the parser infers
headings from the words. Legacy Word .doc goes through antiword when it is
installed; without it the error says what to install or how to re-save.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from handlers.policy.lines import Line, PolicyError, Source
from handlers.policy.pdf import read_pdf

ANTIWORD_MISSING = (
    "{path}: is a Word 97-2003 .doc file and antiword is not installed to read it; install it "
    "(apt-get install antiword) or open the policy in Word and save it as .docx or .pdf"
)
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


def read_source(path: Path) -> Source:
    """The document's lines; a clear PolicyError for anything we cannot read."""
    if not path.exists():
        raise PolicyError(f"{path}: no such policy file; check the school's `policy` path in the config")
    if path.is_dir():
        raise PolicyError(f"{path}: is a folder; point `policy` at the policy document itself")
    suffix = path.suffix.lower()
    readers = {
        ".txt": _text,
        "": _text,
        ".md": _markdown,
        ".markdown": _markdown,
        ".docx": _docx,
        ".pdf": _pdf,
        ".doc": _doc,
    }
    reader = readers.get(suffix)
    if reader is None:
        raise PolicyError(f"{path}: {suffix} files are not supported; save the policy as .docx, .pdf, .txt or .md")
    try:
        source = reader(path)
    except PolicyError:
        raise
    except Exception as exc:  # a corrupt .docx/.pdf raises many different things
        raise PolicyError(
            f"{path}: could not be read as {suffix or 'text'} ({type(exc).__name__}: {exc}); "
            "re-save it or export it as .pdf or .txt"
        ) from None
    if sum(len(line.text.strip()) for line in source.lines) < 40:
        raise PolicyError(f"{path}: the policy is empty (or is a scanned image with no text); export it with text")
    return source


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _split(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").split("\n")


def _text(path: Path) -> Source:
    return Source([Line(line.rstrip()) for line in _split(_decode(path)) if line.strip()], layout=False)


def _markdown(path: Path) -> Source:
    """`#` headings are headings; YAML front matter is dropped; list items are bullets."""
    lines = _split(_decode(path))
    if lines and lines[0].strip() == "---":
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() in ("---", "...")), 0)
        lines = lines[end + 1 :]
    out = []
    for line in lines:
        if not line.strip():
            out.append(Line("", style="break"))
            continue
        heading = _MD_HEADING.match(line)
        if heading:
            out.append(Line(heading.group(2), style="heading", level=len(heading.group(1)), whole=True))
        elif _MD_LIST.match(line):
            out.append(Line("- " + _MD_LIST.sub("", line).strip(), style="bullet", whole=True))
        else:
            out.append(Line(line.rstrip(), style="body", whole=True))
    return Source(_unwrap(out), layout=True)


def _unwrap(lines: list[Line]) -> list[Line]:
    """Hard-wrapped Markdown paragraphs become one line each (a blank line ends a paragraph)."""
    out: list[Line] = []
    for line in lines:
        if line.style == "break":
            out.append(line)
            continue
        previous = out[-1] if out else None
        if previous is not None and line.style == "body" and previous.style in ("body", "bullet") and previous.text:
            previous.text = f"{previous.text} {line.text.strip()}"
        else:
            out.append(line)
    return [line for line in out if line.style != "break" and line.text.strip()]


def _docx(path: Path) -> Source:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(str(path))
    out: list[Line] = []
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            line = _docx_paragraph(Paragraph(element, document))
            if line is not None:
                out.append(line)
        elif tag == "tbl":
            for row in Table(element, document).rows:
                cells = _unique(cell.text.strip() for cell in row.cells)
                if any(cells):
                    out.append(Line(" | ".join(c for c in cells if c), style="row", whole=True))
    for line in out:
        line.whole = True
    return Source(out, layout=True)


def _unique(cells: object) -> list[str]:
    seen: list[str] = []
    for cell in cells:  # type: ignore[attr-defined]
        if not seen or seen[-1] != cell:  # merged cells repeat their text
            seen.append(cell)
    return seen


def _docx_paragraph(paragraph: object) -> Line | None:
    text = paragraph.text.strip()  # type: ignore[attr-defined]
    if not text:
        return None
    style = (paragraph.style.name if paragraph.style is not None else "").lower()  # type: ignore[attr-defined]
    p_pr = paragraph._p.pPr  # type: ignore[attr-defined]
    numbered = p_pr is not None and p_pr.numPr is not None
    level = re.search(r"heading (\d)", style)
    if style == "title":
        return Line(text, style="title", level=1)
    if level:
        return Line(text, style="heading", level=int(level.group(1)))
    if "list" in style or numbered:
        return Line(text if text[:1] in "\uf0b7\u2022-" or text[:1].isdigit() else f"- {text}", style="bullet")
    runs = [r for r in paragraph.runs if r.text.strip()]  # type: ignore[attr-defined]
    bold = bool(runs) and all(r.bold for r in runs)
    short = len(text) < 90 and not text.endswith((".", ";", ","))
    return Line(text, style="heading" if bold and short else "body", level=2 if bold and short else 0)


def _doc(path: Path) -> Source:
    """Word 97-2003 through antiword (`-w 0`: one line per paragraph, no hard wrapping)."""
    antiword = shutil.which("antiword")
    if antiword is None:
        raise PolicyError(ANTIWORD_MISSING.format(path=path))
    result = subprocess.run([antiword, "-w", "0", str(path)], capture_output=True, timeout=60, check=False)
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PolicyError(
            f"{path}: antiword could not read it ({reason[-1] if reason else 'no reason given'}); "
            "open it in Word and save it as .docx or .pdf"
        )
    text = result.stdout.decode("utf-8", "replace")
    lines = []
    for raw in _split(text):
        stripped = raw.strip()
        if not stripped:
            continue
        bullet = stripped.startswith(("\u2022", "*", "\uf0b7"))
        text = ("- " + stripped.lstrip("\u2022*\uf0b7 ")) if bullet else stripped
        lines.append(Line(text, style="bullet" if bullet else "", whole=True))
    return Source(lines, layout=False)


def _pdf(path: Path) -> Source:
    return read_pdf(path)
