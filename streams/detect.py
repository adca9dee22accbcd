"""Detect: per-brand event-time buckets, the crisis detector, and alert events on ``alerts``.

Faust wiring only: counting, closing and explaining are :class:`~streams.detection.buckets.BucketBook`
(the same code ``ascolta detect`` runs offline) over the two changelogged tables below, so a restarted
worker resumes its windows and open incidents. Counting is idempotent under at-least-once redelivery: each
bucket remembers the last input offset it applied. Here: the guard around each message (an unexpected
exception dead-letters it as ``internal_error``, stage ``detect``), alerts and metrics.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import orjson

from . import metrics
from .app import JSON_SCHEMA, alerts_topic, app, enriched_topic, settings, timeline_topic
from .contracts import parse_rfc3339, validate
from .deadletter import guard, message_origin
from .detection.alert import Alert, alert_event
from .detection.buckets import BucketBook, ClosedBucket
from .detection.detector import DetectorConfig
from .normalise import dedup_key
from .seen import SeenKeys
from .web.timeline import timeline_point

log = logging.getLogger(__name__)

# Layout of both tables: streams/detection/buckets.py.
open_buckets = app.Table(
    "open-buckets", default=None, schema=JSON_SCHEMA, partitions=settings.partitions
)
brand_states = app.Table(
    "brand-states", default=None, schema=JSON_SCHEMA, partitions=settings.partitions
)
book = BucketBook(
    DetectorConfig(bucket_seconds=settings.bucket_s), settings.lateness_s, open_buckets, brand_states,
    horizon_s=settings.brand_state_horizon_s,
    on_replaced=lambda table: metrics.TABLE_VALUES_REPLACED.labels(table).inc(),
    on_forgotten=metrics.forget_brand,
)

# Mentions already counted: after a crash the enrich agent may publish a mention again at a new offset.
counted_mentions = SeenKeys(
    app, "counted-mentions", horizon_s=settings.dedup_horizon_s, partitions=settings.partitions, schema=JSON_SCHEMA
)


@app.on_partitions_revoked.connect
async def forget_revoked_partitions(app, revoked, **kwargs) -> None:
    """Watermarks and brand lists of partitions this worker no longer owns must not outlive the rebalance."""
    book.clock.reset(tp.partition for tp in revoked if tp.topic == enriched_topic.get_topic_name())


def update_gauges(closed: ClosedBucket) -> None:
    brand, digest, detector = closed.timeline.brand, closed.digest, closed.timeline.detector
    metrics.BUCKET_OBSERVED.labels(brand).set(digest.count)
    metrics.NEGATIVE_SHARE.labels(brand).set(digest.negative / digest.count if digest.count else 0.0)
    if detector.last_expected is not None:
        metrics.BUCKET_EXPECTED.labels(brand).set(detector.last_expected)
    for alert in closed.alerts:
        if alert.decision.event != "resolved":
            metrics.SEVERITY.labels(brand, alert.decision.kind).set(alert.decision.severity)
    for kind in ("crisis", "opportunity"):
        is_open = detector.open_incident_kind == kind
        metrics.INCIDENTS_OPEN.labels(brand, kind).set(1 if is_open else 0)
        if not is_open:
            metrics.SEVERITY.labels(brand, kind).set(0.0)


async def publish_alert(alert: Alert) -> None:
    event = alert_event(alert, settings.bucket_s, datetime.now(timezone.utc), public_url=settings.public_url)
    problems = validate("alert", event)
    if problems:  # a bug on our side: publish anyway (the alert matters more), but loudly
        log.error("alert %s does not match schemas/alert.v1.json: %s", event["event_id"], problems)
    await alerts_topic.send(key=alert.brand.encode(), value=orjson.dumps(event))
    decision = alert.decision
    metrics.ALERT_EVENTS.labels(decision.kind, decision.event).inc()
    log.warning("alert %s %s %s severity %.2f", decision.kind, decision.event, alert.brand, decision.severity)


async def close_buckets(brand: str, watermark: float) -> None:
    closing = book.close(brand, watermark)
    for closed in closing.buckets:
        for alert in closed.alerts:
            await publish_alert(alert)
        update_gauges(closed)
        await timeline_topic.send(key=brand.encode(), value=orjson.dumps(timeline_point(closed, settings.bucket_s)))
    closing.commit()


@app.agent(enriched_topic)
async def detect(stream):
    async for event in stream.events():
        message = event.message
        async with guard("detect", message_origin(message, event.value)):
            await detect_one(orjson.loads(event.value), message.partition, message.offset)


async def detect_one(record: dict, partition: int, offset: int) -> None:
    now = time.time()
    event_time = parse_rfc3339(record["created_at"]).timestamp()
    counted_mentions.purge_if_due(partition, now)
    mention_key = dedup_key(record)
    if not counted_mentions.get(mention_key):
        if book.count(record, event_time, partition, offset):
            metrics.LATE_MENTIONS.labels(book.display_name(record["brand"])).inc()
        counted_mentions.add(mention_key, partition=partition, now=now)
    watermark, brands = book.due(record["brand"], event_time, partition)
    for brand in brands:
        await close_buckets(brand, watermark)


@app.page("/ascolta/windows")
async def windows_view(web, request):
    """Per-brand bucket counts held by this worker, by display name: open buckets and the recent closed history."""
    names = {brand: state.get("name", brand) for brand, state in brand_states.items() if isinstance(state, dict)}
    result: dict[str, dict] = {}
    for key, stored in open_buckets.items():
        if stored:
            brand, start = key.rsplit("|", 1)
            entry = result.setdefault(names.get(brand, brand), {"open": {}, "closed": {}})
            entry["open"][start] = stored["digest"]["count"]
    for brand, state in brand_states.items():
        if isinstance(state, dict) and "history" in state:
            entry = result.setdefault(names[brand], {"open": {}, "closed": {}})
            entry["closed"] = {str(start): count for start, count, _ in state["history"]}
            entry["closed_through"] = state["closed_through"]
    return web.json(result)
