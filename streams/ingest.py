"""Ingest: raw topics -> validated, normalised mentions keyed by brand, or the dead-letter topic.

The agent is a thin adapter over :mod:`streams.normalise` (pure, tested without a broker). Valid mentions are
re-keyed by brand on ``mentions.valid`` so that every later table (dedup, windows) is co-partitioned by brand.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import orjson

from . import metrics
from .app import app, deadletter_topic, settings, valid_topic
from .contracts import format_rfc3339
from .normalise import Rejection, deadletter_record, parse_mention

log = logging.getLogger(__name__)

# ``ascolta worker`` has already resolved ASCOLTA_RAW_TOPIC_PATTERN into this list (streams.kafka).
raw_topic = app.topic(*settings.raw_topics, partitions=settings.partitions)


async def send_to_deadletter(
    rejection: Rejection, *, stage: str, topic: str, partition: int, offset: int, key: bytes | None, original: bytes
) -> None:
    """Dead-letter one message with its reason and origin; counted so that in = out + dead-lettered."""
    record = deadletter_record(
        rejection,
        stage=stage,
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        original=original,
        now=datetime.now(timezone.utc),
    )
    await deadletter_topic.send(key=key, value=orjson.dumps(record))
    metrics.DEADLETTERED.labels(stage, rejection.reason).inc()
    log.info("dead-lettered %s:%s@%s: %s (%s)", topic, partition, offset, rejection.reason, rejection.detail)


@app.agent(raw_topic)
async def ingest(stream):
    async for event in stream.events():
        message = event.message
        original = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
        metrics.MENTIONS_RECEIVED.labels(message.topic).inc()
        now = datetime.now(timezone.utc)
        parsed = parse_mention(
            original, now=now, max_future_s=settings.max_future_s, max_age_s=settings.max_age_s
        )
        if isinstance(parsed, Rejection):
            await send_to_deadletter(
                parsed,
                stage="ingest",
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                original=original,
            )
            continue
        envelope = {
            "mention": parsed.record,
            # latin-1 maps every byte to one character: the raw key survives JSON for enrich-stage dead letters
            "raw_key": message.key.decode("latin-1") if message.key is not None else None,
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
        await valid_topic.send(key=parsed.record["brand"].encode(), value=orjson.dumps(envelope))
