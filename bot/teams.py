"""Microsoft Teams: Adaptive Card rendering of the platform-neutral cards, the
proactive chat surface, and the bot (botbuilder 4.17, CloudAdapter) behind
POST /api/messages.

Every card action goes through `handlers.actions.perform` via `bot.chat`.
botbuilder is kept behind `TeamsSurface` and `handle_request` so it can be
swapped for the Microsoft 365 Agents SDK without touching the core.

Config from the environment: MICROSOFT_APP_ID, MICROSOFT_APP_PASSWORD,
MICROSOFT_APP_TENANT_ID and MICROSOFT_APP_TYPE (SingleTenant by default). An
empty MICROSOFT_APP_ID disables authentication: for local testing only.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from typing import Any

from botbuilder.core import ActivityHandler, CardFactory, InvokeResponse, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes, Attachment, ChannelAccount, ConversationReference
from sqlalchemy import Engine, select
from sqlmodel import col

from bot import chat
from core.chat import Attachment as FileAttachment
from core.chat import Card, Notification
from core.config import Config, StaffConfig
from core.domain import Category
from core.protocols import Runtime
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


def adaptive_card(card: Card, *, done: str | None = None) -> dict[str, Any]:
    """An Adaptive Card (1.4, Universal Actions) for a card. Never images: links only."""
    body: list[dict[str, Any]] = [{"type": "TextBlock", "text": card.headline, "weight": "Bolder", "wrap": True}]
    if card.text:
        body.append({"type": "TextBlock", "text": card.text[:2500], "wrap": True})
    facts = [
        {"title": t, "value": v}
        for t, v in (
            ("From", card.author),
            ("Where", " · ".join(x for x in (card.platform, card.account) if x)),
            ("Category", card.category),
            ("Reply by", card.reply_by and f"{card.reply_by} ({card.countdown})"),
            ("Why", "; ".join(card.reasons) if card.reasons else None),
            ("Status", done or card.status),
        )
        if v
    ]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    actions: list[dict[str, Any]] = []
    if card.url:
        actions.append(
            {"type": "Action.OpenUrl", "title": f"Open on {card.platform or 'the platform'}", "url": card.url}
        )
    if card.item_id is not None:
        for button in card.buttons:
            if button.action == "recategorise":
                body.append(
                    {
                        "type": "Input.ChoiceSet",
                        "id": "category",
                        "placeholder": "Re-categorise as...",
                        "choices": [{"title": c, "value": c} for c in Category],
                    }
                )
            data = {"item": card.item_id, "verb": VERB_PREFIX + button.action}
            actions.append(
                {
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
    )  # Universal Actions: each viewer's Teams fetches the latest state of the card
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
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
    return CardFactory.adaptive_card(
        {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": note, "wrap": True}]}
    )


def answer_card(text: str, choices: list[dict[str, str]]) -> dict[str, Any]:
    actions = [
        {
            "type": "Action.Execute",
            "title": c["audience"],
            "verb": "hm:ask",
            "data": {"question": c["question"]},
            "fallback": {
                "type": "Action.Submit",
                "title": c["audience"],
                "data": {"verb": "hm:ask", "question": c["question"]},
            },
        }
        for c in choices
    ]
    return {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": text, "wrap": True}],
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


class HallMonitorTeamsBot(ActivityHandler):
    def __init__(self, service: chat.ChatRuntime) -> None:
        self.service = service

    async def on_turn(self, turn_context: TurnContext) -> None:
        await asyncio.to_thread(remember, self.service, turn_context.activity)
        await super().on_turn(turn_context)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        staff = staff_for(self.service.config, activity.from_property.aad_object_id if activity.from_property else None)
        value = activity.value or {}
        if isinstance(value, dict) and str(value.get("verb", "")).startswith(VERB_PREFIX):  # Action.Submit fallback
            reply = await self._action(staff, activity.from_property, value)
            await turn_context.send_activity(MessageFactory.attachment(CardFactory.adaptive_card(reply)))
            return
        question = (TurnContext.remove_recipient_mention(activity) or activity.text or "").strip()
        verb, _, rest = question.partition(" ")
        if verb.lower() in ("queue", "status", "help", "web", "export", "hold", "release"):
            text = await asyncio.to_thread(
                chat.command, self.service, staff=staff, verb=verb.lower(), text=rest, surface="teams"
            )
            await turn_context.send_activity(text)
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
        staff = staff_for(self.service.config, activity.from_property.aad_object_id if activity.from_property else None)
        card = await self._action(
            staff, activity.from_property, {**(action.get("data") or {}), "verb": action.get("verb", "")}
        )
        return InvokeResponse(status=200, body={"statusCode": 200, "type": CARD, "value": card})

    async def _action(
        self, staff: StaffConfig | None, person: ChannelAccount | None, data: dict[str, Any]
    ) -> dict[str, Any]:
        verb = str(data.get("verb", "")).removeprefix(VERB_PREFIX)
        if verb == "refresh":  # a view, not an action: no role check, nothing audited
            current = await asyncio.to_thread(chat.card_for, self.service, int(data.get("item", 0)))
            return adaptive_card(current) if current else answer_card("This item no longer exists.", [])
        if verb == "ask":
            text, choices = await asyncio.to_thread(chat.policy_answer, self.service, staff, str(data.get("question")))
            return answer_card(text, choices)
        actor = staff.id if staff else f"teams:{person.aad_object_id if person else 'unknown'}"
        argument = data.get("category") if verb == "recategorise" else data.get("text")
        outcome = await asyncio.to_thread(
            chat.act,
            self.service,
            actor=actor,
            action=verb,
            item_id=int(data.get("item", 0)),
            surface="teams",
            argument=argument,
        )
        if outcome.ok and outcome.card is not None:
            return adaptive_card(outcome.card, done=f"{outcome.message}")
        current = await asyncio.to_thread(chat.card_for, self.service, int(data.get("item", 0)))
        refusal = f"Not done: {outcome.message}"
        return adaptive_card(current, done=refusal) if current else answer_card(refusal, [])


class TeamsSurface:
    """Proactive delivery: channel cards to the account's Teams channel, escalations and
    reminders to people's own chats (DSL pings only ever there)."""

    name = "teams"

    def __init__(self, service_engine: Engine, adapter: CloudAdapter, app_id: str) -> None:
        self.engine, self.adapter, self.app_id = service_engine, adapter, app_id

    def _reference(self, kind: str, key: str) -> ConversationReference | None:
        with session_scope(self.engine) as session:
            row = session.scalars(
                select(TeamsConversation).where(col(TeamsConversation.kind) == kind, col(TeamsConversation.key) == key)
            ).first()
            return ConversationReference().deserialize(row.reference) if row else None

    async def deliver(self, note: Notification) -> None:
        attachments = [CardFactory.adaptive_card(adaptive_card(note.card))] + [
            inline_attachment(f) for f in note.attachments if not note.channel or note.direct_only
        ]
        targets: list[tuple[str, str]] = []
        if note.channel and not note.direct_only and note.audience == "moderators":
            targets.append(("channel", note.channel))
        else:
            targets += [("personal", p.teams_user) for p in note.recipients if p.teams_user]
        if not targets:
            raise RuntimeError(f"no Teams user configured for the {note.audience} audience; set teams_user")
        for kind, key in targets:
            reference = await asyncio.to_thread(self._reference, kind, key)
            if reference is None:
                raise RuntimeError(f"no Teams conversation with {kind} {key} yet: install the app there first")

            async def send(context: TurnContext) -> None:
                context.activity.id = None  # a new message in the conversation, not a reply to the continuation
                await context.send_activity(MessageFactory.list(attachments))

            await self.adapter.continue_conversation(reference, send, self.app_id)


def make_adapter() -> tuple[CloudAdapter, TeamsSettings]:
    settings = TeamsSettings()
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
