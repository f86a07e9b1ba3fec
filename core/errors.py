"""Typed, expected failures. Each carries a sentence a person can act on."""

from __future__ import annotations

from enum import StrEnum


class HallMonitorError(Exception):
    """Base for failures we expect and explain; anything else is a bug."""


class ConfigError(HallMonitorError):
    """The config file is missing, unreadable or has a bad value.

    ``problems`` holds one line per bad value, each starting with the file
    name and TOML path, e.g. ``config.toml: accounts[1].moderators: ...``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ErrorKind(StrEnum):
    """The few kinds every platform failure is sorted into (one place)."""

    NETWORK = "network"
    TIMEOUT = "timeout"
    AUTH = "auth"  # expired or revoked token
    FORBIDDEN = "forbidden"  # missing permission
    RATE_LIMITED = "rate_limited"
    NOT_FOUND = "not_found"
    BAD_PAYLOAD = "bad_payload"
    SERVER = "server"


class PlatformError(HallMonitorError):
    """A platform call failed; ``kind`` says how, ``retry_in_s`` when to retry."""

    def __init__(self, kind: ErrorKind, message: str, *, retry_in_s: float | None = None) -> None:
        self.kind = kind
        self.retry_in_s = retry_in_s
        super().__init__(message)


class Unreachable(HallMonitorError):
    """A chat delivery that needs a person, not a long retry: no chat id configured (dead at the
    first attempt), or someone who has not opened the app yet, or an account no longer in the
    config (a few attempts, `attempts`, in case it is fixed). Then it is dead-lettered and the
    moderators are told who cannot be reached; the message names the person."""

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        self.attempts = attempts
        super().__init__(message)


class FilesNotSent(HallMonitorError):
    """A direct message was posted but some of its files (digest charts, a record) were not
    uploaded. The message is never posted again: the delivery is looked for and only the files
    still missing are uploaded; when retrying cannot help (`retry` False) it is recorded sent
    without them, saying which and why."""

    def __init__(self, message: str, *, conversation: str, message_id: str, missing: list[str], retry: bool) -> None:
        self.conversation = conversation
        self.message_id = message_id
        self.missing = missing
        self.retry = retry
        super().__init__(message)
