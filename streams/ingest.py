"""Ingest: raw topics -> validated, normalised mentions keyed by mention, their arrivals keyed by brand, or the
dead-letter topic.

The agent is a thin adapter over :mod:`streams.normalise` (pure, tested without a broker). Valid mentions go to
``mentions.valid`` keyed by their de-duplication key, so a hot brand's scoring spreads over every partition (and
every worker) while the enrich stage's ``seen-mentions`` table, keyed the same way, stays co-partitioned. Each
one's arrival (brand, time, key) goes first to ``mentions.arrivals``, keyed by brand, so the detect stage learns
a mention's existence at ingest, in its brand's order, before its sentiment is scored.
"""
from __future__ import annotations

from datetime import datetime, timezone

import orjson

from . import metrics
from .app import app, arrivals_topic, settings, valid_topic
from .contracts import format_rfc3339
from .deadletter import guard, key_fields, message_origin, send_to_deadletter
from .normalise import Rejection, dedup_key, parse_mention
from .text import brand_allow_list

# ``ascolta worker`` has already resolved ASCOLTA_RAW_TOPIC_PATTERN into this list (streams.kafka).
raw_topic = app.topic(*settings.raw_topics, partitions=settings.partitions)
allowed_brands = brand_allow_list(settings.brands)


async def ingest_one(message, original: bytes) -> None:
    """Forward one raw message as an envelope on ``mentions.valid``, or dead-letter it with its reason."""
    metrics.MENTIONS_RECEIVED.labels(message.topic).inc()
    now = datetime.now(timezone.utc)
    parsed = parse_mention(original, now=now, max_future_s=settings.max_future_s, max_age_s=settings.max_age_s,
                           allowed_brands=allowed_brands)
    if isinstance(parsed, Rejection):
        await send_to_deadletter(parsed, stage="ingest", topic=message.topic, partition=message.partition,
                                 offset=message.offset, key=message.key, original=original)
        return
    envelope = {
        "mention": parsed.record,
        # bounded like a dead-letter record's key (a huge raw key must not make the envelope too large)
        "raw_key": key_fields(message.key),
        "text_truncated": parsed.text_truncated,
        "language": parsed.language,
        "language_confidence": parsed.language_confidence,
        "processing": {
            "source_topic": message.topic,
            "source_partition": message.partition,
            "source_offset": message.offset,
            "ingested_at": format_rfc3339(now),
        },
    }
    mention = parsed.record
    key = dedup_key(mention)
    # The arrival first: arrivals keep a brand's raw order, on the partition its scored and enriched mentions share
    await send_arrival(mention, key)
    await valid_topic.send(key=key.encode(), value=orjson.dumps(envelope))


async def send_arrival(mention: dict, key: str, *, withdrawn: bool = False) -> None:
    """A mention's arrival on ``mentions.arrivals`` (brand, time, its de-duplication ``key``), keyed by the brand's
    name as producers key the raw topics, for the per-brand stages (stories, detect); ``withdrawn`` when the enrich
    stage dead-lettered an announced mention, so they stop waiting for it."""
    arrival = {"brand": mention["brand"], "created_at": mention["created_at"], "key": key}
    if withdrawn:
        arrival["withdrawn"] = True
    await arrivals_topic.send(key=mention["brand"].encode(), value=orjson.dumps(arrival))


@app.agent(raw_topic)
async def ingest(stream):
    async for event in stream.events():
        message = event.message
        original = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
        async with guard("ingest", message_origin(message, original)):
            await ingest_one(message, original)
