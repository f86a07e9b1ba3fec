"""The one HTTP helper every platform call goes through: kinds, Retry-After, typed JSON errors,
the streaming size cap (gzip bombs included) and the overall deadline, over respx and loopback."""

from __future__ import annotations

import asyncio
import gzip

import httpx
import pytest
import respx

from core.config import AccountConfig, Watch
from core.errors import ErrorKind, PlatformError
from monitors.base import SourceState
from monitors.http import Answer, _Decoder, call
from monitors.wordpress import WordPressSource

URL = "https://api.example/thing"


def fetch(**kw: object) -> Answer:
    async def go() -> Answer:
        async with httpx.AsyncClient() as client:
            return await call(client, "GET", str(kw.pop("url", URL)), what="Example", **kw)  # type: ignore[arg-type]

    return asyncio.run(go())


def failure(**kw: object) -> PlatformError:
    with pytest.raises(PlatformError) as caught:
        fetch(**kw)
    return caught.value


@respx.mock
@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, ErrorKind.AUTH),
        (403, ErrorKind.FORBIDDEN),
        (404, ErrorKind.NOT_FOUND),
        (410, ErrorKind.NOT_FOUND),
        (429, ErrorKind.RATE_LIMITED),
        (503, ErrorKind.SERVER),
        (400, ErrorKind.BAD_PAYLOAD),
        (302, ErrorKind.BAD_PAYLOAD),
    ],
)
def test_status_becomes_a_kind_with_a_sentence(status: int, kind: ErrorKind) -> None:
    respx.get(URL).mock(return_value=httpx.Response(status, headers={"Retry-After": "120"}))
    error = failure()
    assert error.kind == kind and str(error).startswith("Example: ")
    if kind in (ErrorKind.RATE_LIMITED, ErrorKind.SERVER):
        assert error.retry_in_s == 120


@respx.mock
def test_transport_failures_are_kinds_too() -> None:
    respx.get(URL).mock(side_effect=httpx.ConnectError("refused"))
    assert failure().kind == ErrorKind.NETWORK
    respx.get(URL).mock(side_effect=httpx.ReadTimeout("slow"))
    assert failure().kind == ErrorKind.TIMEOUT


@respx.mock
def test_json_is_decoded_with_a_typed_error() -> None:
    respx.get(URL).mock(return_value=httpx.Response(200, json={"a": 1}))
    assert fetch().json_object() == {"a": 1}
    respx.get(URL).mock(
        return_value=httpx.Response(200, text="<html>Maintenance</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(PlatformError, match=r"not JSON \(text/html") as caught:
        fetch().json_object()
    assert caught.value.kind == ErrorKind.BAD_PAYLOAD
    respx.get(URL).mock(return_value=httpx.Response(200, json=[1, 2]))
    with pytest.raises(PlatformError, match="expected a JSON object"):
        fetch().json_object()


@respx.mock
def test_a_wordpress_html_answer_is_bad_payload_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WP_USER", "u")
    monkeypatch.setenv("WP_PASS", "p")
    respx.get("https://school.example/wp-json/wp/v2/comments").mock(
        return_value=httpx.Response(200, text="<!doctype html><p>Coming soon</p>")
    )
    account = AccountConfig.model_validate(
        {"id": "site", "platform": "wordpress", "credentials": {"username": "WP_USER", "app_password": "WP_PASS"}}
    )
    source = WordPressSource(account, Watch(url="https://school.example"))

    async def go() -> None:
        async with httpx.AsyncClient() as client:
            await source.fetch(client, SourceState())

    with pytest.raises(PlatformError, match="not JSON") as caught:
        asyncio.run(go())
    assert caught.value.kind == ErrorKind.BAD_PAYLOAD


@respx.mock
def test_a_body_over_the_cap_is_refused() -> None:
    respx.get(URL).mock(return_value=httpx.Response(200, content=b"x" * 5000))
    error = failure(max_bytes=4096)
    assert error.kind == ErrorKind.BAD_PAYLOAD and "larger than 4 KiB" in str(error)
    assert fetch(max_bytes=5000).content == b"x" * 5000


@respx.mock
def test_a_gzip_bomb_is_refused_on_decoded_bytes() -> None:
    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024))  # 32 MiB that travels as ~32 KiB
    assert len(bomb) < 64 * 1024
    respx.get(URL).mock(return_value=httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"}))
    error = failure(max_bytes=1024 * 1024)
    assert error.kind == ErrorKind.BAD_PAYLOAD and "larger than 1024 KiB" in str(error)
    small = gzip.compress(b'{"ok": true}')
    respx.get(URL).mock(return_value=httpx.Response(200, content=small, headers={"Content-Encoding": "gzip"}))
    assert fetch().json_object() == {"ok": True}


def test_no_single_decoding_step_outgrows_the_cap() -> None:
    decoder = _Decoder("gzip", "Example")
    out = decoder.decode(gzip.compress(b"\0" * (8 * 1024 * 1024)), 1000)
    assert len(out) == 1001  # one byte more than room says "too big"; the rest is never inflated


def test_a_trickling_answer_fails_at_the_deadline(trickle_url: str) -> None:
    async def go() -> None:
        async with httpx.AsyncClient(timeout=5) as client:  # every read arrives well inside 5 s
            await call(client, "GET", trickle_url, what="Slow feed", deadline_s=1.0)

    with pytest.raises(PlatformError, match="no complete answer within 1 s") as caught:
        asyncio.run(go())
    assert caught.value.kind == ErrorKind.TIMEOUT


@respx.mock
@pytest.mark.parametrize(
    ("body", "words"),
    [
        (gzip.compress(b'{"ok": true}' * 500)[:-12], "ends early"),  # cut off before its end
        (b"\x1f\x8b\x08\x00" + b"not gzip at all" * 20, "corrupt"),
        (b'{"ok": true}', "corrupt"),  # labelled gzip, sent plain
    ],
)
def test_a_broken_gzip_body_is_a_bad_payload_not_a_network_error(body: bytes, words: str) -> None:
    respx.get(URL).mock(
        return_value=httpx.Response(200, stream=httpx.ByteStream(body), headers={"Content-Encoding": "gzip"})
    )
    error = failure()
    assert error.kind == ErrorKind.BAD_PAYLOAD and words in str(error)


@respx.mock
def test_an_empty_gzip_labelled_304_is_fine() -> None:
    respx.get(URL).mock(return_value=httpx.Response(304, headers={"Content-Encoding": "gzip"}))
    assert fetch().status_code == 304
