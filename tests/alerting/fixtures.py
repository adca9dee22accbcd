"""What the alerting tests share: a hostile but valid alert, and real HTTP servers on loopback."""
from __future__ import annotations

import contextlib
import time

from aiohttp import web

from streams.tools.broker import free_port
from streams.contracts import validate

NASTY = "<!channel> <@U123> @here <script>alert(1)</script> **bold** [phish](http://evil.example) & <http://x|y>"


def make_alert(event: str = "opened", kind: str = "crisis") -> dict:
    samples = [
        {"id": "m1", "author": "@angry<b>", "text": NASTY, "url": "https://example.org/post?a=1&b=<2>|3",
         "reach": 50000.0, "score": -0.95},
        {"id": "m2", "author": "@second", "text": "Servizio pessimo, rimborso negato", "url": "javascript:alert(1)",
         "reach": 12.0, "score": -0.7},
    ]
    alert = {
        "schema_version": 1, "event_id": "inc-7:2", "incident_id": "inc-7", "event": event, "kind": kind,
        "brand": "Caffè <Aurora>", "at": "2026-05-04T13:45:00Z", "started_at": "2026-05-04T13:00:00Z",
        "severity": 9.25, "bucket_seconds": 300,
        "explanation": {
            "observed": 1234, "expected": 101.5, "volume_ratio": 12.16, "negative_share": 0.83,
            "baseline_negative_share": 0.14, "reach": 2500000.0, "baseline_reach": 180000.0,
            "top_terms": [{"term": "rimborso", "count": 320, "lift": 14.2}, {"term": "<!here>", "count": 4, "lift": 3.0}],
            "most_reached": [samples[0]], "most_negative": samples,
            "languages": {"it": 900, "en": 334}, "sources": {"twitter": 1000, "news": 234},
        },
        "emitted_at": "2026-05-04T13:50:01Z",
    }
    assert validate("alert", alert) == []
    return alert


@contextlib.asynccontextmanager
async def http_server(app: web.Application):
    runner = web.AppRunner(app, access_log=None)  # the receiver's own log is not the sender's
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def recording_app(requests: list, responses: list | None = None) -> web.Application:
    """Records each POST; answers with the next (status, headers) from ``responses``, then 200."""
    async def handle(request: web.Request) -> web.Response:
        requests.append((request.path, dict(request.headers), await request.read(), time.monotonic()))
        status, headers = responses.pop(0) if responses else (200, {})
        return web.Response(status=status, headers=headers, text="ok" if status == 200 else "no")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    return app
