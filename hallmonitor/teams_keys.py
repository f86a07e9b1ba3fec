"""Bot Framework signing keys fetched off the event loop, with a timeout and a cache.

botbuilder 4.17 fetches the OpenID metadata and signing keys with a blocking `requests.get`
(no timeout) inside its async token check: while the key endpoint is unreachable, every
request carrying a token (forged ones included) stalls the whole event loop. `install()`
swaps botbuilder's per-URL metadata cache entries for `OffLoopKeys`, which:

- fetches in a worker thread with a timeout (`FETCH_TIMEOUT_S` per HTTP call);
- lets one fetch run at a time; callers arriving meanwhile wait for it, not for their own;
- keeps the keys for a day, refreshes at most hourly for an unknown key id, and after a
  failed fetch refuses at once for `RETRY_AFTER_S` instead of trying again on every request.

A refused token is answered 401 by `bot.teams.handle_request`, as any failed check is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import requests
from botframework.connector.auth import jwt_token_extractor
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger(__name__)
FETCH_TIMEOUT_S = 5.0
RETRY_AFTER_S = 30.0
KEEP_S = 24 * 3600.0
UNKNOWN_KEY_REFRESH_S = 3600.0


class KeysUnavailable(Exception):
    """The signing keys could not be fetched (recently); the token cannot be checked."""


class OffLoopKeys:
    """Drop-in for botbuilder's `_OpenIdMetadata`: `await get(key_id)` returns an object with
    `public_key` and `endorsements`, or None for a key id the endpoint does not list."""

    def __init__(self, url: str, *, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self.url, self.timeout_s = url, timeout_s
        self.keys: list[dict[str, Any]] = []
        self.fetched_at = float("-inf")
        self.failed_at = float("-inf")
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    async def get(self, key_id: str) -> Any:
        now = time.monotonic()
        if now - self.fetched_at > KEEP_S:
            await self._refresh()
        key = self._find(key_id)
        if key is None and time.monotonic() - self.fetched_at > UNKNOWN_KEY_REFRESH_S:
            await self._refresh()
            key = self._find(key_id)
        return key

    async def _refresh(self) -> None:
        lock = self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        started = time.monotonic()
        async with lock:
            if self.fetched_at >= started:
                return  # another caller refreshed while we waited
            if time.monotonic() - self.failed_at < RETRY_AFTER_S:
                raise KeysUnavailable(f"Bot Framework keys unavailable (failed under {RETRY_AFTER_S:g} s ago)")
            try:
                self.keys = await asyncio.to_thread(self._fetch)
            except Exception as exc:
                self.failed_at = time.monotonic()
                log.warning("teams_keys_unavailable url=%s error=%r", self.url, exc)
                raise KeysUnavailable(f"Bot Framework keys unavailable: {exc!r}") from None
            self.fetched_at = time.monotonic()

    def _fetch(self) -> list[dict[str, Any]]:
        metadata = requests.get(self.url, timeout=self.timeout_s)
        metadata.raise_for_status()
        keys = requests.get(metadata.json()["jwks_uri"], timeout=self.timeout_s)
        keys.raise_for_status()
        return list(keys.json()["keys"])

    def _find(self, key_id: str) -> Any:
        key = next((k for k in self.keys if k.get("kid") == key_id), None)
        if key is None:
            return None
        public_key = RSAAlgorithm.from_jwk(json.dumps(key))
        return jwt_token_extractor._OpenIdConfig(public_key, key.get("endorsements", []))


def install(*, timeout_s: float = FETCH_TIMEOUT_S) -> None:
    """From now on every botbuilder token check gets its keys through `OffLoopKeys` (idempotent)."""
    extractor = jwt_token_extractor.JwtTokenExtractor
    cache: dict[str, Any] = extractor.metadataCache

    def get_open_id_metadata(metadata_url: str) -> Any:
        current = cache.get(metadata_url)
        if not isinstance(current, OffLoopKeys):
            current = cache[metadata_url] = OffLoopKeys(metadata_url, timeout_s=timeout_s)
        return current

    extractor.get_open_id_metadata = staticmethod(get_open_id_metadata)
    for url in list(cache):
        get_open_id_metadata(url)
