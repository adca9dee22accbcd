"""The incident room on the worker's web port: Faust pages over a :class:`~streams.web.room.Room`.

Faust wiring only. Every worker reads all partitions of ``alerts`` and of the timeline topic from the start
with a plain consumer outside the group (no offsets committed, no partitions taken from the pipeline), so
whichever worker a Service routes a request to knows every brand (docs/incident-room.md says why this
and not Faust's table routing). Read-only: GET only; with ``ASCOLTA_UI_TOKEN`` set every page and API call
needs the token (``Authorization: Bearer``, or ``?token=`` once, which sets a cookie).
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import time

import orjson
from faust.web import Request, Response, View

from ..app import app, settings
from ..detection.incidents import KINDS
from ..kafka import client_options
from .pages import brand_page, choose_language, incident_page, list_page, not_found_page
from .room import RecordError, Room

log = logging.getLogger(__name__)

room = Room()
TOKEN = settings.read_ui_token()  # a token file that cannot be read stops the worker at start
COOKIE = "ascolta_ui"
PRUNE_EVERY_S = 600.0
HEADERS = {
    # No script, no outside resource, no framing: an escaping slip cannot run code or leak a mention.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@app.task
async def read_room() -> None:
    """Feed the room from every partition of the alerts and timeline topics, forever."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topics = (settings.alerts_topic, settings.timeline_topic)
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = []
        for topic in topics:
            for _ in range(60):  # the topics exist (declare_topics); metadata may lag a moment behind
                await consumer.topics()  # refreshes the cluster metadata
                found = consumer.partitions_for_topic(topic)
                if found:
                    break
                await asyncio.sleep(1.0)
            else:
                raise RuntimeError(f"incident room: topic {topic!r} is not on the broker after 60 s")
            partitions += [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        log.info("incident room reading %d partitions of %s", len(partitions), ", ".join(topics))
        pruned = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for tp, messages in batches.items():
                add = room.add_alert if tp.topic == settings.alerts_topic else room.add_point
                for message in messages:
                    try:
                        add(orjson.loads(message.value))
                    except (RecordError, orjson.JSONDecodeError, TypeError) as exc:  # TypeError: a null value
                        log.warning("incident room skips %s[%d]@%d: %s", tp.topic, tp.partition, message.offset, exc)
            if time.monotonic() - pruned > PRUNE_EVERY_S:
                room.prune(time.time())
                pruned = time.monotonic()
    finally:
        await consumer.stop()


class RoomView(View):
    """Token check, language, and HTML or JSON for every incident room page."""

    def authorised(self, request: Request) -> tuple[bool, str | None]:
        """(allowed, token to set as a cookie)."""
        if not TOKEN:
            return True, None
        given = request.query.get("token")
        if given and hmac.compare_digest(given.encode(), TOKEN.encode()):
            return True, given
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), TOKEN.encode()):
            return True, None
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), TOKEN.encode()), None

    def answer(self, request: Request, build_json, build_html, api: bool) -> Response:
        allowed, set_cookie = self.authorised(request)
        if not allowed:
            return self.text("this incident room needs its access token (Authorization: Bearer, or ?token=)\n",
                             status=401, headers={**HEADERS, "WWW-Authenticate": "Bearer"})
        data = build_json()
        status = 200 if data is not None else 404
        headers = dict(HEADERS)
        if set_cookie:
            headers["Set-Cookie"] = f"{COOKIE}={set_cookie}; Path=/; HttpOnly; SameSite=Strict"
        if api or "application/json" in request.headers.get("Accept", ""):
            return self.json(data if data is not None else {"error": "not found"}, status=status, headers=headers)
        lang = choose_language(request.query.get("lang"), request.headers.get("Accept-Language"))
        return self.html(build_html(data, lang), status=status, headers=headers)


def _list(request: Request) -> tuple:
    brand, kind = request.query.get("brand", ""), request.query.get("kind", "")
    return brand, kind if kind in KINDS else ""


@app.page("/")
class IncidentsPage(RoomView):
    async def get(self, request: Request) -> Response:
        brand, kind = _list(request)
        return self.answer(
            request, lambda: room.incident_list(time.time(), brand, kind),
            lambda data, lang: list_page(data, sorted(room.names.values()), lang, brand, kind), api=False)


@app.page("/api/incidents")
class IncidentsApi(RoomView):
    async def get(self, request: Request) -> Response:
        brand, kind = _list(request)
        return self.answer(request, lambda: room.incident_list(time.time(), brand, kind), None, api=True)


@app.page("/incidents/{incident_id}")
class IncidentPage(RoomView):
    async def get(self, request: Request, incident_id: str) -> Response:
        return self.answer(request, lambda: room.incident(incident_id),
                           lambda data, lang: incident_page(data, lang) if data else not_found_page(incident_id, lang),
                           api=False)


@app.page("/api/incidents/{incident_id}")
class IncidentApi(RoomView):
    async def get(self, request: Request, incident_id: str) -> Response:
        return self.answer(request, lambda: room.incident(incident_id), None, api=True)


@app.page("/brands/{brand}")
class BrandPage(RoomView):
    async def get(self, request: Request, brand: str) -> Response:
        return self.answer(request, lambda: room.brand(brand, time.time()),
                           lambda data, lang: brand_page(data, lang) if data else not_found_page(brand, lang),
                           api=False)


@app.page("/api/brands/{brand}")
class BrandApi(RoomView):
    async def get(self, request: Request, brand: str) -> Response:
        return self.answer(request, lambda: room.brand(brand, time.time()), None, api=True)
