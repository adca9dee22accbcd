"""Notify: deliver every alert event to the routes that want it, once per route, or dead-letter it.

The agent reads ``alerts``. For each event it picks the routes (:mod:`streams.routing`), sends on all of
them concurrently with retries and rate limits (:mod:`streams.channels`), and only moves on when every route
has either succeeded or dead-lettered the event on ``alerts.deadletter``; so a committed Kafka offset means
the event was handled everywhere. A changelogged table remembers ``"<event_id>|<route>"`` after a success,
so a restarted worker that re-reads the topic does not send again. That is at-least-once, not exactly-once:
a crash between a send and its record re-sends, and receivers de-duplicate on ``X-Ascolta-Event-Id``.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import time
from datetime import datetime, timezone

import orjson

from . import metrics
from .app import JSON_SCHEMA, alerts_deadletter_topic, alerts_topic, app, settings
from .channels import Outcome, RateLimiter, RetryPolicy, deliver_with_retries, send_alert
from .contracts import format_rfc3339, validate
from .routing import Route, describe, load_routes, wants
from .seen import SeenKeys

log = logging.getLogger(__name__)

ROUTES: list[Route] = load_routes(settings.notify_config)  # a bad configuration stops the worker at start
POLICY = RetryPolicy(
    max_attempts=settings.delivery_max_attempts,
    backoff_s=settings.delivery_backoff_s,
    max_backoff_s=settings.delivery_max_backoff_s,
    deadline_s=settings.delivery_deadline_s,
    attempt_timeout_s=settings.delivery_timeout_s,
)
ROUTING_FIELDS = {"event_id": str, "incident_id": str, "brand": str, "kind": str, "event": str, "severity": (int, float)}
RETENTION_S = settings.delivery_retention_days * 86400

# "<event_id>|<route>" -> {"outcome": "delivered"|"deadlettered", "at": epoch seconds, "p": partition}
deliveries = SeenKeys(app, "notify-deliveries", horizon_s=RETENTION_S, partitions=settings.partitions,
                      schema=JSON_SCHEMA, purge_every_s=3600.0)
# "<incident_id>|<route>" -> {"at": epoch seconds, "p": partition}: the route has been told about the incident
notified_incidents = SeenKeys(app, "notify-incidents", horizon_s=RETENTION_S, partitions=settings.partitions,
                              schema=JSON_SCHEMA, purge_every_s=3600.0)

_limiters = {route.name: RateLimiter(route.rate_per_second) for route in ROUTES}
_http = None


def http_session():
    """One aiohttp session (connection pool) per worker, opened on first use inside the event loop."""
    global _http
    if _http is None:
        import aiohttp

        _http = aiohttp.ClientSession()
    return _http


@app.on_before_shutdown.connect
async def close_http_session(app, **kwargs) -> None:
    if _http is not None:
        await _http.close()


def parse_alert(value: bytes) -> tuple[dict | None, str]:
    """The alert event, or None and why it cannot be routed. Schema problems short of that are logged only:
    an alert that can be routed is worth delivering even if, say, a sample lacks a field."""
    try:
        alert = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(alert, dict):
        return None, "not a JSON object"
    for name, kind in ROUTING_FIELDS.items():
        if not isinstance(alert.get(name), kind) or isinstance(alert.get(name), bool):
            return None, f"field {name!r} missing or of the wrong type"
    problems = validate("alert", alert)
    if problems:
        log.warning("alert %s does not match schemas/alert.v1.json: %s", alert["event_id"], problems)
    return alert, ""


def deadletter_record(*, reason: str, detail: str, message, alert: dict | None, route: Route | None,
                      outcome: Outcome | None) -> dict:
    """What ``alerts.deadletter`` holds: enough to re-send by hand, and why it was not delivered."""
    return {
        "schema_version": 1,
        "reason": reason,
        "detail": detail,
        "route": route.name if route else None,
        "channel": route.channel if route else None,
        "attempts": outcome.attempts if outcome else 0,
        "last_error": outcome.last_error if outcome else None,
        "event_id": alert["event_id"] if alert else None,
        "alert": alert,
        "original_base64": None if alert else base64.b64encode(message.value or b"").decode(),
        "source": {"topic": message.topic, "partition": message.partition, "offset": message.offset},
        "dead_lettered_at": format_rfc3339(datetime.now(timezone.utc)),
    }


async def deliver_once(route: Route, alert: dict, message) -> None:
    """Deliver ``alert`` on ``route`` unless the table says it already was; record the result."""
    key = f"{alert['event_id']}|{route.name}"
    if deliveries.get(key):
        metrics.DELIVERIES.labels(route.channel, route.name, "duplicate").inc()
        log.info("alert %s already handled on route %s: not sending again", alert["event_id"], route.name)
        return
    started = time.monotonic()
    attempts = metrics.DELIVERY_ATTEMPTS
    outcome = await deliver_with_retries(
        lambda: send_alert(route, alert, http_session(), POLICY.attempt_timeout_s), POLICY, _limiters[route.name],
        on_attempt=lambda result: attempts.labels(route.channel, route.name, result).inc(),
    )
    metrics.DELIVERY_SECONDS.labels(route.channel, route.name).observe(time.monotonic() - started)
    now = time.time()
    if outcome.delivered:
        deliveries.add(key, partition=message.partition, now=now, outcome="delivered")
        notified_incidents.add(f"{alert['incident_id']}|{route.name}", partition=message.partition, now=now)
        metrics.DELIVERIES.labels(route.channel, route.name, "delivered").inc()
        log.info("alert %s delivered on route %s (%s) after %d attempt(s) in %.2f s", alert["event_id"],
                 route.name, route.channel, outcome.attempts, time.monotonic() - started)
        return
    record = deadletter_record(reason=outcome.reason, detail=outcome.detail, message=message, alert=alert,
                               route=route, outcome=outcome)
    await alerts_deadletter_topic.send(key=alert["event_id"].encode(), value=orjson.dumps(record))
    deliveries.add(key, partition=message.partition, now=now, outcome="deadlettered")
    metrics.DELIVERIES.labels(route.channel, route.name, "deadlettered").inc()
    metrics.ALERTS_DEADLETTERED.labels(route.channel, outcome.reason).inc()
    log.error("alert %s dead-lettered on route %s (%s): %s (%s)", alert["event_id"], route.name, route.channel,
              outcome.reason, outcome.detail)


async def handle(message) -> None:
    alert, problem = parse_alert(message.value)
    if alert is None:
        record = deadletter_record(reason="invalid_alert", detail=problem, message=message, alert=None, route=None,
                                   outcome=None)
        await alerts_deadletter_topic.send(key=message.key, value=orjson.dumps(record))
        metrics.ALERTS_DEADLETTERED.labels("none", "invalid_alert").inc()
        log.error("unroutable alert at %s[%d]@%d dead-lettered: %s", message.topic, message.partition,
                  message.offset, problem)
        return
    chosen = [
        route for route in ROUTES
        if wants(route, alert, bool(notified_incidents.get(f"{alert['incident_id']}|{route.name}")))
    ]
    await asyncio.gather(*(deliver_once(route, alert, message) for route in chosen))


@app.agent(alerts_topic)
async def notify(stream):
    async for event in stream.events():
        await handle(event.message)
        now = time.time()  # delivery records older than the retention are forgotten, once an hour per partition
        deliveries.purge_if_due(event.message.partition, now)
        notified_incidents.purge_if_due(event.message.partition, now)


@app.task
async def announce_routes() -> None:
    if ROUTES:
        log.info("notification routes: %s", describe(ROUTES))
    else:
        log.info("no notification routes (ASCOLTA_NOTIFY_CONFIG, ASCOLTA_WEBHOOK_URL): alerts are not delivered")
