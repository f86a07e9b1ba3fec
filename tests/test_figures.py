"""Every digest and report figure on the seeded trust, against answers worked out by hand
(see tests/report_seed.py for each item's reply clock)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from handlers.reports.figures import Period, compute, median, p90, source_problems
from storage.db import session_scope
from tests.report_seed import NOW, seed, write_config

WEEK = Period(date(2026, 3, 30), date(2026, 4, 5))


@pytest.fixture
def trust(tmp_path: Path, engine):  # type: ignore[no-untyped-def]
    config = write_config(tmp_path)
    seed(engine, config)
    return config, engine


def test_percentiles_by_hand() -> None:
    assert median([0.5, 2, 26, 70, 101, 121]) == 48
    assert p90([0.5, 2, 26, 70, 101, 121]) == 121  # ceil(5.4) = 6th
    assert p90([1, 46]) == 46 and median([1, 46]) == 23.5
    assert p90(list(range(1, 11))) == 9  # ceil(9.0) = 9th
    assert median([]) is None and p90([]) is None


def test_the_week_for_one_school(trust) -> None:  # type: ignore[no-untyped-def]
    config, engine = trust
    with session_scope(engine) as session:
        f = compute(session, config=config, schools=[config.school("northgate")], period=WEEK, now=NOW)
    assert dict(f.by_category) == {"question": 5, "complaint": 2, "praise": 1, "abuse": 1, "safeguarding": 2}
    assert f.items == 11  # the spam at Mon 00:30 BST (Sun 23:30 UTC) belongs to the next week
    assert (f.on_time, f.late, f.pending) == (3, 4, 0)
    assert f.on_time_rate == pytest.approx(3 / 7)
    assert sorted(f.response_hours) == pytest.approx([0.5, 2, 26, 70, 101, 121])
    assert f.median_response_hours == pytest.approx(48)
    assert f.p90_response_hours == pytest.approx(121)
    assert (f.awaiting_at_end, f.overdue_at_end) == (4, 1)  # c3, q3, q4, q5 awaiting; only c3 was already due
    assert dict(f.escalations) == {"slt": 1, "dsl": 2}
    assert sorted(f.ack_minutes) == pytest.approx([45, 120])
    assert f.median_ack_minutes == pytest.approx(82.5)
    assert f.unacknowledged_at_end == 1
    assert f.daily[date(2026, 4, 2)] == {"complaint": 1, "question": 1, "abuse": 1}
    assert f.daily[date(2026, 4, 5)] == {"question": 1, "safeguarding": 1}
    assert sum(sum(c.values()) for c in f.daily.values()) == 11


def test_the_week_before_crosses_the_clock_change(trust) -> None:  # type: ignore[no-untyped-def]
    config, engine = trust
    with session_scope(engine) as session:
        f = compute(session, config=config, schools=[config.school("northgate")], period=WEEK.previous(), now=NOW)
    assert WEEK.previous() == Period(date(2026, 3, 23), date(2026, 3, 29))
    assert (f.on_time, f.late) == (2, 1)
    assert sorted(f.response_hours) == pytest.approx([1, 46])  # Sat 10:00 GMT to Mon 09:00 BST is 46 hours
    assert f.median_response_hours == pytest.approx(23.5)
    assert f.p90_response_hours == pytest.approx(46)


def test_the_trust_pools_both_schools_each_on_its_own_clock(trust) -> None:  # type: ignore[no-untyped-def]
    config, engine = trust
    with session_scope(engine) as session:
        f = compute(session, config=config, schools=config.schools, period=WEEK, now=NOW)
        kirkton = compute(session, config=config, schools=[config.school("kirkton")], period=WEEK, now=NOW)
    # Kirkton's Saturday question was due on Easter Monday (a Scottish working day) and answered after 17:00
    assert (kirkton.on_time, kirkton.late) == (0, 1)
    assert f.items == 12
    assert (f.on_time, f.late) == (3, 5)
    assert f.on_time_rate == pytest.approx(3 / 8)
    assert f.median_response_hours == pytest.approx(56)
    assert f.p90_response_hours == pytest.approx(121)


def test_sources_failing_now(trust) -> None:  # type: ignore[no-untyped-def]
    config, engine = trust
    with session_scope(engine) as session:
        problems = source_problems(session, config=config, schools=config.schools, now=NOW)
    assert [(p.account, p.state) for p in problems] == [("kirkton-news", "failing")]
    assert "auth" in problems[0].detail
