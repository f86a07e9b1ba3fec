"""Health notes: the one way a problem that needs a person (a failing or silent source, a webhook
delivery given up, someone who cannot be reached, files that could not be sent) is queued for a
school's moderators.

A note says what happened, to which source, delivery or person, and where to look; it never
carries an item's content (text, author, link, media), since the moderators see health notes
for safeguarding items too. So the note is built from a headline, a sentence and an account id
only: it is not linked to an item (no `item_id`), and callers name items by number, never by
what they say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from core.domain import Audience
from storage.queries import enqueue


@dataclass(frozen=True, slots=True)
class HealthNote:
    """What the moderators are told: a headline, one or two sentences, and the account it is
    about when there is one (the card shows which account)."""

    headline: str
    text: str
    account: str | None = None


def tell_moderators(session: Session, *, school_id: str, key: str, note: HealthNote, now: datetime) -> bool:
    """Queue `note` for the moderators of `school_id`, once per `key`; True if it was new."""
    return enqueue(
        session,
        dedupe_key=key,
        school_id=school_id,
        kind="health",
        audience=Audience.MODERATORS,
        now=now,
        payload={"headline": note.headline, "text": note.text, "account": note.account},
    )
