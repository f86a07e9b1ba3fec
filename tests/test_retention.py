"""Retention over a seeded year: what is kept, anonymised, deleted and held, and what the audit
says; legal holds; subject access (JSON and PDF) and erasure respecting holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DatabaseError
from sqlmodel import col

from core.config import Config
from handlers.reports.figures import Period, compute
from handlers.retention import REMOVED, purge_school, run_due_purges, set_legal_hold
from handlers.subject_access import ERASED, erase, subject_access, subject_access_pdf
from storage.db import session_scope
from storage.models import Audit, Evidence, Item, SeenInteraction, WebhookEvent
from tests.report_seed import NOW, seed, write_config
from tests.test_records import pages_as_png

START = datetime(2025, 4, 14, 9, 0, tzinfo=UTC)  # week 0: Mon 14 April 2025 10:00 BST; now is 364 days minus 2 h later
SHORT = 'nation = "england"\nretention = { items = "180d", evidence = "270d", audit = "300d", webhooks = "30d" }'


@pytest.fixture
def year(tmp_path: Path, engine: Engine) -> Iterator[tuple[Config, Engine, dict[int, int]]]:
    """52 weekly items at Northgate; every fourth week's is abuse, escalated, hidden with evidence."""
    config = write_config(tmp_path)
    path = config.path
    assert path is not None
    path.write_text(path.read_text().replace('nation = "england"', SHORT, 1))
    from monitors.registry import load_config

    config = load_config(path)
    seed(engine, config)  # the spring 2026 items: younger than every period here, so all kept
    ids: dict[int, int] = {}
    with session_scope(engine) as session:
        for k in range(52):
            at = START + timedelta(days=7 * k)
            abuse = k % 4 == 0
            item = Item(
                school_id="northgate",
                account_id="northgate-news",
                external_id=f"week-{k}",
                platform="rss",
                kind="comment",
                author=f"Writer {k}",
                text=f"comment of week {k}",
                url=f"https://n.example/{k}",
                received_at=at,
                category="abuse" if abuse else "question",
                needs_reply=not abuse,
                escalate="slt" if abuse else "none",
                raw={"from": {"id": f"w{k}"}},
                media_urls=["m.jpg"],
            )
            session.add(item)
            session.flush()
            assert item.id is not None
            ids[k] = item.id
            if abuse:
                from storage.models import Escalation

                session.add(Escalation(item_id=item.id, target="slt", reason="abuse", created_at=at))
                session.add(
                    Evidence(
                        item_id=item.id,
                        reason="hide",
                        taken_at=at + timedelta(hours=1),
                        snapshot={"text": item.text, "author": item.author},
                    )
                )
            session.add(
                Audit(
                    at=at + timedelta(hours=1),
                    school_id="northgate",
                    actor="amira",
                    action="close",
                    item_id=item.id,
                    outcome="ok",
                    detail={},
                )
            )
        session.add(
            Audit(at=NOW - timedelta(days=330), school_id="northgate", actor="system", action="note", outcome="ok")
        )
        session.add(Audit(at=NOW - timedelta(days=330), school_id="kirkton", actor="kim", action="note", outcome="ok"))
        for days in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100):
            session.add(
                WebhookEvent(
                    platform="facebook",
                    account_id="northgate-news",
                    digest=f"d{days}",
                    body=b"{}",
                    received_at=NOW - timedelta(days=days),
                    status="processed",
                )
            )
        session.add(
            WebhookEvent(
                platform="facebook",
                account_id="northgate-news",
                digest="pending",
                body=b"{}",
                received_at=NOW - timedelta(days=100),
                status="pending",
            )
        )
    yield config, engine, ids


def test_legal_hold_is_for_moderators_and_dsls_and_audited(year) -> None:  # type: ignore[no-untyped-def]
    config, engine, ids = year
    with session_scope(engine) as session:
        assert (
            set_legal_hold(
                session, config=config, actor="sam", item_id=ids[4], hold=True, reason="police", surface="test", now=NOW
            )[0]
            is False
        )
        assert (
            set_legal_hold(
                session, config=config, actor="amira", item_id=ids[4], hold=True, reason=" ", surface="test", now=NOW
            )[0]
            is False
        )
        assert (
            set_legal_hold(
                session, config=config, actor="kate", item_id=ids[4], hold=True, reason="x", surface="test", now=NOW
            )[0]
            is False
        )  # another school's DSL
        ok, message = set_legal_hold(
            session,
            config=config,
            actor="amira",
            item_id=ids[4],
            hold=True,
            reason="police request 26/114",
            surface="test",
            now=NOW,
        )
        assert ok and "legal hold" in message
        rows = [
            (a.actor, a.outcome)
            for a in session.scalars(select(Audit).where(col(Audit.action) == "legal_hold").order_by(col(Audit.id)))
        ]
        assert rows == [("sam", "refused"), ("amira", "refused"), ("kate", "refused"), ("amira", "ok")]


def test_purge_over_a_year(year) -> None:  # type: ignore[no-untyped-def]
    config, engine, ids = year
    with session_scope(engine) as session:
        set_legal_hold(
            session,
            config=config,
            actor="dana",
            item_id=ids[4],
            hold=True,
            reason="complaint in progress",
            surface="test",
            now=NOW,
        )
    with session_scope(engine) as session:
        report = purge_school(session, config=config, school=config.school("northgate"), now=NOW)
    # routine items older than 180 days: weeks 0-26 less the 7 abuse weeks among them (0, 4, ..., 24)
    # escalated items and evidence older than 270 days: abuse weeks 0, 4, 8, 12, less week 4 (held)
    # audit older than 300 days: weeks 0-9 less week 4 (held), plus the old system row; Kirkton's is not ours
    # webhook deliveries older than 30 days: 40..100 days (7); the pending one stays
    assert asdict(report) == {
        "school": "northgate",
        "items_anonymised": 20,
        "evidence_items_anonymised": 3,
        "evidence_deleted": 3,
        "audit_deleted": 10,
        "webhooks_deleted": 7,
        "held_kept": 1,
    }
    with session_scope(engine) as session:
        week = {k: session.get(Item, ids[k]) for k in (0, 1, 4, 12, 16, 26, 27)}
        assert week[1].text == REMOVED and week[1].author is None and week[1].url is None
        assert week[1].raw == {} and week[1].media_urls == [] and week[1].anonymised_at == NOW
        assert week[1].category == "question" and week[1].external_id == "week-1"  # counts and dedupe stay
        assert week[26].text == REMOVED and week[27].text == "comment of week 27"
        assert week[0].text == REMOVED and week[12].text == REMOVED and week[16].text == "comment of week 16"
        assert week[4].text == "comment of week 4" and week[4].author == "Writer 4"  # held: untouched
        assert [
            e.item_id
            for e in session.scalars(
                select(Evidence).where(col(Evidence.item_id).in_([ids[k] for k in (0, 4, 8, 12, 16)]))
            )
        ] == [ids[4], ids[16]]
        assert session.scalars(select(Audit).where(col(Audit.item_id) == ids[4])).first() is not None
        assert session.scalars(select(Audit).where(col(Audit.school_id) == "kirkton")).first() is not None
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 4
        purge_rows = list(session.scalars(select(Audit).where(col(Audit.action) == "retention_purge")))
        assert len(purge_rows) == 1 and purge_rows[0].detail["items_anonymised"] == 20
        assert purge_rows[0].detail["periods_days"] == {"items": 180, "evidence": 270, "audit": 300, "webhooks": 30}
        # a year of figures still adds up after the purge: nothing was deleted, only anonymised
        figures = compute(
            session,
            config=config,
            schools=[config.school("northgate")],
            period=Period(date(2025, 4, 14), date(2025, 10, 12)),
            now=NOW,
        )
        assert figures.items == 26 and figures.by_category["abuse"] == 7
    with session_scope(engine) as session:  # a second run the same night finds nothing more to do
        again = purge_school(session, config=config, school=config.school("northgate"), now=NOW)
        assert again.items_anonymised == again.audit_deleted == again.evidence_deleted == 0
    with session_scope(engine) as session:
        assert (
            session.scalar(select(func.count()).select_from(Audit).where(col(Audit.action) == "retention_purge")) == 1
        )


def test_append_only_holds_outside_the_purge(year) -> None:  # type: ignore[no-untyped-def]
    _, engine, _ = year
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit"))
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE evidence SET reason = 'x'"))
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM evidence"))


def test_the_nightly_job_runs_once_a_night_after_its_time(year) -> None:  # type: ignore[no-untyped-def]
    config, engine, _ = year
    last: dict[str, date] = {}
    early = datetime(2026, 4, 13, 1, 0, tzinfo=UTC)  # 02:00 BST: before 02:30
    assert run_due_purges(engine, config=config, now=early, last_run=last) == []
    night = datetime(2026, 4, 13, 1, 45, tzinfo=UTC)
    assert [r.school for r in run_due_purges(engine, config=config, now=night, last_run=last)] == [
        "northgate",
        "kirkton",
    ]
    assert run_due_purges(engine, config=config, now=night + timedelta(hours=3), last_run=last) == []
    assert len(run_due_purges(engine, config=config, now=night + timedelta(days=1), last_run=last)) == 2


def test_the_nightly_job_forgets_replay_keys_no_signed_request_can_reuse(year) -> None:  # type: ignore[no-untyped-def]
    config, engine, _ = year
    night = datetime(2026, 4, 13, 1, 45, tzinfo=UTC)
    with session_scope(engine) as session:
        session.add(SeenInteraction(key="slack:old", seen_at=night - timedelta(days=3)))
        session.add(SeenInteraction(key="slack:recent", seen_at=night - timedelta(hours=6)))
    run_due_purges(engine, config=config, now=night, last_run={})
    with session_scope(engine) as session:
        assert list(session.scalars(select(SeenInteraction.key))) == ["slack:recent"]


def test_subject_access_json_and_pdf(year, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, engine, _ = year
    with session_scope(engine) as session:
        by_slt = subject_access(session, config=config, subject="parent a1", staff_id="helen", now=NOW)
        by_id = subject_access(session, config=config, subject="user-q1", staff_id="helen", now=NOW)
        s1_slt = subject_access(session, config=config, subject="Parent S1", staff_id="helen", now=NOW)
        s1_dsl = subject_access(session, config=config, subject="Parent S1", staff_id="dana", now=NOW)
        other = subject_access(session, config=config, subject="Parent K1", staff_id="helen", now=NOW)
    (a1,) = by_slt["items"]
    assert a1["text"] == "You are a disgrace, Mr Smith" and a1["media_links"]
    assert a1["evidence_snapshots"][0]["text"] == "You are a disgrace, Mr Smith"
    assert [i["text"] for i in by_id["items"]] == ["Comment q1: when is the next parents' evening?"]
    assert s1_slt["items"] == [] and s1_slt["withheld_safeguarding"] == 1
    assert len(s1_dsl["items"]) == 1 and "media_links" not in s1_dsl["items"][0]
    assert other["items"] == []  # Kirkton's parent: not Northgate's data
    with session_scope(engine) as session:
        rows = list(session.scalars(select(Audit).where(col(Audit.action) == "subject_access")))
    assert len(rows) == 5 and all("Parent" not in json.dumps(r.detail) for r in rows)
    pdf = tmp_path / "sar.pdf"
    pdf.write_bytes(subject_access_pdf(by_slt))
    assert pages_as_png(pdf, "subject-access")
    with pytest.raises(Exception, match="SLT or DSL"), session_scope(engine) as session:
        subject_access(session, config=config, subject="Parent A1", staff_id="amira", now=NOW)


def test_erasure_respects_holds_and_the_dsl(year) -> None:  # type: ignore[no-untyped-def]
    config, engine, _ = year
    ids = {}
    with session_scope(engine) as session:
        for key in ("a1", "q1", "s1"):
            ids[key] = session.scalars(select(Item.id).where(col(Item.external_id) == key)).one()
        set_legal_hold(
            session,
            config=config,
            actor="amira",
            item_id=ids["a1"],
            hold=True,
            reason="police",
            surface="test",
            now=NOW,
        )
    with session_scope(engine) as session:
        assert erase(session, config=config, subject="Parent A1", staff_id="helen", now=NOW)["kept_on_legal_hold"] == [
            ids["a1"]
        ]
        assert erase(session, config=config, subject="Parent Q1", staff_id="helen", now=NOW)["erased"] == [ids["q1"]]
        assert erase(session, config=config, subject="Parent S1", staff_id="helen", now=NOW)["kept_for_the_dsl"] == [
            ids["s1"]
        ]
        assert erase(session, config=config, subject="Parent S1", staff_id="dana", now=NOW)["erased"] == [ids["s1"]]
    with session_scope(engine) as session:
        assert session.get(Item, ids["a1"]).text == "You are a disgrace, Mr Smith"
        assert session.get(Item, ids["q1"]).text == ERASED and session.get(Item, ids["q1"]).author is None
        assert session.get(Item, ids["s1"]).text == ERASED
        assert session.scalars(select(Evidence).where(col(Evidence.item_id) == ids["a1"])).first() is not None
        assert session.scalar(select(func.count()).select_from(Audit).where(col(Audit.action) == "erasure")) == 4
