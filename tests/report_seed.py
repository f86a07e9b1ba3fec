"""A seeded trust for the report, digest, export, retention and web tests.

Two schools: Northgate (England) and Kirkton (Scotland, where Easter Monday is a
working day). The digest week is Mon 30 March - Sun 5 April 2026 (BST): Good Friday
on the 3rd, the weekend, then Easter Monday the 6th (England only). The week before
(23-29 March) has the clock change. Every figure the tests expect is worked out by
hand in the comments next to each item.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlmodel import col

from core.config import Config
from monitors.registry import load_config
from storage.db import session_scope
from storage.models import Escalation, Evidence, Item, Source, Triage
from storage.queries import sync_config, write_audit

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 4, 13, 7, 0, tzinfo=UTC)  # Mon 13 April 08:00 BST: digest time, a week later

CONFIG = """
[service]
database_url = "sqlite:///{db}"
public_url = "http://127.0.0.1:{port}"

[chat]
surface = "console"
read_commands = false

[[schools]]
id = "northgate"
name = "Northgate Primary"
nation = "england"

[[schools]]
id = "kirkton"
name = "Kirkton Primary"
nation = "scotland"

[[staff]]
id = "amira"
name = "Amira Khan"
school = "northgate"
roles = ["moderator"]
slack_user = "UAMIRA"
teams_user = "aad-amira"

[[staff]]
id = "ben"
name = "Ben Okafor"
school = "northgate"
roles = ["moderator"]

[[staff]]
id = "helen"
name = "Helen Moore"
school = "northgate"
roles = ["slt"]
slack_user = "UHELEN"
teams_user = "aad-helen"

[[staff]]
id = "dana"
name = "Dana Price"
school = "northgate"
roles = ["dsl"]
slack_user = "UDANA"

[[staff]]
id = "dev"
name = "Dev Patel"
school = "northgate"
roles = ["deputy_dsl"]

[[staff]]
id = "sam"
name = "Sam Teacher"
school = "northgate"
roles = ["staff"]
slack_user = "USAM"

[[staff]]
id = "kim"
name = "Kim Reid"
school = "kirkton"
roles = ["moderator", "slt"]
slack_user = "UKIM"

[[staff]]
id = "kate"
name = "Kate Ross"
school = "kirkton"
roles = ["moderator", "dsl"]

[[accounts]]
id = "northgate-news"
school = "northgate"
platform = "rss"
moderators = ["amira", "ben"]
watch = ["https://northgate.example/feed"]

[[accounts]]
id = "kirkton-news"
school = "kirkton"
platform = "rss"
moderators = ["kim", "kate"]
watch = ["https://kirkton.example/feed"]
"""


def write_config(tmp_path: Path, *, port: int = 8000, extra: str = "") -> Config:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(db=tmp_path / "hm.db", port=port) + extra, encoding="utf-8")
    return load_config(path)


def bst(day: int, hour: int, minute: int = 0, month: int = 4) -> datetime:
    """A school-local (London) time in spring 2026, as aware UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=LONDON).astimezone(UTC)


# (key, school, category, received, replied, escalate, ack)  -- reply clock by handlers.deadline
ITEMS = [
    # the digest week, Northgate (England)
    (
        "q1",
        "northgate",
        "question",
        bst(30, 10, month=3),
        bst(30, 12, month=3),
        None,
        None,
    ),  # due Tue 10:00; 2h on time
    ("c1", "northgate", "complaint", bst(31, 9, month=3), bst(1, 11), None, None),  # due Wed 09:00; 26h late
    ("p1", "northgate", "praise", bst(1, 12), None, None, None),  # no reply needed
    ("c3", "northgate", "complaint", bst(2, 9), bst(7, 10), None, None),  # due Fri 09:00; 121h late, overdue at end
    ("q2", "northgate", "question", bst(2, 16), bst(2, 16, 30), None, None),  # due Fri 16:00 (24h); 0.5h on time
    ("a1", "northgate", "abuse", bst(2, 20), None, "slt", bst(2, 20, 45)),  # ack in 45 min
    ("q3", "northgate", "question", bst(3, 10), bst(7, 15), None, None),  # Good Friday: due Tue 17:00; 101h on time
    ("s1", "northgate", "safeguarding", bst(4, 11), None, "dsl", bst(4, 13)),  # ack in 120 min
    ("q4", "northgate", "question", bst(4, 20), bst(7, 18), None, None),  # Sat: due Tue 17:00; 70h late
    ("q5", "northgate", "question", bst(5, 9), None, None, None),  # Sun: due Tue 17:00; never replied: late
    ("s2", "northgate", "safeguarding", bst(5, 23, 30), None, "dsl", None),  # local Sunday; never acknowledged
    ("x1", "northgate", "spam", bst(6, 0, 30), None, None, None),  # Mon 00:30 BST = Sun 23:30 UTC: next week
    # the digest week, Kirkton (Scotland: Easter Monday is a working day)
    ("k1", "kirkton", "question", bst(4, 10), bst(6, 18), None, None),  # Sat: due Mon 6th 17:00; 56h late
    # the week before, Northgate (clocks went forward on Sun 29 March)
    ("q6", "northgate", "question", bst(27, 15, month=3), bst(27, 16, month=3), None, None),  # 1h on time
    (
        "q7",
        "northgate",
        "question",
        bst(28, 10, month=3),
        bst(30, 9, month=3),
        None,
        None,
    ),  # due Mon 17:00; 46h on time
    ("c2", "northgate", "complaint", bst(25, 10, month=3), None, None, None),  # due Thu 10:00, never replied: late
]

TEXTS = {
    "s1": "A pupil in year 5 said she is scared to go home, Greenfield Road",
    "s2": "Worried about a child seen alone at the park every night",
    "a1": "You are a disgrace, Mr Smith",
}
NEEDS_REPLY = {"question", "complaint", "media"}


def seed(engine: Engine, config: Config) -> dict[str, int]:
    """Insert the items above (with triage, escalations, one evidence snapshot and an audit row); return ids."""
    ids: dict[str, int] = {}
    with session_scope(engine) as session:
        sync_config(session, config=config)
        for key, school, category, received, replied, escalate, ack in ITEMS:
            item = Item(
                school_id=school,
                account_id=f"{school}-news",
                external_id=key,
                platform="rss",
                kind="comment",
                author=f"Parent {key.upper()}",
                text=TEXTS.get(key, f"Comment {key}: when is the next parents' evening?"),
                url=f"https://{school}.example/posts/{key}",
                created_at=received,
                received_at=received,
                status="replied" if replied else "open",
                category=category,
                needs_reply=category in NEEDS_REPLY,
                escalate=escalate or "none",
                media_urls=[f"https://{school}.example/media/{key}.jpg"],
                raw={"id": key, "from": {"id": f"user-{key}", "name": f"Parent {key.upper()}"}},
                replied_at=replied,
            )
            session.add(item)
            session.flush()
            assert item.id is not None
            ids[key] = item.id
            session.add(
                Triage(
                    item_id=item.id,
                    category=category,
                    needs_reply=item.needs_reply,
                    escalate=item.escalate,
                    reasons=[f"rule: looks like {category}"],
                    decided_by="auto:rules",
                    created_at=received,
                )
            )
            if escalate:
                session.add(
                    Escalation(
                        item_id=item.id,
                        target=escalate,
                        reason=f"triaged as {category}",
                        created_at=received,
                        acknowledged_at=ack,
                        acknowledged_by="helen" if escalate == "slt" else ("dana" if ack else None),
                    )
                )
        session.add(
            Evidence(
                item_id=ids["a1"],
                reason="hide",
                taken_at=bst(2, 21),
                snapshot={"text": TEXTS["a1"], "author": "Parent A1", "media_links": []},
            )
        )
        write_audit(
            session,
            actor="amira",
            action="hide",
            outcome="ok",
            school_id="northgate",
            item_id=ids["a1"],
            surface="slack",
            detail={"message": "Hidden."},
        )
        source = session.scalars(select(Source).where(col(Source.account_id) == "kirkton-news")).one()
        source.consecutive_errors, source.last_error_kind = 3, "auth"
        source.last_error = "the feed answered 401"
    return ids
