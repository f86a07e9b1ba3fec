"""The chat core every surface shares: act on an item, answer a command.

Surfaces (console, Slack, Teams) only translate their own payloads into these
calls and render what comes back; no surface decides who may do what.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.cards import item_card, queue_line
from core.chat import Card
from core.config import Role, StaffConfig
from core.protocols import Runtime
from handlers.actions import perform
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
    "`queue` (open items, soonest reply-by first), `status` (monitor health), "
    "`web` (a sign-in link to the web view, by direct message), `export N` (an item's record as a PDF), "
    "`hold N reason` / `release N` (legal hold)."
)


@dataclass(slots=True)
class ActOutcome:
    ok: bool
    message: str
    card: Card | None = None


class ChatRuntime(Runtime, Protocol):
    """The service as the chat core sees it: it also runs platform actions on its shared client."""

    def platform_call(self, connector: Connector, request: ActRequest) -> str: ...


def act(
    service: ChatRuntime, *, actor: str, action: str, item_id: int, surface: str, argument: str | None = None
) -> ActOutcome:
    """Run an action through the shared action function and return the refreshed card."""
    now = utcnow()
    with session_scope(service.engine) as session:
        result = perform(
            session,
            config=service.config,
            actor=actor,
            action=action,
            item_id=item_id,
            surface=surface,
            now=now,
            argument=argument,
            platform=service.platform_call,
        )
    card = card_for(service, item_id) if result.ok else None
    return ActOutcome(result.ok, result.message, card)


def card_for(service: Runtime, item_id: int) -> Card | None:
    with session_scope(service.engine) as session:
        item = session.get(Item, item_id)
        if item is None:
            return None
        return item_card(
            session, config=service.config, item=item, now=utcnow(), withhold_text=item.category == "safeguarding"
        )


def command(service: Runtime, *, staff: StaffConfig | None, verb: str, text: str, surface: str = "chat") -> str:
    """Plain-text reply to a chat command from a member of staff (or a stranger)."""
    if staff is None:
        return "I don't know you yet: ask your school's Hall Monitor admin to add your chat id to the staff list."
    if verb == "ask":
        return ask_policy(service, staff, text)
    if verb == "queue":
        return queue_text(service, staff)
    if verb == "status":
        return status_text(service)
    if verb in ("web", "export", "hold", "release"):
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
        return command(service, staff=None, verb="ask", text=question), []
    if not question.strip():
        return "Ask a question, e.g. `ask Can I accept a friend request from a former pupil?`", []
    school = service.config.school_of(staff)
    if not school.policy:
        return f"{school.name} has no social media policy configured yet; ask your Hall Monitor admin to add it.", []
    heads = [s.name for s in service.config.staff_with_role(school.id, Role.SLT)]
    try:
        answer = ask(
            service.config.resolve_path(school.policy),
            question,
            ask_instead=heads[0] if heads else "your headteacher or line manager",
        )
    except PolicyError as exc:
        return f"Sorry, I couldn't read your school's policy: {exc}", []
    return answer.answer, answer.choices


def queue_text(service: Runtime, staff: StaffConfig) -> str:
    school = service.config.school_of(staff)
    now = utcnow()
    with session_scope(service.engine) as session:
        rows = [queue_line(i, now) for i in open_items(session, school_id=school.id, limit=20)]
    return "\n".join(rows) if rows else "Nothing open. Well done."


def status_text(service: Runtime) -> str:
    health = service.health()
    lines = [
        f"Monitor status: {health['status']} · {health['failing']} failing source(s) · "
        f"{health['outbox_pending']} notification(s) waiting"
    ]
    if health.get("outbox_dead"):
        lines.append(f"• {health['outbox_dead']} notification(s) could not be delivered; see /healthz and the logs")
    lines += [f"• {s['source']}: {s['last_error']}" for s in health["sources"] if not s["healthy"]]
    return "\n".join(lines)


def home(service: Runtime, *, staff: StaffConfig | None) -> str:
    if staff is None:
        return "Hall Monitor: ask your admin to add your Slack id to the staff list."
    with session_scope(service.engine) as session:
        waiting = len(open_escalations(session))
    return "\n\n".join(
        [
            "*Open items* (soonest reply-by first)\n" + queue_text(service, staff),
            f"*Escalations awaiting acknowledgement*: {waiting}",
            "*Monitor health*\n" + status_text(service),
        ]
    )
