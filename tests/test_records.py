"""The governors' report and item records from the command line: figures in HTML and PDF, records
scoped by who asks, the audit as CSV; PDFs are rendered to PNG pages with poppler's pdftoppm.

Set HM_ARTIFACTS=/some/dir to keep the rendered pages for a person to look at.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, select
from sqlmodel import col

from core.config import Config
from hallmonitor.cli import main
from storage.db import open_database, session_scope
from storage.models import Audit
from tests.report_seed import TEXTS, seed, write_config

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def trust(tmp_path: Path) -> Iterator[tuple[Config, Engine, dict[str, int]]]:
    config = write_config(tmp_path)
    engine = open_database(config.service.database_url)
    ids = seed(engine, config)
    yield config, engine, ids
    engine.dispose()


def run(config: Config, *argv: str) -> int:
    return main([argv[0], "--config", str(config.path), *argv[1:]])


def pages_as_png(pdf: Path, name: str) -> list[Path]:
    """Render every page with pdftoppm; skip (saying why) where poppler-utils is not installed."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm not found: install poppler-utils (apt-get install poppler-utils) to render PDFs")
    prefix = pdf.with_suffix("")
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(prefix)], check=True, timeout=60)
    pages = sorted(pdf.parent.glob(prefix.name + "-*.png"))
    keep = os.environ.get("HM_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for page in pages:
            shutil.copy(page, Path(keep) / f"{name}-{page.name.rsplit('-', 1)[-1]}")
    return pages


def test_school_report_html_has_the_hand_computed_figures(trust, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, _, _ = trust
    out = tmp_path / "report.html"
    assert (
        run(config, "report", "--from", "2026-03-30", "--to", "2026-04-05", "--school", "northgate", "--out", str(out))
        == 0
    )
    html = out.read_text()
    assert '<th scope="row">Items</th><td>11</td><td>3</td>' in html
    assert "3 of 7 (43%)" in html and "2 of 3 (67%)" in html  # this week, the week before
    assert "48.0 h" in html and "121.0 h" in html and "23.5 h" in html
    assert "4 (1)" in html and "SLT 1" in html and "83 min" not in html and "82 min" in html
    assert html.count("data:image/png;base64,") == 2
    assert not any(text in html for text in TEXTS.values()) and "Parent" not in html


def test_trust_report_pdf_renders(trust, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, _, _ = trust
    out = tmp_path / "trust.pdf"
    assert (
        run(
            config,
            "report",
            "--from",
            "2026-01-05",
            "--to",
            "2026-04-05",
            "--trust",
            "--format",
            "pdf",
            "--out",
            str(out),
        )
        == 0
    )
    text = "".join(page.extract_text() for page in PdfReader(out).pages)
    assert "Trust: Northgate Primary, Kirkton Primary" in text
    assert "Kirkton Primary" in text and "5 of 11" in text  # the term: 3 of 8 in the last week, 2 of 3 the week before
    assert "Greenfield" not in text and "Parent" not in text
    pages = pages_as_png(out, "trust-report")
    assert pages and all(p.read_bytes().startswith(PNG) and p.stat().st_size > 5000 for p in pages)


def test_export_item_as_a_moderator_with_evidence(trust, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, _, ids = trust
    out = tmp_path / "a1.json"
    assert run(config, "export", "item", str(ids["a1"]), "--as", "amira", "--out", str(out)) == 0
    record = json.loads(out.read_text())
    assert record["item"]["text"] == TEXTS["a1"] and record["item"]["author"] == "Parent A1"
    assert record["item"]["media_links"] == ["https://northgate.example/media/a1.jpg"]
    assert record["evidence"][0]["snapshot"]["text"] == TEXTS["a1"]
    assert record["actions"][0]["action"] == "hide" and record["escalations"][0]["acknowledged_by"] == "helen"
    pdf = tmp_path / "a1.pdf"
    assert run(config, "export", "item", str(ids["a1"]), "--as", "amira", "--format", "pdf", "--out", str(pdf)) == 0
    assert "You are a disgrace" in "".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert pages_as_png(pdf, "export-abuse")


def test_a_safeguarding_record_is_for_the_schools_dsls_only(trust, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    config, engine, ids = trust
    s1 = str(ids["s1"])
    for who in ("dana", "dev"):  # the DSL and the deputy DSL
        out = tmp_path / f"s1-{who}.json"
        assert run(config, "export", "item", s1, "--as", who, "--out", str(out)) == 0
        record = json.loads(out.read_text())
        assert record["item"]["text"] == TEXTS["s1"] and record["item"]["safeguarding"] is True
        assert "media_links" not in record["item"] and "raw" not in record["item"]
        assert "media.jpg" not in out.read_text() and "/media/" not in out.read_text()
    for who in ("amira", "helen", "sam"):
        assert run(config, "export", "item", s1, "--as", who) == 2
        assert "only Northgate Primary's DSL and deputy DSLs" in capsys.readouterr().err
    assert run(config, "export", "item", str(ids["a1"]), "--as", "kate") == 2  # another school's DSL
    assert f"no item {ids['a1']} you can export" in capsys.readouterr().err
    pdf = tmp_path / "s1.pdf"
    assert run(config, "export", "item", s1, "--as", "dana", "--format", "pdf", "--out", str(pdf)) == 0
    assert pages_as_png(pdf, "export-safeguarding")
    with session_scope(engine) as session:
        outcomes = [
            (a.actor, a.outcome)
            for a in session.scalars(select(Audit).where(col(Audit.action) == "export_item").order_by(col(Audit.id)))
        ]
    assert outcomes == [
        ("dana", "ok"),
        ("dev", "ok"),
        ("amira", "refused"),
        ("helen", "refused"),
        ("sam", "refused"),
        ("dana", "ok"),
    ]


def test_audit_csv_withholds_safeguarding_details(trust, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    config, _, ids = trust
    run(config, "export", "item", str(ids["s1"]), "--as", "amira")  # a refusal, audited
    capsys.readouterr()
    assert run(config, "audit", "--from", "2026-01-01", "--to", "2026-12-31", "--csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["action"] for r in rows] == ["hide", "export_item"]
    assert json.loads(rows[0]["detail"]) == {"message": "Hidden."}
    assert json.loads(rows[1]["detail"]) == {"withheld": "safeguarding item"}
    assert run(config, "audit", "--from", "2026-01-01", "--to", "2026-12-31", "--item", str(ids["a1"]), "--csv") == 0
    assert len(list(csv.DictReader(io.StringIO(capsys.readouterr().out)))) == 1
