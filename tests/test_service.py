"""`hallmonitor run` as a real process on loopback: cards appear, /healthz answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_shows_cards_for_the_example_feeds_and_serves_health(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "PYTHONUNBUFFERED": "1",
        "HALLMONITOR_HEALTH_TOKEN": "health-token",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hallmonitor.cli",
            "run",
            "--config",
            str(REPO / "config.example.toml"),
            "--port",
            str(port),
            "--no-commands",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        health = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/healthz", headers={"Authorization": "Bearer health-token"}, timeout=2
                )
                body = response.json()
                ready = body["sources"] and all(s["last_success_at"] for s in body["sources"])
                if response.status_code == 200 and ready and body["outbox_pending"] == 0:
                    health = body
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert health is not None, "service did not become healthy within 60 s"
        assert health["status"] == "ok" and health["failing"] == 0 and len(health["sources"]) == 3
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=20)
    assert "Safeguarding concern for the DSL" in output, output[-3000:]
    assert "[card]" in output and "Question on School news blog" in output
    assert "Traceback" not in output
