"""RSS/Atom: school blog and WordPress comment feeds, YouTube channel feeds,
Google Alerts (public mentions). Conditional GET is ours (httpx); feedparser
only ever sees bytes, and a 304 is never parsed.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import feedparser
import httpx

from core.config import AccountConfig
from core.config import Watch as WatchConfig
from core.domain import Capability, NewItem
from core.errors import ErrorKind, PlatformError
from monitors.base import ActRequest, Credentials, FetchResult, NoWebhooks, SourceState, Watch
from monitors.http import USER_AGENT, call

log = logging.getLogger(__name__)

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_BLOCK = re.compile(r"</?(p|br|div|li|h[1-6]|blockquote)\b[^>]*>", re.I)
_MAX_BYTES = 20 * 1024 * 1024


def html_to_text(value: str | None) -> str:
    """Plain text from the HTML feedparser hands us (already sanitised)."""
    if not value:
        return ""
    value = _BLOCK.sub(" ", value)
    return _SPACE.sub(" ", html.unescape(_TAG.sub("", value))).strip()


def unwrap_google_link(url: str | None) -> str | None:
    """Google Alerts wraps every link as google.com/url?...&url=REAL; return REAL."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.netloc.endswith("google.com") and parts.path == "/url":
        target = parse_qs(parts.query).get("url") or parse_qs(parts.query).get("q")
        if target:
            return target[0]
    return url


def _when(entry: dict[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _json_safe(value: Any) -> Any:
    """feedparser dicts hold struct_time and other oddities; keep what JSON can."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items() if not str(k).endswith("_parsed")}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _media(entry: dict[str, Any]) -> tuple[str, ...]:
    urls: list[str] = []
    for key in ("media_thumbnail", "media_content"):
        urls += [m["url"] for m in entry.get(key) or [] if isinstance(m, dict) and m.get("url")]
    for enc in entry.get("enclosures") or []:
        if str(enc.get("type", "")).startswith(("image/", "video/")) and enc.get("href"):
            urls.append(enc["href"])
    return tuple(dict.fromkeys(urls))


def entry_to_item(entry: dict[str, Any], *, kind: str, google: bool) -> NewItem | None:
    """One feed entry -> NewItem, or None if it carries nothing to identify."""
    title = html_to_text(entry.get("title"))
    contents = entry.get("content") or []
    body = html_to_text(contents[0].get("value") if contents else entry.get("summary"))
    link = entry.get("link")
    if google:
        link = unwrap_google_link(link)
    if kind == "comment":
        text = body or title
    elif body and title and not body.startswith(title):
        text = f"{title}: {body}"
    else:
        text = body or title
    external_id = entry.get("id") or entry.get("guid") or link
    if not external_id:
        if not text:
            return None
        external_id = "sha1:" + hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()
    return NewItem(
        external_id=str(external_id)[:512],
        kind=kind,
        text=text,
        author=html_to_text(entry.get("author")) or None,
        url=link,
        created_at=_when(entry),
        title=title or None,
        media_urls=_media(entry),
        raw=_json_safe(dict(entry)),
    )


def parse_feed(content: bytes, *, kind: str, content_type: str | None = None, what: str) -> FetchResult:
    """Parse feed bytes leniently. A feed with no readable entries and a parse
    error is a BAD_PAYLOAD failure; entries that parse are kept even when the
    document is broken further on (truncated feeds)."""
    headers = {"content-type": content_type} if content_type else {}
    parsed = feedparser.parse(content, response_headers=headers, sanitize_html=True)
    result = FetchResult()
    if not parsed.entries:
        reason = str(parsed.get("bozo_exception") or "no RSS or Atom elements")
        if parsed.get("version"):
            result.warnings.append(f"{what}: feed has no entries")
            return result
        raise PlatformError(ErrorKind.BAD_PAYLOAD, f"{what}: not a readable RSS/Atom feed ({reason})")
    if parsed.bozo:
        result.warnings.append(f"{what}: feed is malformed but readable ({parsed.get('bozo_exception')})")
    feed_link = str(parsed.feed.get("link", "")) + str(parsed.feed.get("id", ""))
    google = "google.com" in feed_link and "alerts" in feed_link
    for entry in parsed.entries:
        try:
            item = entry_to_item(entry, kind=kind, google=google)
        except Exception:  # one odd entry must not sink the feed
            log.warning("feed_entry_skipped source=%s", what, exc_info=True)
            item = None
        if item is None:
            result.skipped += 1
        else:
            result.items.append(item)
    return result


class FeedCredentials(Credentials):
    """Feeds are public: no credentials."""


class FeedWatch(Watch):
    pattern: ClassVar[str] = r"\S.*"
    hint: ClassVar[str] = "a feed URL or a local path"


class FeedSource(NoWebhooks):
    """RSS/Atom by URL or local path (the offline example uses paths)."""

    platform: ClassVar[str] = "rss"
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    Credentials: ClassVar[type[Credentials]] = FeedCredentials
    Watch: ClassVar[type[Watch]] = FeedWatch

    def __init__(self, account: AccountConfig, watch: WatchConfig, *, base_dir: str | None = None) -> None:
        self.account = account
        self.watch = watch
        self.location = watch.url
        self.base_dir = Path(base_dir) if base_dir else None
        self.what = watch.label or watch.url

    def _local_path(self) -> Path | None:
        loc = self.location
        if loc.startswith("file://"):
            return Path(urlsplit(loc).path)
        if "://" in loc:
            return None
        path = Path(loc).expanduser()
        return path if path.is_absolute() or self.base_dir is None else self.base_dir / path

    async def act(self, client: httpx.AsyncClient, request: ActRequest) -> str:
        raise PlatformError(ErrorKind.BAD_PAYLOAD, f"a feed cannot {request.action}; do it where it was posted")

    async def fetch(self, client: httpx.AsyncClient, state: SourceState) -> FetchResult:
        local = self._local_path()
        if local is not None:
            return self._fetch_file(local, state)
        headers = {"User-Agent": USER_AGENT, "Accept": "application/atom+xml, application/rss+xml, */*;q=0.5"}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        answer = await call(
            client, "GET", self.location, headers=headers, follow_redirects=True, max_bytes=_MAX_BYTES, what=self.what
        )
        if answer.status_code == 304:
            return FetchResult(not_modified=True)
        result = parse_feed(
            answer.content, kind=self.watch.kind, content_type=answer.headers.get("content-type"), what=self.what
        )
        state.etag = answer.headers.get("etag") or state.etag
        state.last_modified = answer.headers.get("last-modified") or state.last_modified
        return result

    def _fetch_file(self, path: Path, state: SourceState) -> FetchResult:
        try:
            stat = path.stat()
            marker = f"{stat.st_mtime_ns}:{stat.st_size}"
            if state.etag == marker:
                return FetchResult(not_modified=True)
            content = path.read_bytes()
        except FileNotFoundError:
            raise PlatformError(ErrorKind.NOT_FOUND, f"{self.what}: no such file {path}") from None
        except OSError as exc:
            raise PlatformError(ErrorKind.NETWORK, f"{self.what}: cannot read {path} ({exc.strerror})") from None
        result = parse_feed(content, kind=self.watch.kind, what=self.what)
        state.etag = marker
        return result
