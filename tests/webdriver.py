"""A small W3C WebDriver client for the system's Chromium (Debian `chromium` and `chromium-driver`).

It speaks the WebDriver HTTP protocol to chromedriver on loopback, which is all the
web-view tests need (open a URL, read the page, take a screenshot), without a
browser-automation dependency. Tests call `browser_or_skip()`: it skips, saying what
to install, when Chromium or its driver is absent.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
DRIVER = "/usr/bin/chromedriver"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Driver:
    """chromedriver on a free loopback port; `browser()` opens a fresh profile (no cookies)."""

    def __init__(self, binary: str, driver: str) -> None:
        self.binary, self.port = binary, _free_port()
        self.process = subprocess.Popen(
            [driver, f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        for _ in range(100):
            try:
                if self.http.get("/status").json()["value"]["ready"]:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        self.close()
        raise RuntimeError("chromedriver did not start")

    def browser(self, *, width: int = 390, height: int = 844) -> Browser:
        profile = tempfile.mkdtemp(prefix="hm-chromium-")
        options = {
            "binary": self.binary,
            "args": [*ARGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"],
        }
        answer = self.http.post(
            "/session", json={"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}}
        )
        value = answer.json()["value"]
        if "sessionId" not in value:
            raise RuntimeError(f"chromium did not start: {value.get('message', value)}")
        return Browser(self.http, value["sessionId"], Path(profile))

    def close(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(timeout=10)


class Browser:
    def __init__(self, http: httpx.Client, session: str, profile: Path) -> None:
        self.http, self.session, self.profile = http, session, profile

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.http.request(method, f"/session/{self.session}{path}", json=body)
        value = answer.json()["value"]
        if answer.status_code >= 400:
            raise RuntimeError(f"webdriver {path}: {value}")
        return value

    def open(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return str(self._call("GET", "/url"))

    @property
    def text(self) -> str:
        """What a reader sees: the page's rendered text."""
        return str(self._call("POST", "/execute/sync", {"script": "return document.body.innerText;", "args": []}))

    def script(self, source: str) -> Any:
        return self._call("POST", "/execute/sync", {"script": source, "args": []})

    @property
    def source(self) -> str:
        return str(self._call("GET", "/source"))

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))
        return path

    def close(self) -> None:
        self._call("DELETE", "")
        shutil.rmtree(self.profile, ignore_errors=True)


def browser_or_skip() -> Driver:
    binary = next((b for b in CHROMIUM if Path(b).exists()), None)
    if binary is None or not Path(DRIVER).exists():
        pytest.skip("headless Chromium not installed: apt-get install -y chromium chromium-driver")
    return Driver(binary, DRIVER)
