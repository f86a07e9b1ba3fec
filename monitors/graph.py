"""Meta Graph API calls shared by the Facebook and Instagram modules: base URL, the error
envelope sorted into kinds, and the webhook both platforms share (one app secret)."""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx

from core.config import AccountConfig
from core.errors import ErrorKind, PlatformError
from monitors.base import WebhookSpec
from monitors.http import Answer, call, retry_after_seconds

log = logging.getLogger(__name__)
DEFAULT_GRAPH = "https://graph.facebook.com/v21.0"


def graph_url() -> str:
    """$META_GRAPH_URL lets tests and proxies point elsewhere."""
    return (os.environ.get("META_GRAPH_URL") or DEFAULT_GRAPH).rstrip("/")


def meta_webhook(platform: str) -> WebhookSpec:
    """Meta signs every app's deliveries with the app secret and verifies subscriptions by token."""
    return WebhookSpec(
        path=platform,
        signature_header="X-Hub-Signature-256",
        secret_env="META_APP_SECRET",
        verify_token_env="META_VERIFY_TOKEN",
    )


def classify_graph(answer: Answer) -> PlatformError:
    """Graph API errors come in one envelope; sort them into our kinds with a sentence."""
    what, status = answer.what, answer.status_code
    error = answer.error_body().get("error") or {}
    error = error if isinstance(error, dict) else {}
    code, message = error.get("code"), str(error.get("message") or f"HTTP {status}")
    sub = error.get("error_subcode")
    if code == 190 or status == 401:
        return PlatformError(ErrorKind.AUTH, f"{what}: the access token has expired or was revoked; reconnect the page")
    if code in (4, 17, 32, 613) or status == 429:
        return PlatformError(
            ErrorKind.RATE_LIMITED,
            f"{what}: rate limited by Meta",
            retry_in_s=retry_after_seconds(answer.headers) or 600,
        )
    if code in (10, 200, 294) or (code == 100 and "permission" in message.lower()):
        return PlatformError(ErrorKind.FORBIDDEN, f"{what}: a permission is missing ({message[:160]})")
    if code == 100 and (sub == 33 or "does not exist" in message.lower()):
        return PlatformError(ErrorKind.NOT_FOUND, f"{what} says it no longer exists")
    if status >= 500:
        return PlatformError(ErrorKind.SERVER, f"{what}: Meta's servers failed (HTTP {status})")
    return PlatformError(ErrorKind.BAD_PAYLOAD, f"{what}: {message[:200]}")


async def graph_get(client: httpx.AsyncClient, url: str, *, params: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """GET a Graph URL. Pass params=None for `paging.next` links: httpx replaces a URL's
    query with any params given, even an empty dict, which would drop the cursor."""
    answer = await call(client, "GET", url, params=params, what=what, classify=classify_graph)
    return answer.json_object()


async def graph_call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    access_token: str,
    data: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    what: str,
) -> dict[str, Any]:
    """A moderation call or look-up: GET sends `params` in the query; writes send `data` as a form."""
    url = f"{graph_url()}/{path.lstrip('/')}"
    if method == "GET":
        answer = await call(
            client,
            method,
            url,
            params={**(params or {}), "access_token": access_token},
            what=what,
            classify=classify_graph,
        )
    else:
        answer = await call(
            client, method, url, data={**(data or {}), "access_token": access_token}, what=what, classify=classify_graph
        )
    return answer.json_object(empty_ok=True)


def pages(accounts: list[AccountConfig], payload: Any, platform: str) -> list[tuple[AccountConfig, dict[str, Any]]]:
    """(account, change) for each change in a Meta delivery to a page we watch; others are logged."""
    by_page = {w.url.split("/")[0]: a for a in accounts for w in a.watch}
    out: list[tuple[AccountConfig, dict[str, Any]]] = []
    for entry in (payload.get("entry") if isinstance(payload, dict) else None) or []:
        account = by_page.get(str(entry.get("id")))
        if account is None:
            log.warning("webhook_unknown_page platform=%s page=%s", platform, entry.get("id"))
            continue
        out += [(account, change) for change in entry.get("changes") or [] if isinstance(change, dict)]
    return out
