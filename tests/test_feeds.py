"""RSS/Atom parsing on the recorded real feeds, and conditional GET over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import feedparser
import httpx
import pytest
import respx

from core.config import AccountConfig, Watch
from core.errors import ErrorKind, PlatformError
from monitors.base import SourceState
from monitors.feeds import FeedSource, parse_feed, unwrap_google_link
from tests.conftest import FEEDS

ALL_FEEDS = sorted(FEEDS.rglob("*.xml"))
ACCOUNT = AccountConfig(id="blog", platform="rss", moderators=["a", "b"], watch=[Watch(url="x")])


@pytest.mark.parametrize("path", ALL_FEEDS, ids=lambda p: p.name)
def test_every_recorded_feed_parses_without_crashing(path: Path) -> None:
    result = parse_feed(path.read_bytes(), kind="comment", what=path.name)
    for item in result.items:
        assert item.external_id and isinstance(item.text, str)
        assert item.created_at is None or item.created_at.tzinfo is not None


def test_entry_counts_on_known_feeds() -> None:
    counts = {p.name: len(parse_feed(p.read_bytes(), kind="post", what=p.name).items) for p in ALL_FEEDS}
    assert counts["youtube_atom.xml"] == 15
    assert counts["google_alerts_atom.xml"] == 20
    assert counts["RSSWithComments.xml"] == 30
    assert counts["TechCrunch.xml"] == 20


def test_truncated_feed_keeps_the_entries_it_has() -> None:
    result = parse_feed((FEEDS / "InvalidDateFormat.xml").read_bytes(), kind="comment", what="truncated")
    assert [i.external_id for i in result.items] == ["http://example.com/item0", "http://example.com/item1"]
    assert result.warnings  # malformed but readable is logged, not fatal


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("demoronize-1.xml", None, "don\u2019t"),
        ("http_text_xml_charset_2.xml", "text/xml; charset=windows-1252", "This is a \xa3\u201ctest.\u201d"),
    ],
)
def test_mis_encoded_feeds_decode(name: str, content_type: str | None, expected: str) -> None:
    result = parse_feed((FEEDS / "encoding" / name).read_bytes(), kind="comment", content_type=content_type, what=name)
    assert result.items[0].text == expected


def test_feeds_without_entries_are_not_errors() -> None:
    for name in ("euc-kr.xml", "utf-16le-bom.xml"):
        assert parse_feed((FEEDS / "encoding" / name).read_bytes(), kind="comment", what=name).items == []


def test_garbage_is_a_bad_payload_error() -> None:
    with pytest.raises(PlatformError) as exc:
        parse_feed(b"\x00\x01 this is not a feed {", kind="comment", what="junk")
    assert exc.value.kind is ErrorKind.BAD_PAYLOAD
    with pytest.raises(PlatformError):
        parse_feed(b"<html><body>Login required</body></html>", kind="comment", what="html")


def test_google_alerts_links_are_unwrapped() -> None:
    result = parse_feed((FEEDS / "google_alerts_atom.xml").read_bytes(), kind="mention", what="alerts")
    assert result.items[0].url and result.items[0].url.startswith("https://www.aglobalmarketresearch.com/")
    assert all("google.com/url" not in (i.url or "") for i in result.items)
    assert "<b>" not in result.items[0].text
    assert unwrap_google_link("https://example.org/a?b=c") == "https://example.org/a?b=c"


def test_youtube_feed_items_carry_media_links_but_nothing_is_downloaded() -> None:
    item = parse_feed((FEEDS / "youtube_atom.xml").read_bytes(), kind="post", what="yt").items[0]
    assert item.external_id == "yt:video:5shykyfmb28"
    assert any("ytimg.com" in u for u in item.media_urls)
    assert "published_parsed" not in item.raw  # raw payload is JSON-safe


URL = "https://school.example/comments/feed"


def _fetch(state: SourceState) -> object:
    source = FeedSource(ACCOUNT, Watch(url=URL))

    async def go() -> object:
        async with httpx.AsyncClient() as client:
            return await source.fetch(client, state)

    return asyncio.run(go())


@respx.mock
def test_conditional_get_and_a_304_is_never_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    body = (FEEDS / "a10.xml").read_bytes()
    route = respx.get(URL)
    route.side_effect = [
        httpx.Response(200, content=body, headers={"ETag": '"v1"', "Last-Modified": "Sat, 21 Nov 2026 09:00:00 GMT"}),
        httpx.Response(304),
    ]
    state = SourceState()
    first = _fetch(state)
    assert len(first.items) == 5 and state.etag == '"v1"'  # type: ignore[attr-defined]
    calls = []
    monkeypatch.setattr(feedparser, "parse", lambda *a, **k: calls.append(1))
    second = _fetch(state)
    assert second.not_modified and second.items == []  # type: ignore[attr-defined]
    assert calls == []
    sent = route.calls[1].request.headers
    assert sent["If-None-Match"] == '"v1"' and sent["If-Modified-Since"] == "Sat, 21 Nov 2026 09:00:00 GMT"


@respx.mock
@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (httpx.Response(401), ErrorKind.AUTH),
        (httpx.Response(403), ErrorKind.FORBIDDEN),
        (httpx.Response(404), ErrorKind.NOT_FOUND),
        (httpx.Response(503), ErrorKind.SERVER),
        (httpx.Response(429, headers={"Retry-After": "120"}), ErrorKind.RATE_LIMITED),
    ],
)
def test_http_failures_are_classified(response: httpx.Response, kind: ErrorKind) -> None:
    respx.get(URL).mock(return_value=response)
    with pytest.raises(PlatformError) as exc:
        _fetch(SourceState())
    assert exc.value.kind is kind
    if kind is ErrorKind.RATE_LIMITED:
        assert exc.value.retry_in_s == 120


@respx.mock
def test_timeouts_and_network_errors_are_classified() -> None:
    respx.get(URL).mock(side_effect=httpx.ConnectTimeout("slow"))
    with pytest.raises(PlatformError) as exc:
        _fetch(SourceState())
    assert exc.value.kind is ErrorKind.TIMEOUT
    respx.get(URL).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(PlatformError) as exc:
        _fetch(SourceState())
    assert exc.value.kind is ErrorKind.NETWORK


def test_local_file_feeds_use_their_mtime_as_a_validator(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes((FEEDS / "a10.xml").read_bytes())
    source = FeedSource(ACCOUNT, Watch(url="feed.xml"), base_dir=str(tmp_path))
    state = SourceState()

    async def go() -> list[object]:
        async with httpx.AsyncClient() as client:
            return [await source.fetch(client, state), await source.fetch(client, state)]

    first, second = asyncio.run(go())
    assert len(first.items) == 5 and second.not_modified  # type: ignore[attr-defined]
