"""The chat core every surface shares: act on an item, answer a command, draw the queue.

Surfaces (console, Slack, Teams) only translate their own payloads into these calls and
render what comes back; no surface decides who may do what or who may see what (that is
`handlers.actions.perform` and `bot.view.view`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.view import view
from core.chat import Card, Place
from core.config import Config, Role, StaffConfig
from core.protocols import Runtime
from handlers.actions import ActionRequest, ActionResult, authorise, perform
from handlers.chat_requests import chat_request
from handlers.policy import PolicyError, ask
from monitors.base import ActRequest
from monitors.base import Source as Connector
from storage.db import session_scope
from storage.models import Item
from storage.queries import open_escalations, open_items
from storage.types import utcnow

HELP = (
    "Commands: `ask <question>` (answers from your school's social media policy), "
    "`queue` (open items, escalations first), `status` (monitor health), "
    "`web` (a sign-in link to the web view, by direct message), `export N` (an item's record as a PDF), "
    "`hold N reason` / `release N` (legal hold)."
)
REQUESTS = ("web", "export", "hold", "release")
STRANGER = "I don't know you yet: ask your school's Hall Monitor admin to add your chat id to the staff list."


@dataclass(slots=True)
class ActOutcome:
    result: ActionResult
    card: Card | None = None  # the requester's own view of the item afterwards (None if they may see nothing)

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def message(self) -> str:
        return self.result.message


class ChatRuntime(Runtime, Protocol):
    """The service as the chat core sees it: it also runs platform actions on its shared client."""

    def platform_call(self, connector: Connector, request: ActRequest) -> str: ...


def act(service: ChatRuntime, request: ActionRequest, *, place: Place, now: datetime | None = None) -> ActOutcome:
    """Run a request through the shared action function; return the requester's view of the item."""
    now = now or utcnow()
    with session_scope(service.engine) as session:
        result = perform(session, config=service.config, request=request, now=now, platform=service.platform_call)
    viewer = staff_of(service.config, request.actor)
    return ActOutcome(result, card_for(service, request.item_id, viewer=viewer, place=place, now=now))


def check(service: Runtime, request: ActionRequest) -> ActionResult | None:
    """The (audited) refusal for a request before a form is opened for it, or None when allowed."""
    with session_scope(service.engine) as session:
        return authorise(session, config=service.config, request=request)


def staff_of(config: Config, actor: str) -> StaffConfig | None:
    return config.staff_by_id(actor)


def card_for(
    service: Runtime, item_id: int | None, *, viewer: StaffConfig | None, place: Place, now: datetime | None = None
) -> Card | None:
    """`viewer`'s view of an item in `place` (None: nothing to show them)."""
    if item_id is None:
        return None
    with session_scope(service.engine) as session:
        return view(session, service.config, session.get(Item, item_id), viewer, place, now=now or utcnow())


def command(service: Runtime, *, staff: StaffConfig | None, verb: str, text: str, surface: str = "chat") -> str:
    """Plain-text reply to a chat command from a member of staff (or a stranger)."""
    if staff is None:
        return STRANGER
    if verb == "ask":
        return ask_policy(service, staff, text)
    if verb == "queue":
        return queue_text(service, staff, place=Place.QUEUE)
    if verb == "status":
        return status_text(service, staff)
    if verb in REQUESTS:
        return chat_request(service, staff=staff, verb=verb, text=text, surface=surface)
    return HELP


def ask_policy(service: Runtime, staff: StaffConfig, question: str) -> str:
    text, choices = policy_answer(service, staff, question)
    if choices:
        text += "\n" + "\n".join(f"• {c['audience']}: see {c['clause']}" for c in choices)
    return text


def policy_answer(service: Runtime, staff: StaffConfig | None, question: str) -> tuple[str, list[dict[str, str]]]:
    """The answer text and, where it depends on who it is about, the follow-up choices."""
    if staff is None:
        return STRANGER, []
    if not question.strip():
        return "Ask a question, e.g. `ask Can I accept a friend request from a former pupil?`", []
    school = service.config.school_of(staff)
    if not school.policy:
        return f"{school.name} has no social media policy configured yet; ask your Hall Monitor admin to add it.", []
    heads = [s.name for s in service.config.staff_with_role(school.id, Role.HEAD)]
    heads += [s.name for s in service.config.staff_with_role(school.id, Role.SLT)]
    try:
        answer = ask(
            service.config.resolve_path(school.policy),
            question,
            ask_instead=heads[0] if heads else "your headteacher or line manager",
        )
    except PolicyError as exc:
        return f"Sorry, I couldn't read your school's policy: {exc}", []
    return answer.answer, answer.choices


def queue_cards(
    service: Runtime, staff: StaffConfig | None, *, place: Place, limit: int = 20, now: datetime | None = None
) -> list[Card]:
    """The open items of the viewer's own school, escalations first, each as the viewer may see it."""
    if staff is None:
        return []
    school = service.config.school_of(staff)
    now = now or utcnow()
    with session_scope(service.engine) as session:
        items = open_items(session, school_id=school.id, limit=limit)
        cards = [view(session, service.config, i, staff, place, now=now) for i in items]
    return [c for c in cards if c is not None]


def queue_line(card: Card) -> str:
    """One queue row, drawn from a view (never from the item)."""
    escalated = "escalated" if "escalated to" in (card.status or "") else None
    clock = " · ".join(x for x in (escalated, card.countdown) if x) or "-"
    words = card.text[:80] if card.text else "(details withheld: safeguarding)" if card.notice else ""
    return f"#{card.item_id} {card.category or '?'} · {clock} · {words}"


def queue_text(service: Runtime, staff: StaffConfig | None, *, place: Place, now: datetime | None = None) -> str:
    if staff is None:
        return STRANGER
    rows = [queue_line(c) for c in queue_cards(service, staff, place=place, now=now)]
    return "\n".join(rows) if rows else "Nothing open. Well done."


def status_text(service: Runtime, staff: StaffConfig | None = None) -> str:
    """Monitor health; for a member of staff, only their own school's sources."""
    health = service.health()
    sources = health["sources"]
    if staff is not None:
        school = service.config.school_of(staff).id
        mine = {a.id for a in service.config.accounts if service.config.school_of(a).id == school}
        sources = [s for s in sources if s["account"] in mine]
    failing = [s for s in sources if not s["healthy"]]
    lines = [
        f"Monitor status: {'degraded' if failing or health.get('outbox_dead') else 'ok'} · "
        f"{len(failing)} failing source(s) · "
        f"{health['outbox_pending']} notification(s) waiting · {health.get('outbox_dead', 0)} undeliverable"
    ]
    lines += [f"• {s['source']}: {s['last_error']}" for s in failing]
    return "\n".join(lines)


def home(service: Runtime, *, staff: StaffConfig | None) -> list[tuple[str, list[str]]]:
    """App Home as (title, plain lines) sections; the surface escapes and draws them."""
    if staff is None:
        return [("Hall Monitor", ["Ask your admin to add your chat id to the staff list."])]
    school = service.config.school_of(staff).id
    with session_scope(service.engine) as session:
        waiting = sum(
            1 for e in open_escalations(session) if (item := session.get(Item, e.item_id)) and item.school_id == school
        )
    rows = [queue_line(c) for c in queue_cards(service, staff, place=Place.HOME)]
    return [
        ("Open items (escalations first)", rows or ["Nothing open. Well done."]),
        ("Escalations awaiting acknowledgement", [str(waiting)]),
        ("Monitor health", status_text(service, staff).splitlines()),
    ]
