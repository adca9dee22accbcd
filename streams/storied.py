"""Stories: scored mentions (``mentions.scored``, keyed by brand) -> ``mentions.enriched`` keyed by brand.

The enrich stage scores a hot brand's mentions on every partition; story assignment is per brand and in order,
so it happens here, on the brand-keyed scored topic, co-partitioned with the changelogged ``stories`` table
(keyed by brand key). Plain code does the work (:class:`~streams.stories.assign.StoryBook`, the same code
``ascolta stories`` runs offline); each brand's state is written once per batch, so a restart or a rebalance
resumes with the same story ids. A failed assignment costs the mention its ``story``, never the mention. Dead
letters (only unexpected errors) name the raw message, with stage ``enrich``: this is the enrich stage's last
step as the contracts see it.

The order is the one ingest announced on ``mentions.arrivals`` (:mod:`streams.stories.order`), not the order the
workers scored in, so one worker and many assign the same stories. Held messages stay unacknowledged (a crash
or a rebalance redelivers them), are acknowledged in offset order, and do not hold up a rebalance: Faust waits
for every delivered message to be acknowledged before it gives partitions up, so :func:`hold` takes them off
that list; nothing is released or acknowledged while a rebalance is under way, and the revoked partitions'
holds are dropped, to be redelivered to their next owner.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import orjson
from faust.types import TP

from . import metrics
from .app import JSON_SCHEMA, app, enriched_topic, settings
from .contracts import format_rfc3339, parse_rfc3339
from .deadletter import guard, message_origin, raw_origin
from .normalise import dedup_key
from .scored import read_scored
from .seen import processing
from .stories.assign import StoryBook
from .stories.order import AnnouncedOrder, InOrderAcks

log = logging.getLogger(__name__)

stories = StoryBook(app.Table("stories", default=None, schema=JSON_SCHEMA, partitions=settings.partitions))
order = AnnouncedOrder(settings.arrival_hold_s)
acks = InOrderAcks()
# The ticks (streams/detect.py) wake the stage on a quiet partition, so a given-up announcement is let go on time.
stories_input = app.topic(settings.scored_topic, settings.arrivals_topic, settings.ticks_topic,
                          partitions=settings.partitions)


def assign_stories(batch: list[tuple]) -> list[dict | None]:
    """Each mention's story, in batch order; every touched brand's state saved once, under the event of its
    last mention (so the write goes to that partition's changelog). A failure here costs the mention its
    ``story``, never the mention."""
    assigned: list[dict | None] = []
    last_event: dict[str, object] = {}
    for event, record, _, embedding in batch:
        try:
            assigned.append(stories.assign(record, embedding))
            last_event[record["brand"]] = event
        except Exception:
            log.exception("story assignment failed for mention %r of %r; published without a story",
                          record.get("id"), record.get("brand"))
            assigned.append(None)
    for brand, event in last_event.items():
        with processing(event):
            stories.save(brand)
    return assigned


async def publish(record: dict, story: dict | None) -> None:
    """The ``mentions.enriched`` record (schemas/mention.enriched.v1.json), keyed by brand, and its metrics."""
    now = datetime.now(timezone.utc)
    record["processing"]["enriched_at"] = format_rfc3339(now)
    if story is not None:
        record["story"] = story
    await enriched_topic.send(key=record["brand"].encode(), value=orjson.dumps(record))
    metrics.MENTIONS_ENRICHED.labels(metrics.brand_label(record["brand"]), record["source"], record["language"],
                                     record["sentiment"]["label"]).inc()
    ingested = parse_rfc3339(record["processing"]["ingested_at"])
    metrics.ENRICH_LATENCY_SECONDS.observe(max(0.0, (now - ingested).total_seconds()))


def origin_of(record: dict, raw_key: dict):
    """A dead letter's origin: the raw message the mention came from, the scored record as payload."""
    return raw_origin({"processing": record["processing"], "raw_key": raw_key, "mention": record})


def hold(event) -> None:
    """Keep ``event`` uncommitted until :func:`let_go` (``take_events`` acknowledges its whole batch: this adds a
    reference that batch's acknowledgement leaves), without holding up a rebalance or a stop, which wait for every
    delivered message still on the consumer's unacknowledged list."""
    event.message.incref()
    app.consumer._unacked_messages.discard(event.message)


async def let_go(stream, event) -> None:
    """Done with ``event``: acknowledge it and whatever it held back in its partition, in offset order. Not during
    a rebalance: the revoked partitions' acknowledgements start afresh, so one now could be committed over a held
    message; the revocation drops this partition's holds and the next owner reads it all again."""
    if app.rebalancing:
        return
    message = event.message
    for ready in acks.done(message.topic, message.partition, message.offset):
        await stream.ack(ready)


@app.on_partitions_revoked.connect
async def forget_revoked_holds(app, revoked, **kwargs) -> None:
    """Their held messages were never acknowledged: the next owner reads them again, in order."""
    partitions = {tp.partition for tp in revoked}
    order.forget(partitions)
    acks.forget(partitions)


def take_in(event, now: float) -> bool:
    """Record one message in the order (False for one with nothing to wait for: a tick, a withdrawal, a
    duplicate's announcement)."""
    message = event.message
    if message.topic == settings.arrivals_topic:
        arrival = orjson.loads(event.value)
        if arrival.get("withdrawn"):
            order.withdraw(message.partition, arrival["key"], message.offset)
            return False
        return order.announce(message.partition, arrival["key"], message.offset, event, now)
    if message.topic != settings.scored_topic:
        return False
    record, raw_key, embedding = read_scored(event.value)
    order.scored(message.partition, dedup_key(record), (event, record, raw_key, embedding),
                 arrivals_end(message.partition), now)
    return True


def arrivals_end(partition: int) -> int | None:
    """The log end of the partition's announcements, as the last fetch saw it (None before any)."""
    return app.consumer.highwater(TP(settings.arrivals_topic, partition))


@app.agent(stories_input)
async def storied(stream):
    async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
        generation, now = app.rebalancing_count, time.time()
        for event in events:
            hold(event)
        if app.rebalancing:  # redelivered once the partitions are assigned again
            continue
        for event in events:
            message = event.message
            acks.received(message.topic, message.partition, message.offset, event)
            waits = False
            async with guard("enrich", message_origin(message, event.value)):
                waits = take_in(event, now)
            if not waits:
                await let_go(stream, event)
        released = [release for partition in list(order.partitions)
                    for release in order.releases(partition, now, arrivals_end(partition))]
        batch = [release.scored for release in released if release.scored is not None]
        for (event, record, raw_key, _), story in zip(batch, assign_stories(batch)):
            async with guard("enrich", origin_of(record, raw_key)):
                await publish(record, story)
        if app.rebalancing_count != generation:
            continue  # a rebalance came and went while these were published: redelivered instead
        for release in released:
            for event in (release.scored and release.scored[0], release.arrival):
                if event is not None:
                    await let_go(stream, event)
