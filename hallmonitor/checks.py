"""What `check-config` adds to the file's own rules: everything that would break at run time.

The file's shape and cross references are checked when it is loaded (core.config and
monitors.registry). Here, against this machine's environment and disk: the chosen chat
surfaces' tokens, every person's chat id and every account's channel on those surfaces,
each platform's declared credential and watch schemas, secrets named by the file being set,
and the files the config points at. Each line is `path: what is wrong; the fix`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from core.config import Config, SchoolConfig
from monitors.registry import credential_problems

# surface -> the environment variables it cannot run without
SURFACE_TOKENS: dict[str, tuple[str, ...]] = {
    "slack": ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"),
    "teams": ("MICROSOFT_APP_ID", "MICROSOFT_APP_PASSWORD"),
}
_CHAT_ID: dict[str, tuple[str, str]] = {  # surface -> (staff field, what it looks like)
    "slack": ("slack_user", 'the member id from their Slack profile, like "U012AB3CD"'),
    "teams": ("teams_user", "their Entra (Azure AD) object id"),
}
_CHANNEL_HINT = {"slack": '"C0123456789" (channel details, at the bottom)', "teams": '"19:...@thread.tacv2"'}


def surfaces_of(config: Config, school: SchoolConfig) -> tuple[str, ...]:
    """The chat surfaces that deliver one school's cards: its own `surface` (one or a list), else
    `chat.surface`. Every check below follows it, so a school on Slack and Teams needs both wired."""
    return config.surfaces_of(school.id)


def surfaces_in_use(config: Config) -> set[str]:
    return set(config.surfaces_in_use())


def readiness_problems(config: Config, env: dict[str, str] | None = None) -> list[str]:
    """Every run-time problem found in one pass (environment, chat ids, schemas, files)."""
    environ = dict(os.environ) if env is None else env
    checks: list[Callable[[Config, dict[str, str]], list[str]]] = [
        _surface_tokens,
        _chat_ids,
        _channels,
        _platform_schemas,
        _secrets_set,
        _files,
    ]
    name = config.path.name if config.path else "config"
    return [f"{name}: {p}" for check in checks for p in check(config, environ)]


def _surface_tokens(config: Config, env: dict[str, str]) -> list[str]:
    problems = []
    for surface in sorted(surfaces_in_use(config) & SURFACE_TOKENS.keys()):
        missing = [v for v in SURFACE_TOKENS[surface] if not env.get(v)]
        if missing:
            problems.append(
                f'chat.surface: "{surface}" needs the environment variable(s) {", ".join(missing)}; '
                f"set them in the service's environment file (README: Deployment)"
            )
    return problems


def _chat_ids(config: Config, env: dict[str, str]) -> list[str]:
    problems = []
    for i, person in enumerate(config.staff):
        for surface in surfaces_of(config, config.school_of(person)):
            if surface not in _CHAT_ID:
                continue
            field, looks = _CHAT_ID[surface]
            if not getattr(person, field):
                problems.append(
                    f"staff[{i}].{field}: {person.id!r} has no {surface.title()} id, so cards and alerts cannot "
                    f"reach them; add {field} = ... ({looks})"
                )
    return problems


def _channels(config: Config, env: dict[str, str]) -> list[str]:
    problems = []
    for i, account in enumerate(config.accounts):
        for surface in surfaces_of(config, config.school_of(account)):
            if surface in _CHANNEL_HINT and not account.channel.get(surface):
                problems.append(
                    f"accounts[{i}].channel.{surface}: account {account.id!r} has no {surface.title()} channel for "
                    f"its cards; add channel = {{ {surface} = {_CHANNEL_HINT[surface]} }}"
                )
    return problems


def _platform_schemas(config: Config, env: dict[str, str]) -> list[str]:
    """Each account's credentials against its platform module's `Credentials` schema (the watch
    targets were checked against its `Watch` schema when the file was loaded)."""
    return credential_problems(config)


def _secrets_set(config: Config, env: dict[str, str]) -> list[str]:
    problems = []
    for i, account in enumerate(config.accounts):
        for key, variable in account.credentials.items():
            if not env.get(variable):
                problems.append(
                    f"accounts[{i}].credentials.{key}: the environment variable {variable} is not set; "
                    "set it in the service's environment file"
                )
    return problems


def _files(config: Config, env: dict[str, str]) -> list[str]:
    problems = []
    for i, school in enumerate(config.schools):
        if school.policy and not config.resolve_path(school.policy).is_file():
            problems.append(
                f"schools[{i}].policy: no file at {config.resolve_path(school.policy)}; put the school's policy "
                "there or fix the path (relative paths start from the config file's folder)"
            )
    for i, account in enumerate(config.accounts):
        if account.platform != "rss":
            continue
        for j, watch in enumerate(account.watch):
            path = _local(config, watch.url)
            if path is not None and not os.path.isfile(path):
                problems.append(
                    f"accounts[{i}].watch[{j}].url: no feed file at {path}; fix the path "
                    "(relative paths start from the config file's folder) or use the feed's https:// address"
                )
    return problems


def _local(config: Config, url: str) -> str | None:
    if url.startswith("file://"):
        return url.removeprefix("file://")
    if "://" in url:
        return None
    return str(config.resolve_path(url))
