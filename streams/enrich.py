"""Enrich: deduplicate, run the sentiment model in batches, publish ``mentions.scored`` keyed by brand.

``mentions.valid`` is keyed by the mention's de-duplication key, so a hot brand's mentions are scored on every
partition, by every worker; the ``seen-mentions`` table is keyed the same way, so de-duplication stays local.
Batches come from ``stream.take_events`` so the model sees many texts at once (its throughput depends on it);
the model runs in a worker thread so the event loop keeps heartbeating while it computes. Each scored mention
goes, with the sentence embedding its story needs (:mod:`streams.scored`), to the brand-keyed story stage
(:mod:`streams.storied`), which publishes ``mentions.enriched``.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import orjson

from . import metrics
from .app import JSON_SCHEMA, app, scored_topic, settings, valid_topic
from .contracts import format_rfc3339
from .deadletter import envelope_origin, guard, raw_origin, send_to_deadletter
from .ingest import send_arrival
from .normalise import Rejection, dedup_key, model_text
from .scored import scored_record
from .seen import SeenKeys, processing
from .sentiment.classify import SentimentClassifier, load_classifier

log = logging.getLogger(__name__)

# Where and when the first copy was seen, so a redelivery of that same copy (at-least-once) is
# recognised as such and processed again instead of being dead-lettered as a duplicate.
seen_mentions = SeenKeys(
    app, "seen-mentions", horizon_s=settings.dedup_horizon_s, partitions=settings.partitions, schema=JSON_SCHEMA
)

_model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentiment")
_classifier: SentimentClassifier | None = None


async def classifier() -> SentimentClassifier:
    global _classifier
    if _classifier is None:
        loop = asyncio.get_running_loop()

        def load() -> SentimentClassifier:
            if settings.sentiment_model == "default":
                from .sentiment.build import prepare_default_model

                prepare_default_model(settings.data_dir, threads=settings.threads)
            return load_classifier(settings.sentiment_model, data_dir=settings.data_dir, threads=settings.threads)

        _classifier = await loop.run_in_executor(_model_thread, load)
        log.info("sentiment model %s %s loaded", _classifier.model_id, _classifier.version)
    return _classifier


def is_redelivery(first_seen: dict, processing_info: dict) -> bool:
    return (
        first_seen["raw_topic"] == processing_info["source_topic"]
        and first_seen["raw_partition"] == processing_info["source_partition"]
        and first_seen["raw_offset"] == processing_info["source_offset"]
    )


async def drop_duplicates(events) -> list[tuple]:
    """Keep first copies (and redeliveries of them), with their events; dead-letter later copies within the
    horizon."""
    fresh = []
    now = time.time()
    for event in events:
        async with guard("enrich", envelope_origin(event.message, event.value)):
            envelope = orjson.loads(event.value)
            mention, origin = envelope["mention"], envelope["processing"]
            key = dedup_key(mention)
            with processing(event):
                seen_mentions.purge_if_due(event.message.partition, now)
                first_seen = seen_mentions.first_seen_within_horizon(key, now)
                if first_seen and not is_redelivery(first_seen, origin):
                    rejection = Rejection(
                        reason="duplicate",
                        detail=(
                            f"same brand, source and id as the mention first seen at {first_seen['raw_topic']}:"
                            f"{first_seen['raw_partition']}@{first_seen['raw_offset']}"
                        ),
                        mention_id=mention["id"],
                    )
                    await _deadletter_from_envelope(rejection, envelope)
                    continue
                seen_mentions.add(
                    key,
                    partition=event.message.partition,
                    now=now,
                    raw_topic=origin["source_topic"],
                    raw_partition=origin["source_partition"],
                    raw_offset=origin["source_offset"],
                )
            fresh.append((event, envelope))
    return fresh


async def _deadletter_from_envelope(rejection: Rejection, envelope: dict) -> None:
    """Enrich-stage dead letters point at the raw message they came from; the payload is the normalised mention."""
    await send_to_deadletter(rejection, stage="enrich", **raw_origin(envelope)())


async def classify(model: SentimentClassifier, texts: list[str]):
    """Sentiments and the embeddings behind them (None when the model has none)."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    results = await loop.run_in_executor(_model_thread, model.classify_embedded, texts)
    metrics.ENRICH_BATCH_SECONDS.observe(time.perf_counter() - started)
    metrics.ENRICH_BATCH_SIZE.observe(len(texts))
    return results


def enriched_record(envelope: dict, sentiment, model: SentimentClassifier, now: datetime) -> dict:
    """The ``mentions.enriched`` record but its ``story``, which the brand-keyed story stage adds."""
    language = envelope["language"]
    return {
        **envelope["mention"],
        "schema_version": 1,
        "text_truncated": envelope["text_truncated"],
        "language": language,
        "language_confidence": envelope["language_confidence"],
        "sentiment": {
            "label": sentiment.label,
            "probabilities": sentiment.probabilities,
            "score": sentiment.score,
        },
        "model": {"id": model.model_id, "version": model.version, "language_supported": language in model.languages},
        "processing": {**envelope["processing"], "enriched_at": format_rfc3339(now)},
    }


async def publish_scored(envelope: dict, sentiment, model: SentimentClassifier, embedding) -> None:
    """To the story stage, keyed by brand (the enriched topic's key): the record without its story yet."""
    mention = envelope["mention"]
    record = enriched_record(envelope, sentiment, model, datetime.now(timezone.utc))
    await scored_topic.send(key=mention["brand"].encode(),
                            value=scored_record(record, envelope["raw_key"], embedding))


async def enrich_batch(model: SentimentClassifier, batch: list[tuple]) -> None:
    envelopes = [envelope for _, envelope in batch]
    texts = [model_text(envelope["mention"]["text"]) for envelope in envelopes]
    try:
        sentiments, embeddings = await classify(model, texts)
    except Exception:
        log.exception("sentiment batch of %d failed; retrying one by one", len(batch))
        sentiments = None
    if sentiments is not None:
        for row, (envelope, sentiment) in enumerate(zip(envelopes, sentiments)):
            async with guard("enrich", raw_origin(envelope)):
                await publish_scored(envelope, sentiment, model, None if embeddings is None else embeddings[row])
        return
    for envelope, text in zip(envelopes, texts):
        try:
            [sentiment], embedding = await classify(model, [text])
        except Exception as exc:
            rejection = Rejection("enrichment_failed", f"sentiment model failed: {exc!r}", envelope["mention"]["id"])
            await _deadletter_from_envelope(rejection, envelope)
            # announced, never to be scored: the story and detect stages must not wait for it (not for a
            # duplicate, whose key is its original's, still coming)
            await send_arrival(envelope["mention"], dedup_key(envelope["mention"]), withdrawn=True)
            continue
        async with guard("enrich", raw_origin(envelope)):
            await publish_scored(envelope, sentiment, model, None if embedding is None else embedding[0])


@app.agent(valid_topic)
async def enrich(stream):
    model = await classifier()
    async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):
        batch = await drop_duplicates(events)
        if batch:
            await enrich_batch(model, batch)


