"""Stories: scored mentions (``mentions.scored``, keyed by brand) -> ``mentions.enriched`` keyed by brand.

The enrich stage scores a hot brand's mentions on every partition; story assignment is per brand and in order,
so it happens here, on the brand-keyed scored topic, co-partitioned with the changelogged ``stories`` table
(keyed by brand key). Plain code does the work (:class:`~streams.stories.assign.StoryBook`, the same code
``ascolta stories`` runs offline); each brand's state is written once per batch, so a restart or a rebalance
resumes with the same story ids. A failed assignment costs the mention its ``story``, never the mention. Dead
letters (only unexpected errors) name the raw message, with stage ``enrich``: this is the enrich stage's last
step as the contracts see it.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import orjson

from . import metrics
from .app import JSON_SCHEMA, app, enriched_topic, scored_topic, settings
from .contracts import format_rfc3339, parse_rfc3339
from .deadletter import guard, message_origin, raw_origin
from .scored import read_scored
from .seen import processing
from .stories.assign import StoryBook

log = logging.getLogger(__name__)

stories = StoryBook(app.Table("stories", default=None, schema=JSON_SCHEMA, partitions=settings.partitions))


def event_time(record: dict) -> float:
    """A scored mention's ``created_at`` (ingest normalised it), for ordering a batch."""
    return parse_rfc3339(record["created_at"]).timestamp()


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


@app.agent(scored_topic)
async def storied(stream):
    async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
        timed = []
        for event in events:
            async with guard("enrich", message_origin(event.message, event.value)):
                record, raw_key, embedding = read_scored(event.value)
                timed.append((event_time(record), (event, record, raw_key, embedding)))
        # Mentions scored on several partitions (and workers) arrive interleaved: a batch in event time, stable.
        batch = [row for _, row in sorted(timed, key=lambda pair: pair[0])]
        for (_, record, raw_key, _), story in zip(batch, assign_stories(batch)):
            async with guard("enrich", origin_of(record, raw_key)):
                await publish(record, story)
