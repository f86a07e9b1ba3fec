"""Slack: Block Kit rendering of the platform-neutral cards, the chat surface
that delivers them, and the bolt app (HTTP mode) mounted at /slack/events.

Every button goes through `handlers.actions.perform` (role check, evidence,
audit); Slack only renders and relays. Config comes from the environment:
SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and, for tests or proxies, SLACK_API_URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections import OrderedDict
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot import chat
from core.chat import Card, Notification
from core.config import Config, StaffConfig
from core.domain import Category
from core.errors import ConfigError

log = logging.getLogger(__name__)
ACTION_PREFIX = "hm:"
CATEGORY_EMOJI = {
    "safeguarding": ":rotating_light:",
    "abuse": ":no_entry:",
    "complaint": ":warning:",
    "question": ":question:",
    "media": ":newspaper:",
    "praise": ":tada:",
    "spam": ":wastebasket:",
    "other": ":speech_balloon:",
}


def slack_settings() -> tuple[str, str, str | None]:
    """Token, signing secret and optional API URL from the environment, or a ConfigError saying what to set."""
    token, secret = os.environ.get("SLACK_BOT_TOKEN", ""), os.environ.get("SLACK_SIGNING_SECRET", "")
    missing = [name for name, value in (("SLACK_BOT_TOKEN", token), ("SLACK_SIGNING_SECRET", secret)) if not value]
    if missing:
        raise ConfigError(
            [
                f'chat.surface = "slack" needs the environment variable(s) {", ".join(missing)}; '
                "see README: Setting up Slack"
            ]
        )
    return token, secret, os.environ.get("SLACK_API_URL") or None


def web_client(token: str, api_url: str | None) -> AsyncWebClient:
    kwargs: dict[str, Any] = {"token": token, "retry_handlers": [AsyncRateLimitErrorRetryHandler(max_retry_count=2)]}
    if api_url:
        kwargs["base_url"] = api_url if api_url.endswith("/") else api_url + "/"
    return AsyncWebClient(**kwargs)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def blocks_for(card: Card, *, done: str | None = None) -> list[dict[str, Any]]:
    """Block Kit for a card. Images are never embedded: links only."""
    emoji = CATEGORY_EMOJI.get(card.category or "", ":speech_balloon:")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{emoji} *{_escape(card.headline)}*"}},
    ]
    if card.text:
        quoted = "\n".join(f"> {line}" for line in _escape(card.text[:2500]).splitlines() or [""])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": quoted}})
    meta = [
        x
        for x in (
            card.author and f"by {_escape(card.author)}",
            card.platform,
            card.account,
            card.url and f"<{card.url}|open on {card.platform or 'the platform'}>",
        )
        if x
    ]
    if meta:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(meta)}]})
    fields = []
    if card.category:
        fields.append({"type": "mrkdwn", "text": f"*Category*\n{card.category}"})
    if card.reply_by:
        fields.append({"type": "mrkdwn", "text": f"*Reply by*\n{card.reply_by} ({card.countdown})"})
    if fields:
        blocks.append({"type": "section", "fields": fields})
    if card.reasons:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "Why: " + "; ".join(card.reasons)}]})
    status = done or (card.status and f"Status: {card.status}")
    if status:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(status)}]})
    if card.item_id is not None and card.buttons:
        buttons = [_element(b.action, b.label, b.danger, card.item_id) for b in card.buttons]
        for start in range(0, len(buttons), 5):
            blocks.append(
                {"type": "actions", "block_id": f"hm-actions-{start}", "elements": buttons[start : start + 5]}
            )
    return blocks


def answer_blocks(text: str, choices: list[dict[str, str]]) -> list[dict[str, Any]]:
    """A policy answer, with a button per follow-up choice where the answer depends on who it is about."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": _escape(text[:2900])}}]
    if choices:
        buttons = [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": c["audience"][:75]},
                "action_id": f"hm_ask_{i}",
                "value": c["question"][:2000],
            }
            for i, c in enumerate(choices)
        ]
        blocks.append({"type": "actions", "block_id": "hm-ask", "elements": buttons[:5]})
    return blocks


def _element(action: str, label: str, danger: bool, item_id: int) -> dict[str, Any]:
    """A button, or for re-categorising a menu of categories (the value carries the item id)."""
    if action == "recategorise":
        return {
            "type": "static_select",
            "action_id": ACTION_PREFIX + action,
            "placeholder": {"type": "plain_text", "text": label},
            "options": [{"text": {"type": "plain_text", "text": c}, "value": f"{item_id}:{c}"} for c in Category],
        }
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": ACTION_PREFIX + action,
        "value": str(item_id),
        **({"style": "danger"} if danger else {}),
    }


def _modal(action: str, metadata: str) -> dict[str, Any]:
    """Reply and Delete ask for words first; Delete also offers to tell the audience why."""
    if action == "reply":
        title, label, block = "Reply", "Your reply (posted publicly)", "reply_text"
    else:
        title, label, block = "Delete", "Why is it being deleted?", "reason"
    blocks: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": block,
            "label": {"type": "plain_text", "text": label},
            "element": {"type": "plain_text_input", "action_id": "value", "multiline": True},
        }
    ]
    if action == "delete":
        blocks.append(
            {
                "type": "input",
                "block_id": "tell",
                "optional": True,
                "label": {"type": "plain_text", "text": "Tell the audience"},
                "element": {
                    "type": "checkboxes",
                    "action_id": "value",
                    "options": [
                        {
                            "text": {"type": "plain_text", "text": "Post the reason as a reply before deleting"},
                            "value": "yes",
                        }
                    ],
                },
            }
        )
    return {
        "type": "modal",
        "callback_id": f"hm_{action}",
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": title},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


class SlackSurface:
    """Delivers notifications. Moderator cards go to the account's channel; escalations
    go to people directly, and DSL pings only ever by direct message."""

    name = "slack"

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    MARK = "hallmonitor_delivery"  # message metadata: which outbox row a message delivered

    async def _targets(self, note: Notification) -> list[str]:
        if note.channel and not note.direct_only and note.audience == "moderators":
            return [note.channel]
        people = [p for p in note.recipients if p.slack_user]
        if not people:
            raise RuntimeError(
                f"no Slack user configured for the {note.audience} audience; set slack_user in [[staff]]"
            )
        return [(await self.client.conversations_open(users=p.slack_user))["channel"]["id"] for p in people]

    async def _post(self, channel: str, note: Notification) -> None:
        metadata = {"event_type": self.MARK, "event_payload": {"outbox": note.outbox_id}}
        await self.client.chat_postMessage(
            channel=channel, text=note.card.headline, blocks=blocks_for(note.card), metadata=metadata
        )
        if channel == note.channel:
            return
        for file in note.attachments:  # charts and records: direct messages only
            await self.client.files_upload_v2(
                channel=channel, content=file.content, filename=file.filename, title=file.title or file.filename
            )

    async def _posted(self, channel: str, outbox_id: int) -> bool:
        """Is a message for this outbox row already in the conversation (its recent history)?"""
        history = await self.client.conversations_history(channel=channel, limit=100, include_all_metadata=True)
        for message in history.get("messages") or []:
            meta = message.get("metadata") or {}
            if meta.get("event_type") == self.MARK and (meta.get("event_payload") or {}).get("outbox") == outbox_id:
                return True
        return False

    async def deliver(self, note: Notification) -> None:
        for channel in await self._targets(note):
            await self._post(channel, note)

    async def deliver_resumed(self, note: Notification) -> None:
        """Deliver after an interrupted attempt: each conversation that already has the message
        (found by its metadata) is skipped, so a crash mid-send posts nothing twice."""
        for channel in await self._targets(note):
            if await self._posted(channel, note.outbox_id):
                log.info("delivery_already_posted outbox=%s channel=%s", note.outbox_id, channel)
                continue
            await self._post(channel, note)


class _Seen:
    """Event ids already handled (Slack retries deliveries it thinks were lost)."""

    def __init__(self, size: int = 2048) -> None:
        self.ids: OrderedDict[str, None] = OrderedDict()
        self.size = size

    def first_time(self, event_id: str | None) -> bool:
        if not event_id:
            return True
        if event_id in self.ids:
            return False
        self.ids[event_id] = None
        if len(self.ids) > self.size:
            self.ids.popitem(last=False)
        return True


def staff_for(config: Config, slack_user: str) -> StaffConfig | None:
    return next((s for s in config.staff if s.slack_user == slack_user), None)


def build_slack_app(service: chat.ChatRuntime, *, token: str, signing_secret: str, client: AsyncWebClient) -> AsyncApp:
    """The bolt app. `service` is the running Service (config, engine)."""
    app = AsyncApp(token=token, signing_secret=signing_secret, client=client, process_before_response=False)
    seen = _Seen()

    @app.action(re.compile(f"^{ACTION_PREFIX}"))
    async def on_button(ack: Any, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user = body["user"]["id"]
        name = action["action_id"].removeprefix(ACTION_PREFIX)
        channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
        ts = (body.get("container") or {}).get("message_ts")
        argument = None
        if action.get("type") == "static_select":
            item_text, _, argument = action["selected_option"]["value"].partition(":")
        else:
            item_text = action["value"]
        if name in ("reply", "delete"):  # ask for the words first; the submission does the action
            metadata = json.dumps({"item": int(item_text), "channel": channel, "ts": ts})
            await client.views_open(trigger_id=body["trigger_id"], view=_modal(name, metadata))
            return
        await _act(client, user=user, name=name, item_id=int(item_text), argument=argument, channel=channel, ts=ts)

    async def _act(
        client: AsyncWebClient,
        *,
        user: str,
        name: str,
        item_id: int,
        argument: str | None,
        channel: str | None,
        ts: str | None,
    ) -> None:
        staff = staff_for(service.config, user)
        outcome = await asyncio.to_thread(
            chat.act,
            service,
            actor=staff.id if staff else f"slack:{user}",
            action=name,
            item_id=item_id,
            surface="slack",
            argument=argument,
        )
        if not outcome.ok:
            if channel:
                await client.chat_postEphemeral(channel=channel, user=user, text=outcome.message)
            else:
                await client.chat_postMessage(channel=user, text=outcome.message)
            return
        if channel and ts and outcome.card is not None:
            await client.chat_update(
                channel=channel,
                ts=ts,
                text=outcome.card.headline,
                blocks=blocks_for(outcome.card, done=f"{outcome.message} (<@{user}>)"),
            )

    @app.view(re.compile(r"^hm_(reply|delete)$"))
    async def on_modal(ack: Any, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        values = view["state"]["values"]
        name = view["callback_id"].removeprefix("hm_")
        if name == "reply":
            argument = values["reply_text"]["value"]["value"]
        else:
            tell = bool((values.get("tell", {}).get("value") or {}).get("selected_options"))
            argument = json.dumps({"reason": values["reason"]["value"]["value"], "tell_audience": tell})
        await _act(
            client,
            user=body["user"]["id"],
            name=name,
            item_id=int(meta["item"]),
            argument=argument,
            channel=meta.get("channel"),
            ts=meta.get("ts"),
        )

    @app.command("/hallmonitor")
    async def on_command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        verb, _, rest = (command.get("text") or "").strip().partition(" ")
        staff = staff_for(service.config, command["user_id"])
        if verb.lower() == "ask" and staff is not None:
            text, choices = await asyncio.to_thread(chat.policy_answer, service, staff, rest)
            await respond(text=text, blocks=answer_blocks(text, choices), response_type="ephemeral")
            return
        reply = await asyncio.to_thread(
            chat.command, service, staff=staff, verb=verb.lower(), text=rest, surface="slack"
        )
        await respond(text=reply, response_type="ephemeral")

    @app.action(re.compile(r"^hm_ask_\d+$"))
    async def on_choice(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        await ack()
        staff = staff_for(service.config, body["user"]["id"])
        text, choices = await asyncio.to_thread(chat.policy_answer, service, staff, action["value"])
        await respond(text=text, blocks=answer_blocks(text, choices), response_type="ephemeral", replace_original=False)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any], say: Any) -> None:
        if not seen.first_time(body.get("event_id")):
            return
        question = re.sub(r"<@[A-Z0-9]+>", "", event.get("text", "")).strip()
        staff = staff_for(service.config, event.get("user", ""))
        answer = await asyncio.to_thread(chat.command, service, staff=staff, verb="ask", text=question)
        await say(text=answer, thread_ts=event.get("ts"))

    @app.event("message")
    async def on_message(event: dict[str, Any], body: dict[str, Any], say: Any) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return
        if not seen.first_time(body.get("event_id")):
            return
        staff = staff_for(service.config, event.get("user", ""))
        answer = await asyncio.to_thread(chat.command, service, staff=staff, verb="ask", text=event.get("text", ""))
        await say(text=answer)

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any], client: AsyncWebClient) -> None:
        staff = staff_for(service.config, event["user"])
        text = await asyncio.to_thread(chat.home, service, staff=staff)
        await client.views_publish(
            user_id=event["user"],
            view={"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]},
        )

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.exception("slack_listener_failed error=%r", error)

    return app
