"""Microsoft Teams: Adaptive Card rendering of the platform-neutral cards, the
proactive chat surface, and the bot (botbuilder 4.17, CloudAdapter) behind
POST /api/messages.

Every card action goes through `handlers.actions.perform` via `bot.chat`, and every card
shows the viewer's own view (`bot.view.view`), refreshes included.
botbuilder is kept behind `TeamsSurface` and `handle_request` so it can be
swapped for the Microsoft 365 Agents SDK without touching the core.

Config from the environment: MICROSOFT_APP_ID, MICROSOFT_APP_PASSWORD,
MICROSOFT_APP_TENANT_ID and MICROSOFT_APP_TYPE (SingleTenant by default). An
empty MICROSOFT_APP_ID would disable authentication, so `make_adapter` refuses it unless
the local-testing opt-in is given.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from typing import Any

from botbuilder.core import ActivityHandler, CardFactory, InvokeResponse, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes, Attachment, ConversationReference
from sqlalchemy import Engine, select
from sqlmodel import col

from bot import chat
from bot.safe import clean
from core.chat import Attachment as FileAttachment
from core.chat import Button, Card, Notification, Place, Posted
from core.config import Config, StaffConfig
from core.domain import Category
from core.errors import ConfigError, Unreachable
from core.protocols import Runtime
from handlers.actions import ActionRequest
from storage.db import session_scope
from storage.models import TeamsConversation
from storage.queries import insert_ignore
from storage.types import utcnow

log = logging.getLogger(__name__)
VERB_PREFIX = "hm:"
CARD = "application/vnd.microsoft.card.adaptive"


class TeamsSettings:
    """The attributes ConfigurationBotFrameworkAuthentication reads, from the environment."""

    def __init__(self) -> None:
        self.APP_ID = os.environ.get("MICROSOFT_APP_ID", "")
        self.APP_PASSWORD = os.environ.get("MICROSOFT_APP_PASSWORD", "")
        # SingleTenant by default; with no app id (local testing, no auth) botbuilder needs MultiTenant.
        self.APP_TYPE = os.environ.get("MICROSOFT_APP_TYPE") or ("SingleTenant" if self.APP_ID else "MultiTenant")
        self.APP_TENANTID = os.environ.get("MICROSOFT_APP_TENANT_ID", "")


def run(text: str | None, **style: Any) -> dict[str, Any]:
    """User text as a TextRun: Adaptive Cards never read Markdown in a TextRun, so
    `[Reset password](https://evil)` stays text. Control and bidi characters are neutralised."""
    return {"type": "TextRun", "text": clean(text) or "", **style}


def rich(*runs: dict[str, Any]) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(runs)}


def _form(button: Button, item_id: int) -> dict[str, Any] | None:
    """Reply, Delete and Re-categorise ask for their words in Input.* fields first (in a
    ShowCard), then post them with Action.Execute."""
    verb = VERB_PREFIX + button.action
    if button.action == "reply":
        inputs: list[dict[str, Any]] = [
            {
                "type": "Input.Text",
                "id": "reply_text",
                "label": "Your reply (posted publicly)",
                "isMultiline": True,
                "isRequired": True,
                "errorMessage": "Say what to reply",
                "maxLength": 2000,
            }
        ]
    elif button.action == "delete":
        inputs = [
            {
                "type": "Input.Text",
                "id": "reason",
                "label": "Why is it being deleted?",
                "isMultiline": True,
                "maxLength": 500,
            },
            {
                "type": "Input.Toggle",
                "id": "tell_audience",
                "title": "Post the reason as a reply before deleting",
                "valueOn": "true",
                "valueOff": "false",
                "value": "false",
            },
        ]
    elif button.action == "recategorise":
        inputs = [
            {
                "type": "Input.ChoiceSet",
                "id": "category",
                "label": "Re-categorise as",
                "choices": [{"title": c.value, "value": c.value} for c in Category],
                "isRequired": True,
            }
        ]
    else:
        return None
    data = {"item": item_id, "verb": verb}
    submit = {
        "type": "Action.Execute",
        "title": button.label,
        "verb": verb,
        "data": data,
        **({"style": "destructive"} if button.danger else {}),
        "fallback": {"type": "Action.Submit", "title": button.label, "data": data},
    }
    return {
        "type": "Action.ShowCard",
        "title": button.label,
        "card": {"type": "AdaptiveCard", "body": inputs, "actions": [submit]},
    }


def adaptive_card(card: Card) -> dict[str, Any]:
    """An Adaptive Card (1.5, Universal Actions) for a view. Never images: links only (http/https).
    Every string is a TextRun (never read as Markdown)."""
    body: list[dict[str, Any]] = [rich(run(card.headline, weight="Bolder", size="Medium"))]
    if card.text:
        body.append(rich(run(card.text[:2500])))
    if card.notice:
        body.append(rich(run(card.notice, italic=True)))
    facts = [
        (t, v)
        for t, v in (
            ("From", card.author),
            ("Where", " · ".join(x for x in (card.platform, card.account) if x)),
            ("Link (not opened)", card.url_text),
            ("Category", card.category),
            ("Reply by", card.reply_by and f"{card.reply_by} ({card.countdown})"),
            ("Why", "; ".join(card.reasons) if card.reasons else None),
            ("Status", " · ".join(x for x in (card.done, card.status) if x) or None),
        )
        if v
    ]
    body += [rich(run(f"{title}: ", weight="Bolder"), run(value)) for title, value in facts]
    actions: list[dict[str, Any]] = []
    if card.url:
        actions.append(
            {"type": "Action.OpenUrl", "title": f"Open on {card.platform or 'the platform'}", "url": card.url}
        )
    if card.item_id is not None:
        for button in card.buttons:
            form = _form(button, card.item_id)
            data = {"item": card.item_id, "verb": VERB_PREFIX + button.action}
            actions.append(
                form
                or {
                    "type": "Action.Execute",
                    "title": button.label,
                    "verb": VERB_PREFIX + button.action,
                    "data": data,
                    **({"style": "destructive"} if button.danger else {}),
                    "fallback": {"type": "Action.Submit", "title": button.label, "data": data},
                }
            )
    refresh = (
        {"refresh": {"action": {"type": "Action.Execute", "verb": "hm:refresh", "data": {"item": card.item_id}}}}
        if card.item_id is not None
        else {}
    )  # Universal Actions: each viewer's Teams fetches their own view of the card
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": body,
        "actions": actions,
        **refresh,
    }


def inline_attachment(file: FileAttachment) -> Attachment:
    """A file inline in a personal chat: images as base64 data URIs, which Teams shows in the message.
    Teams accepts only images inline; anything else becomes a card pointing to the web view."""
    if file.mime.startswith("image/"):
        data = base64.b64encode(file.content).decode()
        return Attachment(content_type=file.mime, content_url=f"data:{file.mime};base64,{data}", name=file.filename)
    note = f"{file.title or file.filename}: Teams cannot take this file in chat; open it from the web view (/web)."
    return CardFactory.adaptive_card({"type": "AdaptiveCard", "version": "1.5", "body": [rich(run(note))]})


def answer_card(text: str, choices: list[dict[str, str]]) -> dict[str, Any]:
    actions = [
        {
            "type": "Action.Execute",
            "title": clean(c["audience"]),
            "verb": "hm:ask",
            "data": {"question": c["question"]},
            "fallback": {
                "type": "Action.Submit",
                "title": clean(c["audience"]),
                "data": {"verb": "hm:ask", "question": c["question"]},
            },
        }
        for c in choices
    ]
    return {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [rich(run(text))],
        "actions": actions,
    }


def staff_for(config: Config, aad_object_id: str | None) -> StaffConfig | None:
    return next((s for s in config.staff if aad_object_id and s.teams_user == aad_object_id), None)


def remember(service: Runtime, activity: Activity) -> None:
    """Store where we can speak later: the channel, and the person's own chat."""
    reference = TurnContext.get_conversation_reference(activity).serialize()
    reference.pop("activityId", None)  # proactive messages start new posts, not replies
    conversation = activity.conversation
    entries = []
    if conversation and conversation.conversation_type == "channel":
        channel = (((activity.channel_data or {}).get("channel") or {}).get("id") or conversation.id).split(";")[0]
        reference["conversation"] = {**reference.get("conversation", {}), "id": channel}  # the channel, not a thread
        entries.append(("channel", channel))
    elif activity.from_property and activity.from_property.aad_object_id:
        entries.append(("personal", activity.from_property.aad_object_id))
    with session_scope(service.engine) as session:
        for kind, key in entries:
            existing = session.scalars(
                select(TeamsConversation).where(col(TeamsConversation.kind) == kind, col(TeamsConversation.key) == key)
            ).first()
            if existing is None:
                insert_ignore(
                    session,
                    TeamsConversation,
                    {"kind": kind, "key": key, "reference": reference, "updated_at": utcnow()},
                )
            else:
                existing.reference, existing.updated_at = reference, utcnow()
                session.add(existing)


NOTHING = "There is nothing here for you to see."


def place_of(activity: Activity) -> Place:
    """A personal chat is the viewer's own place; a channel or group chat is shared."""
    kind = activity.conversation.conversation_type if activity.conversation else None
    return Place.DIRECT if kind == "personal" else Place.CHANNEL


def _item_id(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def request_from(actor: str, verb: str, data: dict[str, Any]) -> ActionRequest:
    """A typed request from an Action.Execute's data (Input.* values are merged into it by Teams)."""

    def text(key: str) -> str | None:
        value = data.get(key)
        return str(value) if value not in (None, "") else None

    return ActionRequest(
        actor=actor,
        action=verb,
        item_id=_item_id(data.get("item")),
        surface="teams",
        text=text("reply_text"),
        reason=text("reason"),
        tell_audience=str(data.get("tell_audience", "")).lower() == "true",
        category=text("category"),
        target=text("target"),
    )


class HallMonitorTeamsBot(ActivityHandler):
    def __init__(self, service: chat.ChatRuntime) -> None:
        self.service = service

    async def on_turn(self, turn_context: TurnContext) -> None:
        await asyncio.to_thread(remember, self.service, turn_context.activity)
        await super().on_turn(turn_context)

    def _staff(self, activity: Activity) -> StaffConfig | None:
        person = activity.from_property
        return staff_for(self.service.config, person.aad_object_id if person else None)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        staff = self._staff(activity)
        value = activity.value or {}
        if isinstance(value, dict) and str(value.get("verb", "")).startswith(VERB_PREFIX):  # Action.Submit fallback
            reply = await self._respond(staff, activity, value)
            if place_of(activity) is Place.DIRECT:  # never into a channel: refusals are for the clicker alone
                await turn_context.send_activity(MessageFactory.attachment(CardFactory.adaptive_card(reply)))
            return
        question = (TurnContext.remove_recipient_mention(activity) or activity.text or "").strip()
        verb, _, rest = question.partition(" ")
        if verb.lower() in ("queue", "status", "help", *chat.REQUESTS):
            place = Place.QUEUE if place_of(activity) is Place.DIRECT else Place.CHANNEL
            if verb.lower() == "queue" and place is Place.CHANNEL:
                text = "Ask for the queue in your own chat with Hall Monitor, not in a channel."
            else:
                text = await asyncio.to_thread(
                    chat.command, self.service, staff=staff, verb=verb.lower(), text=rest, surface="teams"
                )
            await turn_context.send_activity(
                MessageFactory.attachment(CardFactory.adaptive_card(answer_card(text, [])))
            )
            return
        text, choices = await asyncio.to_thread(chat.policy_answer, self.service, staff, question)
        await turn_context.send_activity(
            MessageFactory.attachment(CardFactory.adaptive_card(answer_card(text, choices)))
        )

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        if activity.name != "adaptiveCard/action":
            return await super().on_invoke_activity(turn_context)
        action = (activity.value or {}).get("action") or {}
        data = {**(action.get("data") or {}), "verb": action.get("verb", "")}
        card = await self._respond(self._staff(activity), activity, data)
        return InvokeResponse(status=200, body={"statusCode": 200, "type": CARD, "value": card})

    async def _respond(self, staff: StaffConfig | None, activity: Activity, data: dict[str, Any]) -> dict[str, Any]:
        """The card this person sees after their click: always their own view of the item in this place."""
        verb = str(data.get("verb", "")).removeprefix(VERB_PREFIX)
        place = place_of(activity)
        if verb == "refresh":  # a view, not an action: the viewer's own view, nothing for strangers
            current = await asyncio.to_thread(
                chat.card_for, self.service, _item_id(data.get("item")), viewer=staff, place=place
            )
            return adaptive_card(current) if current else answer_card(NOTHING, [])
        if verb == "ask":
            text, choices = await asyncio.to_thread(chat.policy_answer, self.service, staff, str(data.get("question")))
            return answer_card(text, choices)
        person = activity.from_property
        actor = staff.id if staff else f"teams:{person.aad_object_id if person and person.aad_object_id else 'unknown'}"
        request = request_from(actor, verb, data)
        outcome = await asyncio.to_thread(chat.act, self.service, request, place=place)
        if outcome.ok:
            await self.service.deliver_updates(request.item_id)
        said = outcome.message if outcome.ok else f"Not done: {outcome.message}"
        if outcome.card is None:
            return answer_card(said, [])
        outcome.card.done = said
        return adaptive_card(outcome.card)


class TeamsSurface:
    """Proactive delivery: a channel post, one person's own chat, or an update of a posted copy
    (updateActivity). Says where a new message went so it can be updated."""

    name = "teams"

    def __init__(self, service_engine: Engine, adapter: CloudAdapter, app_id: str) -> None:
        self.engine, self.adapter, self.app_id = service_engine, adapter, app_id

    def _reference(self, kind: str, key: str) -> ConversationReference | None:
        with session_scope(self.engine) as session:
            row = session.scalars(
                select(TeamsConversation).where(col(TeamsConversation.kind) == kind, col(TeamsConversation.key) == key)
            ).first()
            return ConversationReference().deserialize(row.reference) if row else None

    async def deliver(self, note: Notification) -> Posted | None:
        attachment = CardFactory.adaptive_card(adaptive_card(note.card))
        files = [inline_attachment(f) for f in note.attachments] if note.recipient is not None else []
        if note.copy is not None:
            kind, _, key = note.copy.conversation.partition(":")
            await self._run(kind, key, f"the conversation {key}", self._updater(attachment, note.copy.message_id))
            return None
        if note.recipient is None:
            if not note.channel:
                raise Unreachable('no Teams channel for this account; set channel = { teams = "19:..." }')
            kind, key, who = "channel", note.channel, f"Hall Monitor is not installed in Teams channel {note.channel}"
        else:
            if not note.recipient.teams_user:
                raise Unreachable(f"{note.recipient.name} has no teams_user in [[staff]]")
            kind, key = "personal", note.recipient.teams_user
            who = f"{note.recipient.name} has not opened Hall Monitor in Teams"
        sent: list[str] = []

        async def send(context: TurnContext) -> None:
            context.activity.id = None  # a new message in the conversation, not a reply to the continuation
            message = MessageFactory.list([attachment, *files]) if files else MessageFactory.attachment(attachment)
            response = await context.send_activity(message)
            sent.append(str(response.id) if response and response.id else "")

        await self._run(kind, key, who, send)
        return Posted(f"{kind}:{key}", sent[0]) if sent and sent[0] else None

    def _updater(self, attachment: Any, message_id: str) -> Any:
        async def update(context: TurnContext) -> None:
            activity = MessageFactory.attachment(attachment)
            activity.id = message_id
            await context.update_activity(activity)

        return update

    async def _run(self, kind: str, key: str, missing: str, callback: Any) -> None:
        reference = await asyncio.to_thread(self._reference, kind, key)
        if reference is None:  # retried a few times (they may open the app yet), then dead-lettered
            raise Unreachable(missing, attempts=3)
        await self.adapter.continue_conversation(reference, callback, self.app_id)


def make_adapter(*, allow_unauthenticated: bool = False) -> tuple[CloudAdapter, TeamsSettings]:
    """The Bot Framework adapter. Without MICROSOFT_APP_ID it would accept anyone, so that is
    refused unless `allow_unauthenticated` (the documented local-testing opt-in) is given."""
    settings = TeamsSettings()
    if not settings.APP_ID and not allow_unauthenticated:
        raise ConfigError(
            [
                "Teams is enabled but MICROSOFT_APP_ID is not set, so nobody's messages could be verified; "
                "set MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD (README: Setting up Teams), or for local testing "
                "only run `hallmonitor run --teams-local-testing-without-auth` (binds 127.0.0.1)"
            ]
        )
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(settings))

    async def on_error(context: TurnContext, error: Exception) -> None:
        log.error("teams_turn_failed error=%r", error, exc_info=error)
        if context.activity.type == ActivityTypes.message:
            try:
                await context.send_activity("Sorry, something went wrong; it has been logged.")
            except Exception as exc:  # the Teams service itself may be unreachable
                log.warning("teams_apology_not_sent error=%r", exc)

    adapter.on_turn_error = on_error
    return adapter, settings


async def handle_request(
    adapter: CloudAdapter, bot: HallMonitorTeamsBot, body: Any, auth_header: str
) -> tuple[int, Any]:
    """Authenticate first (any failure is 401, never 500), then run the turn and write the invoke
    response ourselves: botbuilder 4.17's CloudAdapter.process answers 500 to invokes with a body."""
    activity = Activity().deserialize(body)
    if not activity.type:
        return 400, {"error": "not a Bot Framework activity"}
    try:
        authenticated = await adapter.bot_framework_authentication.authenticate_request(activity, auth_header)
    except Exception as exc:  # malformed, expired or forged tokens raise many different things
        log.warning("teams_auth_failed error=%r", exc)
        return 401, {"error": "unauthorized"}
    try:
        invoke = await adapter.process_activity(authenticated, activity, bot.on_turn)
    except Exception as exc:  # e.g. the activity's serviceUrl cannot be reached: not the caller's fault
        log.warning("teams_turn_not_completed error=%r", exc)
        return 502, {"error": "could not complete the turn with the Teams service; it has been logged"}
    if invoke is not None:
        return invoke.status, invoke.body
    return 201, None
