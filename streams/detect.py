"""Detect: per-brand event-time buckets, the crisis detector, and alert events on ``alerts``.

Faust wiring only: counting, closing and explaining are :class:`~streams.detection.buckets.BucketBook`
(the same code ``ascolta detect`` runs offline) over the changelogged tables below (layout in
``streams/detection/buckets.py``), so a restarted worker resumes its windows and open incidents. Counting is
idempotent under at-least-once redelivery: each bucket remembers the last input offset it applied. Here: the
guard around each message (an unexpected exception dead-letters it as ``internal_error``, stage ``detect``),
the wall-clock ticks that close quiet partitions' buckets, alerts and metrics.

Ticks: every ``ASCOLTA_CLOCK_TICK_SECONDS`` a worker sends one small record to each partition of the ticks
topic (``<app id>-detect-ticks``, co-partitioned with the enriched topic) it actively owns. The detect agent
reads both topics, so a tick is handled inside the stream, where Faust allows table writes, in order with that
partition's mentions.

Arrivals: ingest announces each valid mention on the arrivals topic (brand-keyed, co-partitioned with the
enriched topic) before the model scores it, so a burst's volume reaches the detector while the model is behind
(:meth:`BucketBook.arrive`); the enriched record still counts the mention, once.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import orjson
from faust.types import TP

from . import metrics
from .app import JSON_SCHEMA, alerts_topic, app, enriched_topic, settings, timeline_topic
from .contracts import parse_rfc3339, validate
from .deadletter import guard, message_origin, send_to_deadletter
from .detection.alert import Alert, alert_event
from .detection.buckets import BucketBook, ClosedBucket, DetectTables, EarlyOpening, KeyPrefixed, ahead_of_clock
from .detection.detector import DetectorConfig
from .detection.incidents import KINDS
from .normalise import Rejection, dedup_key
from .seen import SeenKeys
from .web.timeline import timeline_point

log = logging.getLogger(__name__)


# One table, so a crash keeps its writes in order (streams/detection/buckets.py: KeyPrefixed, and the layout).
detect_state = app.Table("detect-state", default=None, schema=JSON_SCHEMA, partitions=settings.partitions)
tables = DetectTables.within(detect_state)
book = BucketBook(
    DetectorConfig(bucket_seconds=settings.bucket_s, calm_s=settings.calm_s), settings.lateness_s, tables,
    horizon_s=settings.brand_state_horizon_s, hold_s=settings.arrival_hold_s,
    on_replaced=lambda table: metrics.TABLE_VALUES_REPLACED.labels(table).inc(),
    on_forgotten=metrics.forget_brand,
)

# Mentions already counted: after a crash the enrich agent may publish a mention again at a new offset. In the
# same table as the counts, so a crash never keeps a mention's key without its count.
counted_mentions = SeenKeys.within(KeyPrefixed(detect_state, "m|", "counted-mentions"),
                                   horizon_s=settings.dedup_horizon_s)

ticks_topic = app.topic(settings.ticks_topic, partitions=settings.partitions)
detect_input = app.topic(settings.enriched_topic, settings.arrivals_topic, ticks_topic.get_topic_name(),
                         partitions=settings.partitions)
INPUT_TOPICS = {settings.enriched_topic, settings.arrivals_topic, ticks_topic.get_topic_name()}


def owned_partitions() -> set[int]:
    """Partitions of the enriched topic this worker actively owns (standbys only replicate tables)."""
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.enriched_topic}


@app.on_partitions_revoked.connect
async def forget_revoked_partitions(app, revoked, **kwargs) -> None:
    """Caches of partitions this worker no longer owns must not outlive the rebalance."""
    book.clock.reset({tp.partition for tp in revoked if tp.topic in INPUT_TOPICS})


@app.on_partitions_assigned.connect
async def forget_assigned_partitions(app, assigned, **kwargs) -> None:
    """A partition owned before, given back, then owned again: rebuild its caches from the recovered tables."""
    book.clock.reset({tp.partition for tp in assigned if tp.topic in INPUT_TOPICS})


async def backlogged(partition: int) -> bool:
    """True when this partition's mentions may wait upstream of the detector: messages of ``mentions.valid`` the
    enrich stage has not finished on ANY partition this worker owns (it is keyed by mention, so any of them may
    hold this brand partition's mentions), or messages of partition ``partition`` of ``mentions.scored`` or
    ``mentions.enriched`` (keyed by brand) the story or detect stage has not finished, fetched or not. Such a
    partition is busy, not quiet, and the wall clock must not close buckets whose mentions are still on their
    way (after a restart, or while a burst outruns the model). Partitions this worker does not consume are not
    judged."""
    consumer = app.consumer
    assigned = consumer.assignment()
    upstream = [tp for tp in assigned if tp.topic == settings.valid_topic]
    upstream += [TP(topic, partition) for topic in (settings.scored_topic, settings.enriched_topic)]
    for tp in upstream:
        if tp not in assigned:
            continue
        highwater = consumer.highwater(tp)
        if highwater is None:
            return True
        # what the stage has finished, not the fetch position: Faust fetches thousands of messages ahead
        waiting = metrics.stage_lags.unfinished(tp.topic, tp.partition, highwater)
        if waiting is None:  # nothing finished since this worker took the partition
            position = await consumer.position(tp)
            waiting = 1 if position is None else highwater - position
        if waiting > 0:
            return True
    return False


@app.timer(interval=settings.clock_tick_s)
async def tick_partitions() -> None:
    """One tick per owned partition whose mentions have all arrived: the wall clock, for partitions whose
    mentions have stopped."""
    now = time.time()
    for partition in sorted(owned_partitions()):
        if await backlogged(partition):
            metrics.TICKS_HELD.inc()
            continue
        await ticks_topic.send(value=orjson.dumps({"now": now}), partition=partition)


def update_gauges(closed: ClosedBucket) -> None:
    detector = closed.timeline.detector
    name, digest = closed.timeline.brand, closed.digest
    metrics.BRAND_SERIES.observe(name, closed.start, digest.count, detector.open_incident_kind is not None)
    brand = metrics.brand_label(name)
    if brand != name:
        return  # shown by name only when open, busy or listed; the "other" gauges would be meaningless
    metrics.BUCKET_OBSERVED.labels(brand).set(digest.count)
    metrics.NEGATIVE_SHARE.labels(brand).set(digest.negative / digest.count if digest.count else 0.0)
    if detector.last_expected is not None:
        metrics.BUCKET_EXPECTED.labels(brand).set(detector.last_expected)
    for alert in closed.alerts:
        if alert.decision.event != "resolved":
            metrics.SEVERITY.labels(brand, alert.decision.kind).set(alert.decision.severity)
    for kind in KINDS:
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
    metrics.observe_alert_latency(event)
    decision = alert.decision
    metrics.ALERT_EVENTS.labels(decision.kind, decision.event).inc()
    log.warning("alert %s %s %s severity %.2f", decision.kind, decision.event, alert.brand, decision.severity)


_series_refreshed_at: list[int] = [0]  # bucket start of the last refresh of the brands shown in metrics


async def close_buckets(brands: list[str], watermark: float) -> None:
    if not brands:
        return
    for brand in brands:
        closing = book.close(brand, watermark)
        for closed in closing.buckets:
            for alert in closed.alerts:
                await publish_alert(alert)
            update_gauges(closed)
            await timeline_topic.send(key=brand.encode(), value=orjson.dumps(timeline_point(closed, settings.bucket_s)))
        closing.commit()
        # A boundary may judge thousands of brands in one call: their table writes wait in Faust's producer buffer,
        # which only drains while this waits (measured at 10,000 brands: a peak RSS 320 MB higher without)
        await app.producer.buffer.wait_until_ebb()
    start = book.bucket_start(watermark)
    if start > _series_refreshed_at[0]:  # once per bucket: the busiest brands may have changed
        _series_refreshed_at[0] = start
        for name in metrics.BRAND_SERIES.refresh(start):
            metrics.drop_series(name)


@app.agent(detect_input)
async def detect(stream):
    async for event in stream.events():
        message = event.message
        async with guard("detect", message_origin(message, event.value)):
            if message.topic == settings.enriched_topic:
                await detect_one(event.value, message)
            elif message.topic == settings.arrivals_topic:
                await announce(event.value, message.partition)
            else:
                watermark, brands = book.tick(message.partition, float(orjson.loads(event.value)["now"]))
                await close_buckets(brands, watermark)


async def detect_one(value: bytes, message) -> None:
    record, partition, offset = orjson.loads(value), message.partition, message.offset
    now = time.time()
    event_time = parse_rfc3339(record["created_at"]).timestamp()
    mention_key = dedup_key(record)
    ahead = ahead_of_clock(event_time, now, settings.max_future_skew_s)
    if ahead is not None:
        await send_to_deadletter(Rejection("timestamp_in_future", ahead, str(record.get("id"))), stage="detect",
                                 **message_origin(message, value)())
        book.release(mention_key)  # never counted: its announcement must not hold the partition
        return
    counted_mentions.purge_if_due(partition, now)
    if not counted_mentions.get(mention_key):
        if book.count(record, event_time, partition, offset):
            metrics.LATE_MENTIONS.labels(metrics.brand_label(book.display_name(record["brand"]))).inc()
        counted_mentions.add(mention_key, partition=partition, now=now)
    book.release(mention_key)  # its announcement no longer holds the partition's buckets open
    watermark, brands = book.due(record["brand"], event_time, partition, now)
    await close_buckets(brands, watermark)
    await publish_early(book.open_early(record["brand"], event_time, now))  # an extreme burst opens before its close


async def announce(value: bytes, partition: int) -> None:
    """A mention ingest has validated, not yet scored (``{"brand", "created_at", "key"}``): its volume counts
    towards an early opening now, and its bucket stays open until it is counted (:meth:`BucketBook.arrive`); its
    scored record counts it and moves the clock. One dated beyond the allowed skew is left to its scored record,
    which the stage dead-letters; one already counted (a duplicate, or a redelivery) is ignored; a withdrawal
    (``"withdrawn": true``: the enrich stage dead-lettered the mention) stops the wait for it."""
    arrival, now = orjson.loads(value), time.time()
    if arrival.get("withdrawn"):  # the enrich stage dead-lettered it: no scored record will count it
        book.release(arrival["key"])
        return
    event_time = parse_rfc3339(arrival["created_at"]).timestamp()
    if ahead_of_clock(event_time, now, settings.max_future_skew_s) is None and not counted_mentions.get(arrival["key"]):
        await publish_early(book.arrive(arrival["brand"], event_time, arrival["key"], now, partition))


async def publish_early(opening: EarlyOpening) -> None:
    for alert in opening.alerts:
        await publish_alert(alert)
    opening.commit()


@app.page("/ascolta/windows")
async def windows_view(web, request):
    """Per-brand bucket counts of the partitions this worker actively owns, by display name: open buckets and
    the recent closed history."""
    owned = owned_partitions()
    states = {brand: state for brand, state in tables.brand_states.items()
              if isinstance(state, dict) and state.get("p") in owned}
    result: dict[str, dict] = {}
    for key, stored in tables.open_buckets.items():
        brand, _, start = key.rpartition("|")
        if stored and brand in states:
            entry = result.setdefault(states[brand].get("name", brand), {"open": {}, "closed": {}})
            entry["open"][start] = stored["digest"]["count"]
    for brand, state in states.items():
        if isinstance(state.get("chunks"), list):
            entry = result.setdefault(state.get("name", brand), {"open": {}, "closed": {}})
            entry["closed"] = {str(start): count for start, count, _ in book.history(brand, state)}
            entry["closed_through"] = max(state["closed_through"], book.boundary(state["p"]) or 0)
    return web.json(result)
