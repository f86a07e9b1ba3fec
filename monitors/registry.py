"""Platform name -> Source class. Adding a platform is one file and one line here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitors.bluesky import BlueskySource
from monitors.facebook import FacebookSource
from monitors.feeds import FeedSource
from monitors.generic import GenericWebhookSource
from monitors.instagram import InstagramSource
from monitors.mastodon import MastodonSource
from monitors.wordpress import WordPressSource
from monitors.x import XSource
from monitors.youtube import YouTubeSource

if TYPE_CHECKING:
    from monitors.base import Source

SOURCES: dict[str, type[Source]] = {
    "rss": FeedSource,
    "bluesky": BlueskySource,
    "facebook": FacebookSource,
    "instagram": InstagramSource,
    "mastodon": MastodonSource,
    "webhook": GenericWebhookSource,
    "wordpress": WordPressSource,
    "x": XSource,
    "youtube": YouTubeSource,
}
