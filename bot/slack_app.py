"""The Slack bolt app (HTTP mode) behind POST /slack/events: clicks, modals, the slash
command, mentions, direct messages and App Home.

Before any listener runs, a middleware refuses requests from a workspace other than the
bot's own and drops replays: an interaction whose action_ts, trigger_id or view id was
already handled does nothing the second time (Slack's signature only proves a request is
less than five minutes old). Every click becomes a typed
`ActionRequest` for the chat core; refusals go to the clicker alone (ephemeral), never to
the channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot import chat
from bot.slack import ACTION_PREFIX, answer_blocks, modal, mrkdwn, staff_for, text_blocks
from core.chat import Place
from core.protocols import Runtime
from handlers.actions import ActionRequest
from storage.db import session_scope
from storage.queries import copy_at, first_time, write_audit
from storage.types import utcnow

log = logging.getLogger(__name__)
FORMS = ("reply", "delete")


def replay_keys(body: dict[str, Any]) -> list[str]:
    """The keys that identify one interaction; any already seen marks a replay."""
    team = (body.get("team") or {}).get("id") or body.get("team_id") or ""
    keys: list[str] = []
    if body.get("command"):  # a slash command only answers its sender: a replay changes nothing
        return keys
    if body.get("trigger_id"):
        keys.append(f"slack:{team}:trigger:{body['trigger_id']}")
    for action in body.get("actions") or []:
        if action.get("action_ts"):
            keys.append(f"slack:{team}:action:{action['action_ts']}:{action.get('action_id')}")
    if body.get("type") == "view_submission" and (body.get("view") or {}).get("id"):
        keys.append(f"slack:{team}:view:{body['view']['id']}")
    if body.get("event_id"):
        keys.append(f"slack:{team}:event:{body['event_id']}")
    return keys


def _first_time(service: Runtime, keys: list[str]) -> bool:
    now = utcnow()
    with session_scope(service.engine) as session:
        fresh = [first_time(session, key=k, now=now) for k in keys]
    return all(fresh)


def _refuse_team(service: Runtime, user: str, team: str | None, expected: str | None) -> None:
    with session_scope(service.engine) as session:
        write_audit(
            session,
            actor=f"slack:{user}",
            action="request",
            outcome="refused",
            surface="slack",
            detail={"message": "request from another Slack workspace", "team": team, "expected": expected},
        )


def _install_guards(app: AsyncApp, service: Runtime) -> None:
    @app.middleware
    async def guard(body: dict[str, Any], context: Any, next: Any) -> BoltResponse | None:
        own = context.authorize_result.team_id if context.authorize_result else None
        team = context.team_id
        if own and team and team != own:
            log.warning("slack_foreign_team team=%s expected=%s", team, own)
            await asyncio.to_thread(_refuse_team, service, str(context.user_id), team, own)
            return BoltResponse(status=403, body="")
        if not await fresh(service, body):
            return BoltResponse(status=200, body="")
        await next()
        return None


async def fresh(service: Runtime, body: dict[str, Any]) -> bool:
    """False for a replay (its keys were seen before): it is answered 200 and does nothing."""
    keys = replay_keys(body)
    if keys and not await asyncio.to_thread(_first_time, service, keys):
        log.warning("slack_replay_ignored keys=%s", keys)
        return False
    return True


def _item_id(text: object) -> int | None:
    return int(text) if isinstance(text, str) and text.isdigit() else None


def build_slack_app(service: chat.ChatRuntime, *, token: str, signing_secret: str, client: AsyncWebClient) -> AsyncApp:
    """The bolt app. `service` is the running Service (config, engine, delivery)."""
    app = AsyncApp(token=token, signing_secret=signing_secret, client=client, process_before_response=False)
    _install_guards(app, service)

    def actor(user: str) -> str:
        staff = staff_for(service.config, user)
        return staff.id if staff else f"slack:{user}"

    @app.action(re.compile(f"^{ACTION_PREFIX}"))
    async def on_button(ack: Any, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user = body["user"]["id"]
        name = action["action_id"].removeprefix(ACTION_PREFIX)
        channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
        ts = (body.get("container") or {}).get("message_ts")
        category: str | None = None
        item_text: object
        if action.get("type") == "static_select":
            item_text, _, category = str((action.get("selected_option") or {}).get("value", "")).partition(":")
        else:
            item_text = action.get("value")
        request = ActionRequest(actor(user), name, _item_id(item_text), "slack", category=category)
        if name in FORMS and request.item_id is not None:  # ask for the words first; the submission acts
            refused = await asyncio.to_thread(chat.check, service, request)
            if refused is not None:
                await _tell(client, user=user, channel=channel, text=refused.message)
                return
            metadata = json.dumps({"item": request.item_id, "channel": channel, "ts": ts})
            await client.views_open(trigger_id=body["trigger_id"], view=modal(name, metadata))
            return
        await _act(client, request, user=user, channel=channel, ts=ts)

    async def _act(
        client: AsyncWebClient, request: ActionRequest, *, user: str, channel: str | None, ts: str | None
    ) -> None:
        place = await asyncio.to_thread(_place_of, service, channel, ts)
        outcome = await asyncio.to_thread(chat.act, service, request, place=place)
        if not outcome.ok:
            await _tell(client, user=user, channel=channel, text=outcome.message)
            return
        await service.deliver_updates(request.item_id)

    @app.view(re.compile(r"^hm_(reply|delete)$"))
    async def on_modal(ack: Any, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        values = view["state"]["values"]
        name = view["callback_id"].removeprefix("hm_")
        user = body["user"]["id"]
        item_id = meta.get("item") if isinstance(meta.get("item"), int) else None
        if name == "reply":
            request = ActionRequest(actor(user), name, item_id, "slack", text=values["reply_text"]["value"]["value"])
        else:
            tell = bool((values.get("tell", {}).get("value") or {}).get("selected_options"))
            reason = values["reason"]["value"]["value"]
            request = ActionRequest(actor(user), name, item_id, "slack", reason=reason, tell_audience=tell)
        await _act(client, request, user=user, channel=meta.get("channel"), ts=meta.get("ts"))

    @app.command("/hallmonitor")
    async def on_command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        verb, _, rest = (command.get("text") or "").strip().partition(" ")
        staff = staff_for(service.config, command["user_id"])
        if verb.lower() == "ask" and staff is not None:
            text, choices = await asyncio.to_thread(chat.policy_answer, service, staff, rest)
            await respond(text=mrkdwn(text), blocks=answer_blocks(text, choices), response_type="ephemeral")
            return
        reply = await asyncio.to_thread(
            chat.command, service, staff=staff, verb=verb.lower(), text=rest, surface="slack"
        )
        await respond(text=mrkdwn(reply), response_type="ephemeral")

    @app.action(re.compile(r"^hm_ask_\d+$"))
    async def on_choice(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        await ack()
        staff = staff_for(service.config, body["user"]["id"])
        text, choices = await asyncio.to_thread(chat.policy_answer, service, staff, action["value"])
        await respond(
            text=mrkdwn(text), blocks=answer_blocks(text, choices), response_type="ephemeral", replace_original=False
        )

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], body: dict[str, Any], say: Any) -> None:
        question = re.sub(r"<@[A-Z0-9]+>", "", event.get("text", "")).strip()
        staff = staff_for(service.config, event.get("user", ""))
        answer = await asyncio.to_thread(chat.command, service, staff=staff, verb="ask", text=question)
        await say(text=mrkdwn(answer), thread_ts=event.get("ts"))

    @app.event("message")
    async def on_message(event: dict[str, Any], body: dict[str, Any], say: Any) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return
        staff = staff_for(service.config, event.get("user", ""))
        answer = await asyncio.to_thread(chat.command, service, staff=staff, verb="ask", text=event.get("text", ""))
        await say(text=mrkdwn(answer))

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any], client: AsyncWebClient) -> None:
        staff = staff_for(service.config, event["user"])
        sections = await asyncio.to_thread(chat.home, service, staff=staff)
        await client.views_publish(user_id=event["user"], view={"type": "home", "blocks": text_blocks(sections)})

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.exception("slack_listener_failed error=%r", error)

    return app


def _place_of(service: Runtime, channel: str | None, ts: str | None) -> Place:
    """Where the clicked card is: the place its posted copy was drawn for."""
    if channel and ts:
        with session_scope(service.engine) as session:
            copy = copy_at(session, surface="slack", conversation=channel, message_id=ts)
            if copy is not None:
                return Place(copy.place)
    return Place.DIRECT if (channel or "").startswith("D") else Place.CHANNEL


async def _tell(client: AsyncWebClient, *, user: str, channel: str | None, text: str) -> None:
    """A sentence for one person only: ephemeral where they clicked, else their DM."""
    if channel:
        await client.chat_postEphemeral(channel=channel, user=user, text=mrkdwn(text))
    else:
        await client.chat_postMessage(channel=user, text=mrkdwn(text))
