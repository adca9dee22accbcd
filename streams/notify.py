"""Notify: deliver every alert event to the routes that want it, once per route, or dead-letter it.

Faust wiring of :mod:`streams.alerting`. The agent reads ``alerts``; for each event it picks the routes,
sends on all of them concurrently with retries and rate limits, and only moves on when every route has
either succeeded or dead-lettered the event on ``alerts.deadletter``; so a committed Kafka offset means
the event was handled everywhere. A changelogged table remembers ``"<event_id>|<route>"`` after a success,
so a restarted worker that re-reads the topic does not send again. That is at-least-once, not exactly-once:
a crash between a send and its record re-sends, and receivers de-duplicate on ``X-Ascolta-Event-Id``.
"""
from __future__ import annotations

import asyncio
import logging
import time

import orjson

from . import metrics
from .alerting.delivery import (
    RateLimiter, RetryPolicy, alert_deadletter_record, deliver_with_retries, parse_alert, send_alert,
)
from .alerting.routes import Route, describe, load_routes, wants
from .app import JSON_SCHEMA, alerts_deadletter_topic, alerts_topic, app, settings
from .seen import SeenKeys

log = logging.getLogger(__name__)

ROUTES: list[Route] = load_routes(settings.notify_config, settings.environ)  # a bad configuration stops the worker
POLICY = RetryPolicy(
    max_attempts=settings.delivery_max_attempts,
    backoff_s=settings.delivery_backoff_s,
    max_backoff_s=settings.delivery_max_backoff_s,
    deadline_s=settings.delivery_deadline_s,
    attempt_timeout_s=settings.delivery_timeout_s,
)
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
    record = alert_deadletter_record(reason=outcome.reason, detail=outcome.detail, topic=message.topic,
                                     partition=message.partition, offset=message.offset, original=message.value,
                                     alert=alert, route=route, outcome=outcome)
    await alerts_deadletter_topic.send(key=alert["event_id"].encode(), value=orjson.dumps(record))
    deliveries.add(key, partition=message.partition, now=now, outcome="deadlettered")
    metrics.DELIVERIES.labels(route.channel, route.name, "deadlettered").inc()
    metrics.ALERTS_DEADLETTERED.labels(route.channel, outcome.reason).inc()
    log.error("alert %s dead-lettered on route %s (%s): %s (%s)", alert["event_id"], route.name, route.channel,
              outcome.reason, outcome.detail)


async def handle(message) -> None:
    alert, problem = parse_alert(message.value)
    if alert is None:
        record = alert_deadletter_record(reason="invalid_alert", detail=problem, topic=message.topic,
                                         partition=message.partition, offset=message.offset,
                                         original=message.value, alert=None, route=None, outcome=None)
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
