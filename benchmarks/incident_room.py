"""Incident room page times: the list with 500 incidents, an incident page and a brand page with 48 hours
of history, as HTML and as JSON, rendered by the worker's code and fetched over HTTP on loopback.

Setup (printed): 100 brands with 48 h of 5-minute chart points each, 500 incidents spread over the last
7 days (3 events each, explanations shaped like the sample's), rendered by ``streams.web`` and served by a
bare aiohttp server (the web server Faust uses) on 127.0.0.1. Prints median and p95 per page; asserts nothing.

    .venv/bin/python benchmarks/incident_room.py
"""
from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
from aiohttp import ClientSession, web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.tools.broker import free_port  # noqa: E402
from streams.web.pages import brand_page, incident_page, list_page  # noqa: E402
from streams.web.room import Room  # noqa: E402

BRANDS, INCIDENTS, BUCKET_S, REQUESTS = 100, 500, 300, 30


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sample(i: int) -> dict:
    return {"id": str(i), "author": f"@user{i}", "text": "Richiamo dei prodotti, contaminazione da listeria: " * 4,
            "url": f"https://twitter.example/u/status/{i}", "reach": 1000.0 + i, "score": -0.8}


def build(now: float) -> Room:
    rng = random.Random(7)
    room = Room()
    end = int(now // BUCKET_S) * BUCKET_S
    for b in range(BRANDS):
        for start in range(end - 48 * 3600, end, BUCKET_S):
            expected = 20 + 10 * rng.random()
            room.add_point({"brand": f"Brand {b}", "start": start, "bucket_seconds": BUCKET_S,
                            "observed": rng.randint(5, 40), "expected": expected, "low": expected / 2,
                            "high": expected * 2, "negative_share": rng.random() * 0.4,
                            "baseline_negative_share": 0.2, "incident": None})
    explanation = {"observed": 120, "expected": 20.5, "volume_ratio": 5.9, "negative_share": 0.7,
                   "baseline_negative_share": 0.2, "reach": 1e6, "baseline_reach": 1e5,
                   "top_terms": [{"term": f"term{t}", "count": 10, "lift": 5.0} for t in range(8)],
                   "most_reached": [sample(i) for i in range(5)], "most_negative": [sample(i) for i in range(5, 10)],
                   "languages": {"it": 80, "en": 40}, "sources": {"twitter": 100, "news": 20}}
    for n in range(INCIDENTS):
        started = end - rng.randint(1, 7 * 24 * 12 - 12) * BUCKET_S
        base = {"schema_version": 1, "incident_id": f"inc-{n:04d}", "kind": "crisis" if n % 3 else "opportunity",
                "brand": f"Brand {n % BRANDS}", "started_at": rfc3339(started), "bucket_seconds": BUCKET_S,
                "explanation": explanation, "emitted_at": rfc3339(now)}
        events = [("opened", started, 8.0), ("updated", started + 900, 12.0)]
        if n % 5:
            events.append(("resolved", started + 7200, 0.5))
        for seq, (event, at, severity) in enumerate(events):
            room.add_alert({**base, "event": event, "event_id": f"inc-{n:04d}:{seq}", "at": rfc3339(at),
                            "severity": severity})
    return room


def serve(room: Room, now: float) -> web.Application:
    async def incidents(request):
        data = room.incident_list(now)
        return web.json_response(body=orjson.dumps(data)) if request.path.startswith("/api") else \
            web.Response(text=list_page(data, sorted(room.names.values()), "en"), content_type="text/html")

    async def incident(request):
        data = room.incident(request.match_info["incident_id"])
        return web.json_response(body=orjson.dumps(data)) if request.path.startswith("/api") else \
            web.Response(text=incident_page(data, "en"), content_type="text/html")

    async def brand(request):
        data = room.brand(request.match_info["brand"], now)
        return web.json_response(body=orjson.dumps(data)) if request.path.startswith("/api") else \
            web.Response(text=brand_page(data, "en"), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", incidents)
    app.router.add_get("/api/incidents", incidents)
    app.router.add_get("/incidents/{incident_id}", incident)
    app.router.add_get("/api/incidents/{incident_id}", incident)
    app.router.add_get("/brands/{brand}", brand)
    app.router.add_get("/api/brands/{brand}", brand)
    return app


async def main() -> None:
    now = time.time()
    started = time.perf_counter()
    room = build(now)
    print(f"setup: {BRANDS} brands x 48 h of {BUCKET_S} s points, {INCIDENTS} incidents over 7 days "
          f"(room built in {time.perf_counter() - started:.1f} s); {REQUESTS} GETs per page over HTTP on loopback")
    open_one = next(i for i in room.incidents.values() if i.state == "open").incident_id
    runner = web.AppRunner(serve(room, now), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with ClientSession() as session:
            for name, path in (("list, 500 incidents", "/"), ("list JSON", "/api/incidents"),
                               ("incident page", f"/incidents/{open_one}"), ("incident JSON", f"/api/incidents/{open_one}"),
                               ("brand page, 48 h", "/brands/Brand%200"), ("brand JSON", "/api/brands/Brand%200")):
                times, size = [], 0
                for _ in range(REQUESTS):
                    t0 = time.perf_counter()
                    async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                        body = await response.read()
                        assert response.status == 200, (path, response.status)
                    times.append((time.perf_counter() - t0) * 1000)
                    size = len(body)
                times.sort()
                print(f"{name:22s} median {statistics.median(times):6.1f} ms  p95 {times[int(0.95 * len(times)) - 1]:6.1f} ms"
                      f"  {size / 1024:7.1f} KiB")
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
