"""The policy reader on the documents schools publish: PDF layout, DOCX styles and tables, Markdown,
legacy .doc through antiword, page furniture, headings never glued onto bullets, audiences."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from handlers.policy.document import PolicyError, load_policy
from handlers.policy.parse import normalise
from handlers.policy.show import render
from tests.conftest import SHARED

POLICIES = SHARED / "policies"
REAL = POLICIES / "real-world"
ELEVEN = sorted(POLICIES.glob("*.txt")) + sorted(p for p in REAL.iterdir() if p.name != "README.md")
NO_ANTIWORD = "antiword is not installed (apt-get install antiword): legacy .doc policies cannot be read"


def _load(path: Path):  # type: ignore[no-untyped-def]
    if path.suffix == ".doc" and shutil.which("antiword") is None:
        pytest.skip(NO_ANTIWORD)
    return load_policy(path)


def test_eleven_policies_are_here() -> None:
    assert len(ELEVEN) == 11


@pytest.mark.parametrize("path", ELEVEN, ids=lambda p: p.name)
def test_every_clause_of_every_policy_is_verbatim(path: Path) -> None:
    """Verbatim proof: each clause (so each citation) is a substring of the document's extracted text."""
    document = _load(path)
    source = normalise(document.text)
    assert document.clauses
    for clause in document.clauses:
        assert normalise(clause.text) in source, clause.label
        assert not clause.text.startswith(("\uf0b7", "\uf0a7", "•")), clause.label


def _clauses(path: Path) -> dict[str, str]:
    return {c.label: c.text for c in _load(path).clauses}


def test_pdf_headings_come_from_font_size_and_running_headers_are_dropped() -> None:
    rawdah = load_policy(REAL / "rawdah-montessori-bradford.pdf")
    assert rawdah.title == "Social Media and ICT Policy" and rawdah.school == "Rawdah Montessori Primary School"
    headings = {c.heading for c in rawdah.clauses}
    assert (
        "7. Social Media – Professional Use › 7.2 Staff Use of Social Media – Personal Accounts › Staff must not"
        in (headings)
    )
    staff = [c for c in rawdah.clauses if c.heading.endswith("Staff must not")]
    assert staff[0].text.startswith("Accept current or former pupils as friends") and staff[0].audience == "staff"
    breacc = load_policy(REAL / "breacc-twickenham.pdf")
    assert any("page furniture" in w for w in breacc.warnings)
    assert not any("Registered Charity Number" in c.text for c in breacc.clauses)


def test_docx_styles_bullets_and_tables(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Oakfield Social Media Policy", 0)
    document.add_heading("Personal use", 1)
    document.add_paragraph("Staff must not accept friend requests from current pupils.", style="List Bullet")
    document.add_paragraph("Staff should keep privacy settings strict", style="List Bullet")
    document.add_heading("Parents/Carers", 2)
    document.add_paragraph("Parents should not post photographs of other children.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Role", "Responsibility"
    table.cell(1, 0).text, table.cell(1, 1).text = "DSL", "Receives safeguarding concerns"
    document.save(str(tmp_path / "p.docx"))
    read = load_policy(tmp_path / "p.docx")
    by_text = {c.text: c for c in read.clauses}
    assert by_text["Staff should keep privacy settings strict"].heading == "Personal use"
    parents = by_text["Parents should not post photographs of other children."]
    assert parents.heading.endswith("Personal use › Parents/Carers") and parents.audience == "parents"
    assert "DSL | Receives safeguarding concerns" in by_text  # a table row stays one row
    assert read.title == "Oakfield Social Media Policy"


def test_markdown_front_matter_and_hard_wrapped_paragraphs() -> None:
    newstead = load_policy(REAL / "newstead-road-preschool-mobile-phones.md")
    assert not any(c.text.startswith(("title:", "layout:", "---")) for c in newstead.clauses)
    assert all("\n" not in c.text for c in newstead.clauses)
    assert any(len(c.text) > 150 for c in newstead.clauses)  # wrapped lines joined into paragraphs


def test_legacy_doc_through_antiword() -> None:
    clauses = _clauses(REAL / "holmes-chapel-preschool-esafety.doc")
    assert any(t.startswith("Staff will not discuss individual children") for t in clauses.values())


def test_legacy_doc_without_antiword_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(PolicyError, match=r"antiword is not installed.*save it as \.docx or \.pdf"):
        load_policy(REAL / "holmes-chapel-preschool-esafety.doc")


def test_page_furniture_contents_and_signatures_in_text(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text(
        "Oakfield Primary School\nSocial Media Policy\nContents\nPersonal use ........ 3\nReporting ........ 4\n"
        "Signed: ____________\nDate: __________\nPage 1 of 9\n"
        "PERSONAL USE\n- Staff must not accept friend requests from current pupils\nReporting concerns\n"
        "- Staff should report abuse to the headteacher.\n3\n"
    )
    document = load_policy(tmp_path / "p.txt")
    texts = [c.text for c in document.clauses]
    assert not any("...." in t or "Signed" in t or "Page 1" in t for t in texts)
    # the bullet without a full stop does not swallow the heading after it
    assert "Staff must not accept friend requests from current pupils" in texts
    assert [c.heading for c in document.clauses if c.text.startswith("Staff should report")] == ["Reporting concerns"]
    shown = render(document)
    assert "contents-page lines" in shown and "signature or form lines" in shown and "page numbers" in shown


def test_acceptable_use_agreements_are_tagged_by_audience(tmp_path: Path) -> None:
    (tmp_path / "p.md").write_text(
        "# Online Safety Policy\n\n## Staff conduct\n\n- Staff must not share passwords.\n\n"
        "## Pupil Acceptable Use Agreement\n\n- I will ask a teacher before I use the internet.\n\n"
        "## Communication with pupils\n\n- Staff must only use school email to contact pupils.\n"
    )
    clauses = {c.text: c for c in load_policy(tmp_path / "p.md").clauses}
    agreement = clauses["I will ask a teacher before I use the internet."]
    assert (agreement.audience, agreement.role) == ("pupils", "agreement")
    assert clauses["Staff must only use school email to contact pupils."].audience != "pupils"
    assert clauses["Staff must not share passwords."].audience == "staff"


def test_pdf_tables_are_kept_as_rows_and_a_paragraph_after_a_bullet_is_not_glued_on() -> None:
    """Rawdah's tables are read cell by cell by pypdf; each row comes back as one clause, never a heading, and
    "It covers:" (set at the margin, left of the bullets) starts a paragraph of its own."""
    rawdah = load_policy(REAL / "rawdah-montessori-bradford.pdf")
    rows = {c.text: c for c in rawdah.clauses if c.kind == "row"}
    governing = "Governing Body Ensure the school has effective online safety policies and procedures; monitor their"
    assert any(t.startswith(governing) for t in rows)
    assert "Keeping Children Safe in Education (KCSIE 2025) Sets out safeguarding duties" in " ".join(rows)
    assert not any("monitor their implementation" in c.heading or "KCSIE" in c.heading for c in rawdah.clauses)
    assert all(", row " in c.label for c in rows.values())
    texts = [c.text for c in rawdah.clauses]
    assert "Anyone accessing the school's ICT systems or representing the school online" in texts
    assert any(t.startswith("It covers: School-owned devices and networks") for t in texts)
    assert any("table rows were kept as rows" in w for w in rawdah.warnings)


def test_a_clause_is_for_the_audience_its_own_first_words_name() -> None:
    from handlers.policy.audience import audience_of, modality
    from handlers.policy.parse import Clause

    def clause(text: str) -> Clause:
        return Clause("1", "General", text, "paragraph")

    assert audience_of(clause("Parents/Carers are encouraged to comment appropriately about the school.")) == "parents"
    assert audience_of(clause("All staff must keep their privacy settings strict.")) == "staff"
    assert audience_of(clause("Staff, students or volunteers must not bring cameras in.")) == "staff"
    assert audience_of(clause("Photographs of pupils must be stored securely.")) == "all"  # pupils are the object
    assert modality(clause("Staff must not accept friend requests.")) == (True, False, False)
    assert modality(clause("Staff should report abuse to the headteacher.")) == (False, True, False)
    assert modality(clause("Staff may use their phones in the staff room.")) == (False, False, True)


def test_cover_sheet_fields_are_rows_with_their_wrapped_values(tmp_path: Path) -> None:
    """A cover sheet's "Field: value" lines are one citable row each (never a heading, never glued together),
    a value set apart from its field or a date wrapped after its month joined on."""
    northgate = {c.text: c for c in load_policy(POLICIES / "northgate.txt").clauses}
    assert northgate["Next review due by: September 2026"].kind == "row"
    assert northgate["Approved by: Northgate Governing Body"].kind == "row"
    assert not any(c.heading.startswith("Next review") for c in northgate.values())
    harwell = [c.text for c in load_policy(POLICIES / "harwell.txt").clauses if c.kind == "row"]
    assert "Ratified by FGB 17 November 2020" in harwell and "Next review due academic year 2022/2023" in harwell
    (tmp_path / "p.txt").write_text(
        "Oakfield Social Media Policy\n\nVersion: 2\nDate approved:\n\n3 March 2025\n\nPersonal use\n\n"
        "Staff must not accept friend requests from current pupils on any social media platform at all.\n"
        "Review: the policy is a living document and the sentence is long enough to be prose, not a field.\n",
        encoding="utf-8",
    )
    read = load_policy(tmp_path / "p.txt")
    rows = [c.text for c in read.clauses if c.kind == "row"]
    assert rows == ["Version: 2", "Date approved: 3 March 2025"]
    assert any("cover-sheet fields" in w for w in read.warnings)
    assert not any(w.startswith("2 clauses are under 25") for w in read.warnings)
    assert not any("table rows were kept" in w for w in read.warnings)  # cover fields are not table rows
