"""Policy answers: clauses a person would cite, verbatim, from every policy style."""

from __future__ import annotations

import json
import zlib
from datetime import date
from pathlib import Path

import pytest

from handlers.policy import ask, index_for
from handlers.policy.document import PolicyError, load_policy
from handlers.policy.parse import normalise, quote_form
from tests.conftest import REPO, SHARED
from tests.helpers import hm

POLICIES = SHARED / "policies"
ALL = sorted(POLICIES.glob("*.txt"))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_citation_is_the_policys_own_words(path: Path) -> None:
    document = load_policy(path)
    source = normalise(document.text)
    assert len(document.clauses) > 40
    for clause in document.clauses:
        assert normalise(clause.text) in source, clause.label
        assert clause.text == clause.text.strip() and "**" not in clause.text
        assert "\uf0b7" not in clause.text


def _labels(name: str) -> dict[str, str]:
    return {c.label: c.text for c in load_policy(POLICIES / name).clauses}


def test_numbered_paragraphs_and_sub_items() -> None:
    northgate = _labels("northgate.txt")
    assert northgate["28"].startswith("Staff should decline 'friend requests' from students")
    assert northgate["21 d)"].startswith("not discuss personal information about students")
    assert "Principal amongst these risks are" in northgate["40"]  # the whole list clause is citable
    assert northgate["40, bullet 3"] == "cyber bullying by pupils/students;"


def test_dotted_numbers_bold_and_long_clauses_bullet_by_bullet() -> None:
    matthews = _labels("st-matthews.txt")
    assert matthews["5.2"].startswith("Employees, volunteers and casual workers must alert")  # **must** unbolded
    assert matthews["7.1"] == "Through Social Media Sites/Applications, employees must not:"
    assert matthews["7.1, bullet 4"].startswith("identify themselves as a representative of the school online")
    assert "past pupils whilst they are below the age of nineteen" in matthews["6.2, bullet 2"]


def test_broken_lines_and_glyph_bullets() -> None:
    james = _labels("st-james-emmanuel.txt")
    assert james["6.11"].startswith("Adults must be cautious about following or being followed by parents/carers")
    assert "  " not in james["1.1"] and "school's expectations" in james["1.1"]
    assert james["Roles and responsibilities, bullet 1"].startswith("ensure that all adults working in school")


def test_a_line_ending_in_an_abbreviation_does_not_end_the_paragraph(tmp_path: Path) -> None:
    policy = tmp_path / "p.txt"
    policy.write_text(
        "CONDUCT\n\nStaff may message pupils through a school account for teaching purposes e.g.\n\n"
        "See-Saw, but must consider whether this is appropriate.\n\nStaff must not accept friend requests.\n"
    )
    texts = [c.text for c in load_policy(policy).clauses]
    assert "Staff may message pupils through a school account for teaching purposes e.g. See-Saw, but must" in texts[0]
    assert texts[1] == "Staff must not accept friend requests."
    # ashgrove's clause of that shape, as published
    assert any("purposes e.g. See-Saw, but must consider" in text for text in _labels("ashgrove.txt").values())


def test_quotes_copied_from_wrapped_text_match_their_clause() -> None:
    assert quote_form("the Pre- school email and  telephone") in quote_form("The Pre-school email and telephone.")
    assert quote_form("Children\u2019s **home** information") == "children's home information"
    assert quote_form("pre - school") == "pre - school"  # a spaced dash is punctuation, not a wrapped hyphen


def test_unnumbered_policy_is_cited_by_heading_and_bullet() -> None:
    ashgrove = _labels("ashgrove.txt")
    assert "block, report or delete other users" in ashgrove["HANDLING ABUSE, bullet 2"]
    assert ashgrove["MONITORING, paragraph 1"].startswith("School accounts must be monitored regularly")


def test_title_school_and_review_dates() -> None:
    northgate = load_policy(POLICIES / "northgate.txt")
    assert (northgate.title, northgate.school) == ("Social Media Policy", "Northgate Primary School")
    assert northgate.next_review_date == date(2026, 9, 30)
    matthews = ask(POLICIES / "st-matthews.txt", "Can I follow a current pupil on Instagram?", today=date(2026, 11, 21))
    assert any("due for review by September 2024" in n for n in matthews.notes)


def _write_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Oakfield Primary School")
    document.add_paragraph("Social Media Policy")
    document.add_paragraph("Personal use")
    document.add_paragraph("1. Staff must not accept friend requests from current pupils on any platform.")
    document.add_paragraph("2. Staff should report any abuse they receive online to the headteacher.")
    document.add_paragraph("3. Photos of pupils must only be posted on official school accounts.")
    document.add_paragraph("4. Staff should keep their privacy settings as strict as possible.")
    document.add_paragraph("5. The school email address must not be used to set up personal accounts.")
    document.save(str(path))


def _write_pdf(path: Path, lines: list[str]) -> None:
    """A minimal text PDF (Helvetica), written by hand: no PDF library needed."""
    text = "BT /F1 11 Tf 40 800 Td 14 TL " + " ".join(f"({ln}) '" for ln in lines) + " ET"
    stream = zlib.compress(text.encode("latin-1"))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


def test_docx_and_pdf_policies(tmp_path: Path) -> None:
    _write_docx(tmp_path / "policy.docx")
    answer = ask(tmp_path / "policy.docx", "Can I accept a friend request from a pupil?")
    assert answer.citations[0].clause == "1" and answer.verdict == "No."
    lines = [
        "Social Media Policy",
        "1. Staff must not accept friend requests from current pupils.",
        "2. Staff should report any abuse they receive online to the headteacher.",
        "3. Photos of pupils must only be posted on official school accounts.",
        "4. Staff should keep their privacy settings as strict as possible.",
        "5. The school email address must not be used for personal accounts.",
    ]
    _write_pdf(tmp_path / "policy.pdf", lines)
    document = load_policy(tmp_path / "policy.pdf")
    assert [c.label for c in document.clauses][:5] == ["1", "2", "3", "4", "5"]
    assert ask(tmp_path / "policy.pdf", "Someone is abusing me online, who do I tell?").verdict == (
        "Report it to the headteacher."
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.txt", None, "no such policy file"),
        ("empty.txt", b"   \n\n", "is empty"),
        ("broken.docx", b"PK\x03\x04 this is not really a docx", "could not be read as .docx"),
        ("broken.pdf", b"%PDF-1.4 garbage", "could not be read as .pdf"),
        ("policy.xlsx", b"whatever", "not supported"),
    ],
)
def test_unreadable_policies_are_clear_errors(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PolicyError, match=message):
        index_for(path)


def test_answers_lead_with_a_verdict_and_cite_in_order() -> None:
    answer = ask(POLICIES / "northgate.txt", "A student sent me a friend request, should I decline it?")
    assert (answer.verdict, answer.citations[0].clause) == ("Yes.", "28")
    photos = ask(POLICIES / "northgate.txt", "Can I put photos of my class on my personal Facebook?")
    assert photos.citations[0].clause == "30"
    assert photos.verdict == "No, not without prior permission of parents/carers and the school."
    trolled = ask(POLICIES / "st-james-emmanuel.txt", "I'm being trolled by a parent, what should I do?")
    assert {c.clause for c in trolled.citations} >= {"9.4", "9.5"}


def test_depends_on_who_offers_choices() -> None:
    answer = ask(POLICIES / "northgate.txt", "Can I accept a friend request from someone at school?")
    chosen = {c["audience"]: c["clause"] for c in answer.choices}
    assert chosen["a current pupil"] == "28" and chosen["a former pupil"] == "27"
    assert answer.answer.startswith("It depends who it is.")
    assert not ask(POLICIES / "northgate.txt", "Can I accept a friend request from a pupil?").choices


def test_off_topic_questions_abstain_and_say_who_to_ask() -> None:
    for question in ("What is the lunch menu this week?", "How many INSET days are there this year?"):
        answer = ask(POLICIES / "harwell.txt", question)
        assert answer.abstained and not answer.citations
        assert answer.answer == "Your policy does not cover this; ask your headteacher or line manager."


def test_ask_command_contracts(tmp_path: Path) -> None:
    one = hm("ask", "--policy", str(POLICIES / "harwell.txt"), "--json", "Can I use the school email for Instagram?")
    body = json.loads(one.stdout)
    assert {"answer", "abstained", "citations"} <= body.keys()
    assert set(body["citations"][0]) == {"clause", "heading", "text"}
    lines = '{"id": "a", "question": "Can I friend a pupil?"}\n{"id": "b", "question": "What is for lunch?"}\n'
    many = hm("ask", "--policy", str(POLICIES / "harwell.txt"), "--jsonl", stdin=lines)
    rows = [json.loads(line) for line in many.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"] and [r["abstained"] for r in rows] == [False, True]
    config = tmp_path / "config.toml"
    config.write_text(
        (REPO / "config.example.toml")
        .read_text()
        .replace("examples/policies/social-media-policy.txt", str(POLICIES / "northgate.txt"))
    )
    school = hm("ask", "--config", str(config), "--school", "northgate", "Can I post photos of pupils on Facebook?")
    assert school.returncode == 0 and "clause 30" in school.stdout
    missing = hm("ask", "--policy", str(tmp_path / "nope.txt"), "hello")
    assert missing.returncode == 2 and "no such policy file" in missing.stderr and "Traceback" not in missing.stderr


def test_late_interaction_uses_the_clause_word_pieces_closest_to_the_question() -> None:
    """Max-sim over MiniLM word pieces: the pooled vectors are the encoder's own, and a clause holding the
    question's words scores above one about something else."""
    import numpy as np

    from handlers.embedding import shared_model
    from handlers.policy.tokens import encode_tokens

    model = shared_model()
    texts = ["Can I accept a friend request from a pupil?", "The minibus must be booked a week ahead."]
    pooled, pieces, words = encode_tokens(model, texts, max_tokens=128)
    assert np.allclose(pooled, model.encode(texts, max_tokens=128), atol=1e-5)
    assert words[0][:3] == ["can", "i", "accept"] and pieces[0].dtype == np.float16
    index = index_for(SHARED / "policies" / "northgate.txt")
    _, q_pieces, q_words = encode_tokens(model, ["Can I accept friend requests from students?"])
    late = index.late_interaction(q_pieces[0], q_words[0])
    assert late.shape == (len(index.clauses),) and float(late.max()) <= 1.0 + 1e-3
    best = index.clauses[int(np.argmax(late))].text.lower()
    assert "friend" in best


def test_passage_windows_are_unit_means_of_each_clauses_own_word_pieces() -> None:
    """A clause of 40 word pieces has windows at 0, 8, 16 and 24 (ending at its end); a short clause has one
    window of all its pieces; the best window of a long clause about two things matches either thing."""
    import numpy as np

    from handlers.policy.index import WINDOW, passage_windows

    rng = np.random.default_rng(0)
    pieces = rng.normal(size=(40 + 5, 384)).astype(np.float32)
    windows, starts = passage_windows(pieces, np.array([0, 40]))
    assert list(starts) == [0, 4] and len(windows) == 5 and WINDOW == 16
    first = pieces[:16].mean(0)
    assert np.allclose(windows[0], first / np.linalg.norm(first), atol=1e-5)
    last = pieces[24:40].mean(0)
    assert np.allclose(windows[3], last / np.linalg.norm(last), atol=1e-5)
    short = pieces[40:].mean(0)
    assert np.allclose(windows[4], short / np.linalg.norm(short), atol=1e-5)
    tail, _ = passage_windows(pieces[:42], np.array([0]))  # 42 pieces: 0, 8, 16, 24 and one ending at 42
    assert len(tail) == 5 and np.allclose(
        tail[4], pieces[26:42].mean(0) / np.linalg.norm(pieces[26:42].mean(0)), atol=1e-5
    )
    index = index_for(SHARED / "policies" / "st-matthews.txt")
    assert index.windows.shape[0] >= len(index.clauses) and len(index.window_starts) == len(index.clauses)
    query = index.query("Can I accept a friend request from a pupil?")
    assert query.window is not None and query.window.shape == (len(index.clauses),)
    assert float(query.window.max()) <= 1.0 + 1e-3 and (query.window >= query.dense - 0.35).all()
