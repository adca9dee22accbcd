"""A local webhook receiver that verifies Ascolta's signatures and prints each alert once.

    python -m streams.alerting.receiver --port 8765 --secret S

It is the reference for writing your own (see docs/alerting.md): check the timestamp is fresh, check the
HMAC over ``"<timestamp>.<body>"`` in constant time, then de-duplicate on ``X-Ascolta-Event-Id``, because
delivery is at-least-once.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

import orjson
from aiohttp import web

from .channels.webhook import SIGNATURE_TOLERANCE_S, verify
from .render import LANGUAGES, format_alert

log = logging.getLogger(__name__)


def make_app(secret: str, on_alert: Callable[[dict], None], *, tolerance_s: float = SIGNATURE_TOLERANCE_S,
             seen: set[str] | None = None) -> web.Application:
    """An aiohttp app accepting signed alerts on any path; ``on_alert`` gets each new, verified alert."""
    seen = set() if seen is None else seen

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(secret, request.headers.get("X-Ascolta-Timestamp"), request.headers.get("X-Ascolta-Signature"),
                      body, tolerance_s=tolerance_s):
            log.warning("rejected a request with a missing, stale or wrong signature")
            return web.Response(status=401, text="bad or stale signature\n")
        event_id = request.headers.get("X-Ascolta-Event-Id", "")
        if event_id in seen:
            return web.Response(text="duplicate, ignored\n")  # 2xx: the sender must not retry it
        seen.add(event_id)
        on_alert(orjson.loads(body))
        return web.Response(text="ok\n")

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", receive)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.alerting.receiver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--secret", required=True, help="the worker's ASCOLTA_WEBHOOK_SECRET")
    parser.add_argument("--lang", choices=LANGUAGES, default="en")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    def show(alert: dict) -> None:
        print(format_alert(alert, args.lang) + "\n", flush=True)

    print(f"listening on http://{args.host}:{args.port}/ for signed Ascolta alerts", file=sys.stderr, flush=True)
    web.run_app(make_app(args.secret, show), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
