"""A local stand-in for the Slack Web API on loopback (as bolt-python's own tests do),
file uploads (files_upload_v2's upload URL) included.

It answers the methods Hall Monitor calls, records every call, and can be told
to fail (HTTP 500) or rate-limit (HTTP 429 with Retry-After) for a while, to answer
chat.postMessage slowly, or to hold every chat.postMessage answer until a gate opens.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.loopback import LoopbackServer

GATE_GUARD_S = 60.0  # the longest a held answer waits, so a failing test cannot hang


class MockSlack:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.uploads: dict[str, bytes] = {}  # file id -> bytes received at the upload URL
        self.file_count = 0
        self.fail_next = 0
        self.rate_limit_next = 0
        self.fail_users: set[str] = set()  # conversations.open fails (HTTP 500) for these user ids
        self.posted = 0
        self.delay_s = 0.0  # how long each chat.postMessage takes to answer (the message is posted at once)
        self.gate: threading.Event | None = None  # when set up: chat.postMessage answers wait until it is set
        self.held = 0  # chat.postMessage answers waiting at the gate now
        self.history: dict[str, list[dict[str, Any]]] = {}  # channel -> messages, newest first, with metadata
        self.refuse: dict[str, tuple[int, int]] = {}  # method -> (HTTP status, how many more times)
        self._filenames: dict[str, str] = {}  # file id -> its name, from files.getUploadURLExternal
        self._lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/upload/"):  # step 2 of files_upload_v2: the file's bytes
                    with mock._lock:
                        mock.uploads[self.path.rsplit("/", 1)[-1]] = raw
                    self._send(200, {"ok": True})
                    return
                body = raw.decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    data = json.loads(body or "{}")
                else:
                    data = {k: v[0] for k, v in parse_qs(body).items()}
                    for key in ("blocks", "view"):
                        if isinstance(data.get(key), str):
                            data[key] = json.loads(data[key])
                path, _, query = self.path.partition("?")
                data.update({k: v[0] for k, v in parse_qs(query).items()})
                method = path.rsplit("/", 1)[-1]
                with mock._lock:
                    if mock.rate_limit_next:
                        mock.rate_limit_next -= 1
                        self._send(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
                        return
                    status, times = mock.refuse.get(method, (0, 0))
                    if times:
                        mock.refuse[method] = (status, times - 1)
                        self._send(status, {"ok": False, "error": "internal_error" if status >= 500 else "refused"})
                        return
                    if mock.fail_next or (method == "conversations.open" and data.get("users") in mock.fail_users):
                        mock.fail_next = max(0, mock.fail_next - 1)
                        self._send(500, {"ok": False, "error": "internal_error"})
                        return
                    mock.calls.append((method, data))
                    if method == "chat.postMessage":
                        mock.posted += 1
                    answer = mock.answer(method, data)
                if method == "chat.postMessage" and mock.delay_s:
                    time.sleep(mock.delay_s)  # slow to answer; the message is already in the conversation
                if method == "chat.postMessage" and mock.gate is not None:
                    with mock._lock:
                        mock.held += 1
                    mock.gate.wait(GATE_GUARD_S)  # posted already; the answer waits (a test that forgets, not for ever)
                    with mock._lock:
                        mock.held -= 1
                self._send(200, answer)

            do_GET = do_POST  # the SDK reads conversations.history with GET

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = LoopbackServer(Handler)
        self.url = self.server.base + "/api/"

    def answer(self, method: str, data: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "user": "hallmonitor"}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(data.get("users", "X"))}}
        if method == "chat.postMessage":  # each message its own ts, as Slack does
            ts = f"1700000000.{self.posted:06d}"
            meta = data.get("metadata")
            message = {
                "ts": ts,
                "text": data.get("text"),
                "metadata": json.loads(meta) if isinstance(meta, str) else meta,
            }
            self.history.setdefault(str(data.get("channel")), []).insert(0, message)
            return {"ok": True, "channel": data.get("channel"), "ts": ts}
        if method == "conversations.history":
            return {"ok": True, "messages": list(self.history.get(str(data.get("channel")), []))}
        if method == "chat.update":
            return {"ok": True, "channel": data.get("channel"), "ts": data.get("ts")}
        if method == "files.getUploadURLExternal":
            self.file_count += 1
            file_id = f"F{self.file_count}"
            self._filenames[file_id] = str(data.get("filename"))
            return {"ok": True, "file_id": file_id, "upload_url": self.url.removesuffix("api/") + f"upload/{file_id}"}
        if method == "files.completeUploadExternal":
            files = data.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            shared = [{"id": f["id"], "name": self._filenames.get(f["id"]), "title": f.get("title")} for f in files]
            if data.get("channel_id"):  # shared in the conversation: a message with the files, as Slack does
                ts = f"1700000000.{self.posted:06d}{len(self.history.get(str(data['channel_id']), []))}"
                self.history.setdefault(str(data["channel_id"]), []).insert(0, {"ts": ts, "files": shared})
            return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in shared]}
        return {"ok": True}

    def called(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [data for m, data in self.calls if m == method]

    def __enter__(self) -> MockSlack:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.gate is not None:  # answers still held go out, so their threads end
            self.gate.set()
        self.server.close()
