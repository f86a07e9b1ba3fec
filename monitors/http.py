"""The one way every platform call goes out, and the small helpers connectors share.

`call()` sends one request on the shared async client and gives back an `Answer`, or raises a
`PlatformError` whose kind says what went wrong: a status sorted into a kind (with Retry-After),
a transport failure, a body over the size cap (counted on decoded bytes while streaming, so a
gzip bomb is refused after at most `max_bytes` of output), or the whole exchange running past
its deadline (httpx's timeout is per read; a server trickling a byte at a time is caught here).
`Answer.json_object()` and friends decode JSON with a typed error instead of a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from core.config import AccountConfig
from core.domain import NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import FetchResult

USER_AGENT = "HallMonitor/0.1 (+school social media safety; polite polling)"
MAX_BODY_BYTES = 10 * 1024 * 1024  # decoded; the largest answer any platform should send us
DEADLINE_S = 60.0  # the whole exchange: connect, send, every byte of the answer
ACTION_HEADROOM = 8  # connections beyond the polling concurrency, for moderators' actions


def client_limits(concurrency: int) -> httpx.Limits:
    """The shared client's pool for `concurrency` fetches at once plus a few actions. Every
    connection may stay alive (a new TLS connection costs round trips), and the pool holds no more
    than that: httpcore's bookkeeping per request grows with the connections it holds."""
    size = concurrency + ACTION_HEADROOM
    return httpx.Limits(max_connections=size, max_keepalive_connections=size)


@dataclass(frozen=True, slots=True)
class Answer:
    """A platform's answer, read in full (under the cap) before anything looks at it."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    what: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; PlatformError(BAD_PAYLOAD) with a sentence if it is not."""
        try:
            return json.loads(self.content)
        except ValueError:
            kind = self.headers.get("content-type", "unknown type").split(";")[0]
            raise PlatformError(
                ErrorKind.BAD_PAYLOAD, f"{self.what}: the answer was not JSON ({kind}, {len(self.content)} bytes)"
            ) from None

    def json_object(self, *, empty_ok: bool = False) -> dict[str, Any]:
        if empty_ok and not self.content.strip():
            return {}
        body = self.json()
        if not isinstance(body, dict):
            raise PlatformError(
                ErrorKind.BAD_PAYLOAD, f"{self.what}: expected a JSON object, got {type(body).__name__}"
            )
        return body

    def json_list(self) -> list[Any]:
        body = self.json()
        if not isinstance(body, list):
            raise PlatformError(ErrorKind.BAD_PAYLOAD, f"{self.what}: expected a JSON list, got {type(body).__name__}")
        return body

    def error_body(self) -> dict[str, Any]:
        """Best effort, for classifiers: the body as a JSON object, or {} when it is not one."""
        try:
            body = json.loads(self.content)
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}


Classifier = Callable[[Answer], PlatformError]


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta or HTTP date), if any."""
    value = headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def classify_response(answer: Answer) -> PlatformError:
    """Turn a non-success answer into a PlatformError with a readable sentence."""
    status, what = answer.status_code, answer.what
    retry = retry_after_seconds(answer.headers)
    if status == 401:
        return PlatformError(ErrorKind.AUTH, f"{what}: the token was refused (HTTP 401); it may have expired")
    if status == 403:
        return PlatformError(ErrorKind.FORBIDDEN, f"{what}: access forbidden (HTTP 403); check the permissions")
    if status in (404, 410):
        return PlatformError(ErrorKind.NOT_FOUND, f"{what}: not found (HTTP {status}); check the address")
    if status == 429:
        return PlatformError(ErrorKind.RATE_LIMITED, f"{what}: rate limited (HTTP 429)", retry_in_s=retry)
    if status >= 500:
        return PlatformError(ErrorKind.SERVER, f"{what}: the server failed (HTTP {status})", retry_in_s=retry)
    return PlatformError(ErrorKind.BAD_PAYLOAD, f"{what}: unexpected HTTP {status}")


def classify_exception(exc: httpx.HTTPError, *, what: str) -> PlatformError:
    """Turn a transport exception into a PlatformError. A body httpx could not decode arrived
    whole but broken (corrupt gzip): a bad payload, not a network failure."""
    if isinstance(exc, httpx.TimeoutException):
        return PlatformError(ErrorKind.TIMEOUT, f"{what}: timed out")
    if isinstance(exc, httpx.DecodingError):
        return PlatformError(ErrorKind.BAD_PAYLOAD, f"{what}: the compressed answer is corrupt ({exc})")
    return PlatformError(ErrorKind.NETWORK, f"{what}: network error ({type(exc).__name__}: {exc})")


class _Decoder:
    """Content-Encoding undone by hand, so no single step can produce more than the cap allows."""

    def __init__(self, encoding: str, what: str) -> None:
        self.encoding, self.what = encoding.strip().lower(), what
        if self.encoding in ("", "identity"):
            self.zlib = None
        elif self.encoding in ("gzip", "x-gzip"):
            self.zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.encoding == "deflate":
            self.zlib = zlib.decompressobj()
        else:
            raise PlatformError(ErrorKind.BAD_PAYLOAD, f"{what}: unsupported content encoding {encoding!r}")
        self.started = False
        self.fed = 0

    def decode(self, chunk: bytes, room: int) -> bytes:
        """At most room + 1 bytes of output (one more than fits says the answer is too big)."""
        if self.zlib is None:
            return chunk
        self.fed += len(chunk)
        try:
            out = self.zlib.decompress(chunk, room + 1)
        except zlib.error:
            if self.encoding != "deflate" or self.started:
                raise PlatformError(ErrorKind.BAD_PAYLOAD, f"{self.what}: the compressed answer is corrupt") from None
            self.zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send it
            return self.decode(chunk, room)
        self.started = True
        return out

    def flush(self, room: int) -> bytes:
        """What is left; a compressed answer that stops before its end is corrupt, not short."""
        if self.zlib is None:
            return b""
        out = self.zlib.flush(room + 1)
        if self.fed and not self.zlib.eof and len(out) <= room:
            raise PlatformError(ErrorKind.BAD_PAYLOAD, f"{self.what}: the compressed answer ends early (truncated)")
        return out


def _too_big(what: str, max_bytes: int) -> PlatformError:
    return PlatformError(
        ErrorKind.BAD_PAYLOAD, f"{what}: the answer is larger than {max_bytes // 1024} KiB; refused unread"
    )


async def _read(response: httpx.Response, *, what: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    encoding = response.headers.get("content-encoding", "")
    if declared.isdigit() and not encoding and int(declared) > max_bytes:
        raise _too_big(what, max_bytes)
    decoder, body = _Decoder(encoding, what), bytearray()
    async for chunk in response.aiter_raw():
        body += decoder.decode(chunk, max_bytes - len(body))
        if len(body) > max_bytes:
            raise _too_big(what, max_bytes)
    body += decoder.flush(max_bytes - len(body))
    if len(body) > max_bytes:
        raise _too_big(what, max_bytes)
    return bytes(body)


async def call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    data: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    follow_redirects: bool = False,
    classify: Classifier = classify_response,
    max_bytes: int = MAX_BODY_BYTES,
    deadline_s: float = DEADLINE_S,
) -> Answer:
    """One platform request. Success (2xx) and 304 come back as an Answer; anything else raises
    PlatformError: `classify` sorts error statuses (each platform may bring its own)."""
    sent = {**(headers or {}), "Accept-Encoding": "gzip, deflate"}
    try:
        async with asyncio.timeout(deadline_s):
            async with client.stream(
                method,
                url,
                params=params,
                json=json,
                data=data,
                headers=sent,
                auth=auth,
                follow_redirects=follow_redirects,
            ) as response:
                content = await _read(response, what=what, max_bytes=max_bytes)
    except TimeoutError:
        raise PlatformError(ErrorKind.TIMEOUT, f"{what}: no complete answer within {deadline_s:g} s") from None
    except httpx.HTTPError as exc:
        raise classify_exception(exc, what=what) from exc
    answer = Answer(response.status_code, response.headers, content, what)
    if response.status_code >= 300 and response.status_code != 304:
        raise classify(answer)
    return answer


def secrets(account: AccountConfig, platform: str, *names: str, hint: str = "a token") -> list[str]:
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


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((t for t in (a, b) if t is not None), default=None)


def keep_newer(
    found: Iterable[NewItem | None], since: datetime | None, result: FetchResult, overlap: timedelta = OVERLAP
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
