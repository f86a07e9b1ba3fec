"""Sorting HTTP failures into a few kinds, in one place, for every platform; and the small
helpers every connector shares (secrets from the environment, keeping what is new)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

from core.errors import ErrorKind, PlatformError

if TYPE_CHECKING:
    from core.domain import NewItem


USER_AGENT = "HallMonitor/0.1 (+school social media safety; polite polling)"


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta or HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def classify_response(response: httpx.Response, *, what: str) -> PlatformError:
    """Turn a non-success response into a PlatformError with a readable sentence."""
    status = response.status_code
    if status == 401:
        return PlatformError(ErrorKind.AUTH, f"{what}: the token was refused (HTTP 401); it may have expired")
    if status == 403:
        return PlatformError(ErrorKind.FORBIDDEN, f"{what}: access forbidden (HTTP 403); check the permissions")
    if status == 404 or status == 410:
        return PlatformError(ErrorKind.NOT_FOUND, f"{what}: not found (HTTP {status}); check the address")
    if status == 429:
        return PlatformError(
            ErrorKind.RATE_LIMITED, f"{what}: rate limited (HTTP 429)", retry_in_s=retry_after_seconds(response)
        )
    if status >= 500:
        return PlatformError(
            ErrorKind.SERVER, f"{what}: the server failed (HTTP {status})", retry_in_s=retry_after_seconds(response)
        )
    return PlatformError(ErrorKind.BAD_PAYLOAD, f"{what}: unexpected HTTP {status}")


def classify_exception(exc: httpx.HTTPError, *, what: str) -> PlatformError:
    """Turn a transport exception into a PlatformError."""
    if isinstance(exc, httpx.TimeoutException):
        return PlatformError(ErrorKind.TIMEOUT, f"{what}: timed out")
    return PlatformError(ErrorKind.NETWORK, f"{what}: network error ({type(exc).__name__}: {exc})")


def secrets(account: Any, platform: str, *names: str, hint: str = "a token") -> list[str]:
    """The secrets an account's credentials name, read from the environment, with one clear
    sentence for each way this goes wrong: a key missing from the config, or a variable unset."""
    envs = [account.credentials.get(name) for name in names]
    unnamed = [name for name, env in zip(names, envs, strict=True) if not env]
    if unnamed:
        keys = ", ".join(f"credentials.{n}" for n in unnamed)
        raise PlatformError(
            ErrorKind.AUTH,
            f"{platform} account {account.id!r} has no {keys}; name the environment "
            f"variable that holds {hint} in the config",
        )
    values = [os.environ.get(env or "") for env in envs]
    unset = [env for env, value in zip(envs, values, strict=True) if not value]
    if unset:
        missing = "; ".join(f"environment variable {env} is not set" for env in unset)
        raise PlatformError(ErrorKind.AUTH, f"{platform}: {missing}; set it to {hint}")
    return [v or "" for v in values]


def parse_time(value: str | None) -> datetime | None:
    """A platform timestamp ("...Z", "...+0000", "...+00:00", with or without fractions) as an aware
    datetime; a timestamp without an offset is UTC (as WordPress's date_gmt); None if unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


OVERLAP = timedelta(minutes=5)


def keep_newer(
    found: Iterable[NewItem | None], since: datetime | None, result: Any, overlap: timedelta = OVERLAP
) -> datetime | None:
    """Append to `result.items` what is newer than the cursor (less an overlap the unique key
    deduplicates), count unreadable entries, and return the newest time seen."""
    newest = since
    for item in found:
        if item is None:
            result.skipped += 1
            continue
        if since and item.created_at and item.created_at < since - overlap:
            continue
        result.items.append(item)
        if item.created_at and (newest is None or item.created_at > newest):
            newest = item.created_at
    return newest
