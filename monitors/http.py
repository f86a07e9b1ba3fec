"""Sorting HTTP failures into a few kinds, in one place, for every platform."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from hallmonitor.errors import ErrorKind, PlatformError

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
