"""Slack: Block Kit rendering of the chat core's views and the chat surface that delivers
them (the bolt app that receives clicks and commands is `bot.slack_app`).

Every user-controlled string is escaped for mrkdwn here; what a view holds was decided by
`bot.view.view`. Config comes from the environment: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET
and, for tests or proxies, SLACK_API_URL.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot import slack_history
from bot.safe import clean
from core.chat import Attachment, Card, Found, Notification, Posted
from core.config import Config, StaffConfig
from core.domain import Category
from core.errors import ConfigError, FilesNotSent, Unreachable

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


def mrkdwn(text: str | None) -> str:
    """User text made inert for Slack mrkdwn: `<`, `>` and `&` escaped, so no `<!channel>`,
    `<@U..>` or `<url|label>` survives; control and bidi characters neutralised."""
    return (clean(text) or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str | None, limit: int = 75) -> str:
    """Text for a plain_text element (Slack never parses it); control characters neutralised."""
    return (clean(text) or "")[:limit] or "-"


def _link(card: Card) -> str | None:
    """A link only for a safe http(s) URL (already percent-encoded by the chat core); anything
    else is shown as inert text."""
    label = f"open on {mrkdwn(card.platform) or 'the platform'}"
    if card.url:
        return f"<{mrkdwn(card.url)}|{label}>"
    if card.url_text:
        return f"link (not opened): `{mrkdwn(card.url_text[:200]).replace('`', chr(39))}`"
    return None


def blocks_for(card: Card) -> list[dict[str, Any]]:
    """Block Kit for a view. Images are never embedded: links only. Every string is escaped."""
    emoji = CATEGORY_EMOJI.get(card.category or "", ":speech_balloon:")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{emoji} *{mrkdwn(card.headline)}*"}},
    ]
    if card.text:
        quoted = "\n".join(f"> {line}" for line in mrkdwn(card.text[:2500]).splitlines() or [""])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": quoted}})
    if card.notice:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(card.notice)}]})
    meta = [
        x
        for x in (card.author and f"by {mrkdwn(card.author)}", mrkdwn(card.platform), mrkdwn(card.account), _link(card))
        if x
    ]
    if meta:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(meta)}]})
    fields = []
    if card.category:
        fields.append({"type": "mrkdwn", "text": f"*Category*\n{mrkdwn(card.category)}"})
    if card.reply_by:
        fields.append({"type": "mrkdwn", "text": f"*Reply by*\n{mrkdwn(card.reply_by)} ({mrkdwn(card.countdown)})"})
    if fields:
        blocks.append({"type": "section", "fields": fields})
    if card.reasons:
        why = "Why: " + "; ".join(mrkdwn(r) for r in card.reasons)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": why[:2900]}]})
    status = " · ".join(x for x in (card.done, card.status and f"Status: {card.status}") if x)
    if status:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(status)}]})
    if card.item_id is not None and card.buttons:
        buttons = [_element(b.action, b.label, b.danger, card.item_id) for b in card.buttons]
        for start in range(0, len(buttons), 5):
            blocks.append(
                {"type": "actions", "block_id": f"hm-actions-{start}", "elements": buttons[start : start + 5]}
            )
    return blocks


def text_blocks(sections: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    """Titled sections of plain lines (App Home), every line escaped."""
    blocks: list[dict[str, Any]] = []
    for title, lines in sections:
        body = "\n".join(mrkdwn(line) for line in lines)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*{mrkdwn(title)}*\n{body}"[:2900]}})
    return blocks


def answer_blocks(text: str, choices: list[dict[str, str]]) -> list[dict[str, Any]]:
    """A policy answer, with a button per follow-up choice where the answer depends on who it is about."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(text[:2900])}}]
    if choices:
        buttons = [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": plain(c["audience"])},
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
            "placeholder": {"type": "plain_text", "text": plain(label)},
            "options": [{"text": {"type": "plain_text", "text": c}, "value": f"{item_id}:{c}"} for c in Category],
        }
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": plain(label)},
        "action_id": ACTION_PREFIX + action,
        "value": str(item_id),
        **({"style": "danger"} if danger else {}),
    }


def modal(action: str, metadata: str) -> dict[str, Any]:
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
    """Delivers one notification: a channel post, one person's direct message, or an update
    of a posted copy (`chat.update`). Says where a new message went so it can be updated."""

    name = "slack"

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._dms: dict[str, str] = {}  # slack user -> their direct-message conversation (stable in Slack)

    MARK = slack_history.MARK

    async def deliver(self, note: Notification) -> Posted | None:
        """Post (or update) one notification; a new message carries the delivery id in its
        metadata, so `find_sent` can tell after a crash whether it went. A direct message's files
        follow it in one share (FilesNotSent if they did not go: the message is there)."""
        blocks = blocks_for(note.card)
        text = mrkdwn(note.card.headline)
        if note.copy is not None:
            await self.client.chat_update(
                channel=note.copy.conversation, ts=note.copy.message_id, text=text, blocks=blocks
            )
            return None
        channel = await self._conversation(note)
        metadata = {"event_type": self.MARK, "event_payload": {"delivery": note.delivery_id}}
        sent = await self.client.chat_postMessage(channel=channel, text=text, blocks=blocks, metadata=metadata)
        posted = Posted(str(sent["channel"]), str(sent["ts"]))
        if note.recipient is not None and note.attachments:  # charts and records: direct messages only
            await self.attach(posted, note.attachments)
        return posted

    async def attach(self, posted: Posted, files: Sequence[Attachment]) -> None:
        """Share files in the conversation of a posted message, all in one upload."""
        uploads = [{"content": f.content, "filename": f.filename, "title": f.title or f.filename} for f in files]
        try:
            await self.client.files_upload_v2(channel=posted.conversation, file_uploads=uploads)
        except Exception as exc:
            names = [f.filename for f in files]
            status = int(getattr(getattr(exc, "response", None), "status_code", 500) or 500)
            refused = isinstance(exc, SlackApiError) and status < 500 and status != 429  # retrying cannot help
            raise FilesNotSent(
                f"the message was posted but {len(names)} file(s) were not uploaded ({', '.join(names)}): "
                f"{type(exc).__name__}: {exc}",
                conversation=posted.conversation,
                message_id=posted.message_id,
                missing=names,
                retry=not refused,
            ) from exc

    async def _conversation(self, note: Notification) -> str:
        if note.recipient is None:
            if not note.channel:
                raise Unreachable('no Slack channel for this account; set channel = { slack = "C..." }')
            return note.channel
        if not note.recipient.slack_user:
            raise Unreachable(f"{note.recipient.name} has no slack_user in [[staff]]")
        user = note.recipient.slack_user
        if user not in self._dms:
            opened = await self.client.conversations_open(users=user)
            self._dms[user] = str(opened["channel"]["id"])
        return self._dms[user]

    @staticmethod
    def unsent(error: Exception) -> bool:
        """True when a failed send certainly posted nothing: Slack answered with an error below
        500 (rate limited, channel not found, ...), or no connection was ever made."""
        if isinstance(error, SlackApiError):
            return int(getattr(error.response, "status_code", 500) or 500) < 500
        return isinstance(error, ConnectionRefusedError | aiohttp.ClientConnectorError)

    async def find_sent(self, wanted: Sequence[tuple[Notification, datetime]]) -> dict[int, Found]:
        """The messages interrupted sends already posted for these deliveries (each with when it
        was queued), found by their metadata: one history scan per conversation for all of them
        (bot.slack_history; needs the `*:history` scopes). A delivery whose conversation cannot be
        told is left out (its send will say why)."""
        by_channel: dict[str, dict[int, datetime]] = {}
        for note, since in wanted:
            try:
                channel = await self._conversation(note)
            except Unreachable:
                continue
            by_channel.setdefault(channel, {})[note.delivery_id] = since
        return await slack_history.find(self.client, by_channel)


def staff_for(config: Config, slack_user: str) -> StaffConfig | None:
    return next((s for s in config.staff if slack_user and s.slack_user == slack_user), None)
