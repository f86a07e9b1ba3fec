"""Finding, after a crash, the Slack messages interrupted sends had already posted.

Each new message Hall Monitor posts carries its delivery id in its metadata (`MARK`). After a
crash the deliveries that may have gone are looked for together: one scan of each conversation's
history (conversations.history, Slack tier 3, about 50 calls a minute), from the oldest of that
conversation's deliveries, newest page first, at most `PAGES` pages of 200 and no further once all
are found. The scan also sees the files the bot shared after each found message (before the next
delivery's message), so a direct message's charts that did not go can be uploaded then.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from core.chat import Found, Posted

MARK = "hallmonitor_delivery"  # message metadata: which delivery a message is
PAGES = 5  # the most history calls per conversation per look: up to 1,000 messages back
SLACK_S = 60  # looked for from this long before the oldest delivery was queued (clocks differ)


def _delivery(message: dict[str, Any]) -> int | None:
    meta = message.get("metadata") or {}
    if meta.get("event_type") != MARK:
        return None
    value = (meta.get("event_payload") or {}).get("delivery")
    return value if isinstance(value, int) else None


def _ts(message: dict[str, Any]) -> Decimal:
    try:
        return Decimal(str(message.get("ts")))
    except InvalidOperation:
        return Decimal(0)


async def history(client: AsyncWebClient, channel: str, *, oldest: datetime, wanted: set[int]) -> list[dict[str, Any]]:
    """The conversation's messages since `oldest`, newest first, until every one of `wanted` was seen."""
    messages: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(PAGES):
        page = await client.conversations_history(
            channel=channel,
            oldest=f"{oldest.timestamp() - SLACK_S:.6f}",
            include_all_metadata=True,
            limit=200,
            cursor=cursor,
        )
        messages += page.get("messages") or []
        if wanted <= {d for m in messages if (d := _delivery(m)) is not None}:
            break
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            break
    return messages


def match(channel: str, messages: list[dict[str, Any]], wanted: set[int]) -> dict[int, Found]:
    """Which of `wanted` were posted, and the names of the files shared after each (in time order,
    up to the next delivery's message)."""
    posted: dict[int, Posted] = {}
    files: dict[int, set[str]] = {}
    current: int | None = None
    for message in sorted(messages, key=_ts):
        delivery = _delivery(message)
        if delivery is not None:
            current = delivery if delivery in wanted else None
            if current is not None:
                posted[current] = Posted(channel, str(message.get("ts")))
                files[current] = set()
        elif current is not None:
            files[current] |= {str(f.get("name")) for f in message.get("files") or [] if isinstance(f, dict)}
    return {d: Found(p, frozenset(files[d])) for d, p in posted.items()}


async def find(client: AsyncWebClient, by_channel: Mapping[str, Mapping[int, datetime]]) -> dict[int, Found]:
    """Per conversation (channel -> delivery id -> when it was queued), one scan for all of them."""
    found: dict[int, Found] = {}
    for channel, deliveries in by_channel.items():
        wanted = set(deliveries)
        messages = await history(client, channel, oldest=min(deliveries.values()), wanted=wanted)
        found |= match(channel, messages, wanted)
    return found
