"""The privacy rule (DOMAIN.md "Who may see what") as a table: every role, both schools, both places."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.actions import Outcome
from handlers.visibility import Place, Sight, ever_safeguarding_ids, item_view
from storage.db import session_scope
from storage.models import Audit, Item
from tests.helpers import act, count
from tests.report_seed import seed, write_config


def _item(category: str, school: str = "northgate") -> Item:
    return Item(
        school_id=school,
        account_id=f"{school}-news",
        external_id="x",
        platform="rss",
        kind="comment",
        text="t",
        category=category,
    )


@pytest.fixture
def config(tmp_path: Path):  # type: ignore[no-untyped-def]
    return write_config(tmp_path)


@pytest.mark.parametrize(
    ("viewer", "category", "ever", "sight", "media"),
    [
        ("dana", "safeguarding", True, Sight.FULL, False),  # the DSL: text, never media
        ("dev", "safeguarding", True, Sight.FULL, False),  # a deputy DSL likewise
        ("dev", "other", True, Sight.FULL, False),  # re-categorised since: still the DSL's, still no media
        ("amira", "other", True, Sight.EXISTS, False),  # re-categorising does not lift the rule
        ("amira", "safeguarding", True, Sight.EXISTS, False),
        ("helen", "safeguarding", True, Sight.EXISTS, False),
        ("sam", "safeguarding", True, Sight.EXISTS, False),
        ("kate", "safeguarding", True, Sight.NONE, False),  # another school's DSL: nothing
        ("amira", "abuse", False, Sight.FULL, True),  # abuse in full for moderators and SLT
        ("helen", "abuse", False, Sight.FULL, True),
        ("sam", "abuse", False, Sight.EXISTS, False),
        ("kim", "abuse", False, Sight.NONE, False),
        (None, "question", False, Sight.NONE, False),  # an unknown viewer: nothing
    ],
)
def test_who_sees_what(config, viewer: str | None, category: str, ever: bool, sight: Sight, media: bool) -> None:  # type: ignore[no-untyped-def]
    staff = config.staff_by_id(viewer) if viewer else None
    view = item_view(config, viewer=staff, item=_item(category), ever_safeguarding=ever)
    assert (view.sight, view.media) == (sight, media)
    assert view.content is (sight is Sight.FULL)


def test_a_dsl_in_a_shared_place_sees_only_that_a_concern_exists(config) -> None:  # type: ignore[no-untyped-def]
    view = item_view(
        config,
        viewer=config.staff_by_id("dana"),
        item=_item("safeguarding"),
        ever_safeguarding=True,
        place=Place.SHARED,
    )
    assert view.sight is Sight.EXISTS


def test_ever_safeguarding_looks_at_history_and_escalations(config, engine) -> None:  # type: ignore[no-untyped-def]
    ids = seed(engine, config)
    with session_scope(engine) as session:
        s1 = session.get(Item, ids["s1"])
        assert s1 is not None
        s1.category = "other"  # re-categorised: the triage history and the DSL escalation remember
        session.add(s1)
    with session_scope(engine) as session:
        assert ever_safeguarding_ids(session, ids.values()) == {ids["s1"], ids["s2"]}


def test_only_a_dsl_can_lift_safeguarding_protection_and_it_is_audited(config, engine) -> None:  # type: ignore[no-untyped-def]
    ids = seed(engine, config)
    with session_scope(engine) as session:
        s1 = session.get(Item, ids["s1"])
        assert s1 is not None
        s1.category = "other"  # re-categorised by a moderator: still protected
        session.add(s1)
    assert act(engine, config, "lift_protection", ids["s1"], actor="amira").outcome is Outcome.REFUSED
    assert (
        act(engine, config, "lift_protection", ids["s2"], actor="dana").outcome is Outcome.REFUSED
    )  # still safeguarding
    with session_scope(engine) as session:
        assert ids["s1"] in ever_safeguarding_ids(session, [ids["s1"]])
    assert act(engine, config, "lift_protection", ids["s1"], actor="dana").ok
    with session_scope(engine) as session:
        assert ever_safeguarding_ids(session, [ids["s1"], ids["s2"]]) == {ids["s2"]}
    lifts = count(engine, Audit, Audit.action == "lift_protection")
    refused = count(engine, Audit, Audit.action == "lift_protection", Audit.outcome == "refused")
    assert (lifts, refused) == (3, 2)
