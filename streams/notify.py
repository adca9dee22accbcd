"""Notify: the Faust wiring of :class:`streams.alerting.delivery.Notifier` on the ``alerts`` topic.

For each event the notifier sends on every route that wants it, concurrently, with retries and rate limits,
and returns only when every route has either succeeded or dead-lettered the event on ``alerts.deadletter``;
so a committed Kafka offset means the event was handled everywhere. Changelogged tables remember
``"<event_id>|<route>"`` after a success, so a restarted worker that re-reads the topic does not send again.
That is at-least-once, not exactly-once: a crash between a send and its record re-sends, and receivers
de-duplicate on ``X-Ascolta-Event-Id``.
"""
from __future__ import annotations

import logging
import time

import orjson

from . import metrics
from .alerting.delivery import DeliveryMetrics, Notifier, RetryPolicy
from .alerting.routes import describe, load_routes
from .app import JSON_SCHEMA, alerts_deadletter_topic, alerts_topic, app, settings
from .seen import SeenKeys

log = logging.getLogger(__name__)

RETENTION_S = settings.delivery_retention_days * 86400

# "<event_id>|<route>" -> {"outcome": "delivered"|"deadlettered", "at": epoch seconds, "p": partition}
deliveries = SeenKeys(app, "notify-deliveries", horizon_s=RETENTION_S, partitions=settings.partitions,
                      schema=JSON_SCHEMA, purge_every_s=3600.0)
# "<incident_id>|<route>" -> {"at": epoch seconds, "p": partition}: the route has been told about the incident
notified_incidents = SeenKeys(app, "notify-incidents", horizon_s=RETENTION_S, partitions=settings.partitions,
                              schema=JSON_SCHEMA, purge_every_s=3600.0)
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


async def send_deadletter(key: bytes | None, record: dict) -> None:
    await alerts_deadletter_topic.send(key=key, value=orjson.dumps(record))


notifier = Notifier(
    load_routes(settings.notify_config, settings.environ),  # a bad configuration stops the worker at start
    RetryPolicy(
        max_attempts=settings.delivery_max_attempts,
        backoff_s=settings.delivery_backoff_s,
        max_backoff_s=settings.delivery_max_backoff_s,
        deadline_s=settings.delivery_deadline_s,
        attempt_timeout_s=settings.delivery_timeout_s,
    ),
    deliveries=deliveries, notified_incidents=notified_incidents, send_deadletter=send_deadletter,
    session=http_session,
    metrics=DeliveryMetrics(deliveries=metrics.DELIVERIES, attempts=metrics.DELIVERY_ATTEMPTS,
                            seconds=metrics.DELIVERY_SECONDS, deadlettered=metrics.ALERTS_DEADLETTERED),
)


@app.agent(alerts_topic)
async def notify(stream):
    async for event in stream.events():
        await notifier.handle(event.message)
        now = time.time()  # delivery records older than the retention are forgotten, once an hour per partition
        deliveries.purge_if_due(event.message.partition, now)
        notified_incidents.purge_if_due(event.message.partition, now)


@app.task
async def announce_routes() -> None:
    if notifier.routes:
        log.info("notification routes: %s", describe(notifier.routes))
    else:
        log.info("no notification routes (ASCOLTA_NOTIFY_CONFIG, ASCOLTA_WEBHOOK_URL): alerts are not delivered")
