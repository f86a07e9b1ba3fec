"""Platform name -> Source class. Adding a platform is one file and one line here.

The registry is also where a config is checked against the platforms we have: the
core config model knows nothing about platforms, so `load_config` and `parse_config`
here add the platform checks to the file's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core import config as core_config
from core.config import Config
from core.domain import Capability
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


def capabilities(platform: str) -> frozenset[Capability]:
    """What moderators can do on a platform from chat; nothing for a platform we do not know."""
    source = SOURCES.get(platform)
    return source.capabilities if source is not None else frozenset()


def _pydantic_lines(where: str, exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required; name the environment variable that holds it"
        elif err["type"] == "extra_forbidden":
            msg = "not a credential this platform uses; check its spelling"
        lines.append(f"{where}.{key}: {msg}" if key else f"{where}: {msg}")
    return lines


def account_problems(data: dict[str, Any]) -> list[str]:
    """Platform checks on the raw `[[accounts]]` tables: the platform's name and the shape of
    each watch target. Each line is `path: what is wrong; the fix`."""
    accounts = data.get("accounts")
    problems: list[str] = []
    for i, account in enumerate(accounts if isinstance(accounts, list) else []):
        if not isinstance(account, dict) or not isinstance(account.get("platform"), str):
            continue  # the config model reports the missing or mistyped key
        where, platform = f"accounts[{i}]", account["platform"]
        source = SOURCES.get(platform)
        if source is None:
            problems.append(f"{where}.platform: {platform!r} is not supported; use one of {', '.join(sorted(SOURCES))}")
            continue
        watch = account.get("watch")
        if not watch and source.polls:
            problems.append(
                f"{where}.watch: account {account.get('id')!r} watches nothing; add at least one feed or target"
            )
        for j, target in enumerate(watch if isinstance(watch, list) else []):
            if isinstance(target, str | dict):
                try:
                    source.Watch.model_validate({"url": target} if isinstance(target, str) else target)
                except ValidationError as exc:
                    problems += [p for p in _pydantic_lines(f"{where}.watch[{j}]", exc) if ".url:" in p]
    return problems


def credential_problems(config: Config) -> list[str]:
    """Each account's credentials against its platform's schema: which keys it needs (check-config)."""
    problems: list[str] = []
    for i, account in enumerate(config.accounts):
        try:
            SOURCES[account.platform].Credentials.model_validate(account.credentials)
        except ValidationError as exc:
            problems += _pydantic_lines(f"accounts[{i}].credentials", exc)
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
