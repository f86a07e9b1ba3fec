"""Meta Graph API calls shared by the Facebook and Instagram connectors:
base URL, tokens from the environment, and the error envelope sorted into kinds."""

from __future__ import annotations

import os
from typing import Any

import httpx

from core.errors import ErrorKind, PlatformError
from monitors.http import classify_exception, retry_after_seconds

DEFAULT_GRAPH = "https://graph.facebook.com/v21.0"


def graph_url() -> str:
    """$META_GRAPH_URL lets tests and proxies point elsewhere."""
    return (os.environ.get("META_GRAPH_URL") or DEFAULT_GRAPH).rstrip("/")


def classify_graph(response: httpx.Response, *, what: str) -> PlatformError:
    """Graph API errors come in one envelope; sort them into our kinds with a sentence."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code, message = error.get("code"), str(error.get("message") or f"HTTP {response.status_code}")
    sub = error.get("error_subcode")
    if code == 190 or response.status_code == 401:
        return PlatformError(ErrorKind.AUTH, f"{what}: the access token has expired or was revoked; reconnect the page")
    if code in (4, 17, 32, 613) or response.status_code == 429:
        return PlatformError(
            ErrorKind.RATE_LIMITED, f"{what}: rate limited by Meta", retry_in_s=retry_after_seconds(response) or 600
        )
    if code in (10, 200, 294) or (code == 100 and "permission" in message.lower()):
        return PlatformError(ErrorKind.FORBIDDEN, f"{what}: a permission is missing ({message[:160]})")
    if code == 100 and (sub == 33 or "does not exist" in message.lower()):
        return PlatformError(ErrorKind.NOT_FOUND, f"{what} says it no longer exists")
    if response.status_code >= 500:
        return PlatformError(ErrorKind.SERVER, f"{what}: Meta's servers failed (HTTP {response.status_code})")
    return PlatformError(ErrorKind.BAD_PAYLOAD, f"{what}: {message[:200]}")


async def graph_get(client: httpx.AsyncClient, url: str, *, params: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """GET a Graph URL. Pass params=None for `paging.next` links: httpx replaces a URL's
    query with any params given, even an empty dict, which would drop the cursor."""
    try:
        response = await client.get(url, params=params)
    except httpx.HTTPError as exc:
        raise classify_exception(exc, what=what) from exc
    if response.status_code >= 400:
        raise classify_graph(response, what=what)
    try:
        body = response.json()
    except ValueError:
        raise PlatformError(ErrorKind.BAD_PAYLOAD, f"{what}: the answer was not JSON") from None
    if not isinstance(body, dict):
        raise PlatformError(ErrorKind.BAD_PAYLOAD, f"{what}: unexpected answer")
    return body


def graph_call(
    method: str,
    path: str,
    *,
    access_token: str,
    data: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    what: str,
    timeout: float = 20,
) -> dict[str, Any]:
    """A synchronous call (moderation actions and webhook look-ups run in worker threads).
    GET sends `params` in the query; writes send `data` as a form."""
    try:
        with httpx.Client(timeout=timeout) as client:
            response = (
                client.request(
                    method, f"{graph_url()}/{path.lstrip('/')}", params={**(params or {}), "access_token": access_token}
                )
                if method == "GET"
                else client.request(
                    method, f"{graph_url()}/{path.lstrip('/')}", data={**(data or {}), "access_token": access_token}
                )
            )
    except httpx.HTTPError as exc:
        raise classify_exception(exc, what=what) from exc
    if response.status_code >= 400:
        raise classify_graph(response, what=what)
    try:
        return response.json() if response.content else {}
    except ValueError:
        return {}
