"""Who may see what of an item: the product's privacy rule in one place.

DOMAIN.md "Who may see what": nobody sees another school's items; an item that
was ever triaged or escalated as safeguarding shows its text, author, link and
reasons only to its own school's DSL and deputy DSLs, in their own space, and
its media to nobody; everyone else at the school learns only that a concern
exists. Other items are seen in full by the school's moderators, SLT and DSLs.

The web view, exports, reports and subject-access exports all call `item_view`;
renderers only draw what it allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlmodel import Session, col

from core.config import Config, Role, StaffConfig
from storage.models import Escalation, Item, Triage

SAFEGUARDING = "safeguarding"
DSL_ROLES = frozenset({Role.DSL, Role.DEPUTY_DSL})
FULL_ROLES = frozenset({Role.MODERATOR, Role.SLT, Role.DSL, Role.DEPUTY_DSL})


class Sight(StrEnum):
    """How much of an item a viewer sees."""

    NONE = "none"  # not even that it exists (another school, unknown viewer)
    EXISTS = "exists"  # that it exists, its category, status and times; no text, author, link or reasons
    FULL = "full"  # text, author, link and reasons (media only when `media` is true)


class Place(StrEnum):
    """Where the view is drawn: a person's own space, or somewhere others can read it."""

    PERSONAL = "personal"  # direct message, own queue, web view, export to file
    SHARED = "shared"  # a channel card, a report handed to governors


@dataclass(frozen=True, slots=True)
class ItemView:
    sight: Sight
    media: bool
    why: str

    @property
    def content(self) -> bool:
        """True when text, author, link and reasons may be shown."""
        return self.sight is Sight.FULL


def item_view(
    config: Config,
    *,
    viewer: StaffConfig | None,
    item: Item,
    ever_safeguarding: bool,
    place: Place = Place.PERSONAL,
) -> ItemView:
    """What `viewer` (a configured member of staff, or None for anyone unknown) may see of `item`.

    `ever_safeguarding` is whether the item was ever triaged or escalated as safeguarding
    (see `ever_safeguarding_ids`); re-categorising it since does not lift the rule.
    """
    if viewer is None:
        return ItemView(Sight.NONE, False, "unknown viewer")
    if config.school_of(viewer).id != item.school_id:
        return ItemView(Sight.NONE, False, "another school's item")
    roles = set(viewer.roles)
    if ever_safeguarding or item.category == SAFEGUARDING:
        if roles & DSL_ROLES and place is Place.PERSONAL:
            return ItemView(Sight.FULL, False, "safeguarding: shown to the school's DSLs; media never")
        return ItemView(Sight.EXISTS, False, "safeguarding: passed to the DSL; details for the DSL only")
    if roles & FULL_ROLES:
        return ItemView(Sight.FULL, True, "the school's moderators, SLT and DSLs see its items")
    return ItemView(Sight.EXISTS, False, "staff see that an item exists, not its content")


def ever_safeguarding_ids(session: Session, item_ids: Iterable[int]) -> set[int]:
    """Which of these items were ever triaged or escalated as safeguarding (now or in any past decision)."""
    ids = list(set(item_ids))
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(
            session.scalars(select(col(Item.id)).where(col(Item.id).in_(chunk), col(Item.category) == SAFEGUARDING))
        )
        found.update(
            session.scalars(
                select(col(Triage.item_id)).where(col(Triage.item_id).in_(chunk), col(Triage.category) == SAFEGUARDING)
            )
        )
        found.update(
            session.scalars(
                select(col(Escalation.item_id)).where(
                    col(Escalation.item_id).in_(chunk), col(Escalation.target) == "dsl"
                )
            )
        )
    return found


def view_for(config: Config, session: Session, *, viewer: StaffConfig | None, item: Item) -> ItemView:
    """`item_view` for one item, looking its safeguarding history up."""
    assert item.id is not None
    return item_view(
        config, viewer=viewer, item=item, ever_safeguarding=bool(ever_safeguarding_ids(session, [item.id]))
    )
