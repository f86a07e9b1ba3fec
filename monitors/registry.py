"""Platform name -> Source class. Adding a platform is one file and one line here.

The registry is also where a config is checked against the platforms we have: the
core config model knows nothing about platforms, so `load_config` and `parse_config`
here add the platform checks to the file's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import config as core_config
from core.config import Config
from core.errors import ConfigError
from monitors.base import Source
from monitors.bluesky import BlueskySource
from monitors.facebook import FacebookSource
from monitors.feeds import FeedSource
from monitors.generic import GenericWebhookSource
from monitors.instagram import InstagramSource
from monitors.mastodon import MastodonSource
from monitors.wordpress import WordPressSource
from monitors.x import XSource
from monitors.youtube import YouTubeSource

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


def account_problems(data: dict[str, Any]) -> list[str]:
    """Platform checks on the raw `[[accounts]]` tables: each line is `path: what is wrong; the fix`."""
    accounts = data.get("accounts")
    problems: list[str] = []
    for i, account in enumerate(accounts if isinstance(accounts, list) else []):
        if not isinstance(account, dict) or not isinstance(account.get("platform"), str):
            continue  # the config model reports the missing or mistyped key
        where, platform = f"accounts[{i}]", account["platform"]
        if platform not in SOURCES:
            problems.append(f"{where}.platform: {platform!r} is not supported; use one of {', '.join(sorted(SOURCES))}")
        elif not account.get("watch") and platform != "webhook":
            problems.append(
                f"{where}.watch: account {account.get('id')!r} watches nothing; add at least one feed or target"
            )
    return problems


def parse_config(data: dict[str, Any], *, path: Path | None = None) -> Config:
    """The core config check plus the platform checks, all problems reported together."""
    name = path.name if path else "config"
    problems = [f"{name}: {p}" for p in account_problems(data)]
    try:
        config = core_config.parse_config(data, path=path)
    except ConfigError as exc:
        raise ConfigError(exc.problems + problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def load_config(path: str | Path) -> Config:
    """Read a TOML config file and check it against the file's rules and the platforms."""
    return parse_config(core_config.read_toml(Path(path)), path=Path(path).resolve())
