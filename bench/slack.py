"""Slack ack latency: 1,000 signed button clicks and 1,000 slash commands sent
over loopback HTTP to the running app (uvicorn), the Web API answered by a local
mock server. Prints p50/p99 of the time until Slack would get its 200.

    python bench/slack.py [--n 1000] [--concurrency 1]

Figures, never assertions. Slack's limit is 3 s; the target for the ack is 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from loopback import serve_in_thread  # noqa: E402

SECRET = "bench-secret"


def signed(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    sig = hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={sig}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight at once (1: one at a time)")
    args = parser.parse_args()

    import httpx

    from hallmonitor.app import create_app
    from hallmonitor.service import Service
    from hallmonitor.surfaces import Options, SlackKit
    from monitors.registry import parse_config
    from storage.db import open_database
    from tests.mock_slack import MockSlack

    tmp = tempfile.mkdtemp(prefix="hm-slack-bench-")
    feed = Path(tmp) / "feed.xml"
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>'
        "<item><guid>q</guid><description>When is the nativity?</description></item></channel></rss>"
    )
    policy = REPO.parent / "shared" / "policies" / "northgate.txt"
    with MockSlack() as mock:
        os.environ.update(SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=mock.url)
        config = parse_config(
            {
                "chat": {"surface": "slack"},
                "schools": [{"id": "s", "name": "Bench Primary", "policy": str(policy)}],
                "staff": [
                    {"id": "a", "name": "A", "roles": ["moderator"], "slack_user": "UA"},
                    {"id": "b", "name": "B", "roles": ["moderator"], "slack_user": "UB"},
                    {"id": "d", "name": "D", "roles": ["dsl"], "slack_user": "UD"},
                ],
                "accounts": [
                    {
                        "id": "blog",
                        "platform": "rss",
                        "moderators": ["a", "b"],
                        "watch": [str(feed)],
                        "channel": {"slack": "CMOD"},
                    }
                ],
            }
        )
        engine = open_database(f"sqlite:///{tmp}/bench.db")
        kit = SlackKit(Options())
        service = Service(config=config, engine=engine, surfaces={"slack": kit.surface(engine)})
        app = create_app(service, start_scheduler=False, routers=[kit.router(service)])
        server, port = serve_in_thread(app)
        asyncio.run(service.tick(all_sources=True))  # one item to click on
        url = f"http://127.0.0.1:{port}/slack/events"

        def click(i: int) -> str:
            return urlencode(
                {
                    "payload": json.dumps(
                        {
                            "type": "block_actions",
                            "user": {"id": "UA"},
                            "team": {"id": "T1"},
                            "api_app_id": "A1",
                            "token": "x",
                            "trigger_id": f"t-click-{i}",  # each interaction its own (replays are dropped)
                            "container": {"type": "message", "channel_id": "CMOD", "message_ts": f"1700.{i}"},
                            "channel": {"id": "CMOD"},
                            "actions": [
                                {
                                    "action_id": "hm:acknowledge",
                                    "value": "1",
                                    "type": "button",
                                    "block_id": "b",
                                    "action_ts": f"{i}.1",
                                }
                            ],
                        }
                    )
                }
            )

        def command(i: int) -> str:
            return urlencode(
                {
                    "command": "/hallmonitor",
                    "text": "queue",
                    "user_id": "UA",
                    "team_id": "T1",
                    "channel_id": "C1",
                    "response_url": mock.url + "response",
                    "trigger_id": f"t-command-{i}",
                    "api_app_id": "A1",
                    "token": "x",
                }
            )

        async def run(make: object) -> list[float]:
            gate = asyncio.Semaphore(args.concurrency)
            times: list[float] = []
            async with httpx.AsyncClient(timeout=10) as http:

                async def one(i: int) -> None:
                    body = make(i)  # type: ignore[operator]
                    async with gate:
                        t = time.perf_counter()
                        r = await http.post(url, content=body, headers=signed(body))
                        times.append((time.perf_counter() - t) * 1000)
                        assert r.status_code == 200, r.text

                await asyncio.gather(*(one(i) for i in range(args.n)))
            return sorted(times)

        print(
            f"bench/slack.py: {args.n} requests each, concurrency {args.concurrency}, loopback HTTP (uvicorn), "
            "mock Slack Web API"
        )
        for label, make in (("button clicks", click), ("slash commands", command)):
            times = asyncio.run(run(make))
            p99 = times[int(0.99 * (len(times) - 1))]
            p50 = statistics.median(times)
            print(f"  {label:<15} ack p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   max {times[-1]:6.1f} ms")
        time.sleep(1.0)
        print(
            f"  follow-up Web API calls seen by the mock: chat.update {len(mock.called('chat.update'))}, "
            f"responses {len(mock.called('response'))}"
        )
        server.should_exit = True


if __name__ == "__main__":
    main()
