"""Detect: per-brand event-time buckets, the crisis detector, and alert events on ``alerts``.

Thin adapter: counting and explanation digests live in :mod:`streams.explain`, decisions in
:mod:`streams.detector` (the same code ``ascolta detect`` runs offline). Both tables are changelogged, so a
restarted worker resumes its windows and open incidents. Counting is idempotent under at-least-once
redelivery: each bucket remembers the last input offset it applied.
"""
from __future__ import annotations

import bisect
import functools
import logging
import time
from datetime import datetime, timezone

import orjson

from . import metrics
from .app import JSON_SCHEMA, alerts_topic, app, enriched_topic, settings
from .contracts import format_rfc3339, parse_rfc3339, validate
from .deadletter import guard
from .detector import Bucket, BrandDetector, DetectorConfig
from .explain import BucketDigest, TermBaseline, build_explanation
from .normalise import dedup_key
from .seen import SeenKeys
from .stored import load_brand_state, load_closable_brand_state, load_digest, load_or_replace
from .text import brand_key

log = logging.getLogger(__name__)

HISTORY_BUCKETS = 2 * 24 * 3600 // settings.bucket_s  # closed bucket counts kept per brand (two days)
DETECTOR_CONFIG = DetectorConfig(bucket_seconds=settings.bucket_s)

# "<brand>|<bucket start, epoch seconds>" -> {"digest": BucketDigest dict, "offset": last applied input offset}
open_buckets = app.Table(
    "open-buckets", default=None, schema=JSON_SCHEMA, partitions=settings.partitions
)
# brand key (text.brand_key) -> {"p", "closed_through", "detector", "terms", "incident",
#                                 "history": [[start, count, last offset]], "name": display name}
brand_states = app.Table(
    "brand-states", default=None, schema=JSON_SCHEMA, partitions=settings.partitions
)

# Mentions already counted: after a crash the enrich agent may publish a mention again at a new offset.
counted_mentions = SeenKeys(
    app, "counted-mentions", horizon_s=settings.dedup_horizon_s, partitions=settings.partitions, schema=JSON_SCHEMA
)

_watermarks: dict[int, float] = {}  # input partition -> latest event time seen (epoch seconds)
_boundaries: dict[int, int] = {}  # input partition -> buckets starting before this may be closed
_brands_by_partition: dict[int, set[str]] = {}



def epoch(text: str) -> float:
    return parse_rfc3339(text).timestamp()


def bucket_start(event_time: float) -> int:
    return int(event_time // settings.bucket_s) * settings.bucket_s


def bucket_key(brand: str, start: int) -> str:
    return f"{brand}|{start}"


def new_brand_state(partition: int, first_bucket: int, name: str) -> dict:
    return {"p": partition, "closed_through": first_bucket, "detector": None, "terms": None, "incident": None,
            "history": [], "name": name}


def stored_brand_state(brand: str, load=load_brand_state) -> dict | None:
    """The brand's state, or None when there is none or it cannot be loaded (then it is forgotten)."""
    stored = brand_states.get(brand)
    if stored is None:
        return None
    state = load_or_replace("brand-states", brand, stored, load, lambda: None)
    if state is None:
        forget_brand(brand, stored.get("p") if isinstance(stored, dict) else None)
    return state


def stored_bucket(key: str) -> tuple[BucketDigest, int] | None:
    """An open bucket's digest and last applied offset; None when there is none or it cannot be loaded."""
    stored = open_buckets.get(key)
    if stored is None:
        return None
    return load_or_replace("open-buckets", key, stored, lambda s: (load_digest(s["digest"]), int(s["offset"])),
                           lambda: None)


def forget_brand(brand: str, partition: int | None) -> None:
    """Delete a brand's state (its open buckets are already closed) and its metric series."""
    state = brand_states.pop(brand, None)
    for brands in ([brands_in(partition)] if partition is not None else _brands_by_partition.values()):
        brands.discard(brand)
    metrics.forget_brand(state.get("name", brand) if isinstance(state, dict) else brand)


def brands_in(partition: int) -> set[str]:
    """Brands whose state lives in this partition, rebuilt from the recovered table after a restart."""
    if partition not in _brands_by_partition:
        _brands_by_partition[partition] = {b for b, s in brand_states.items()
                                           if isinstance(s, dict) and s.get("p") == partition}
    return _brands_by_partition[partition]


def count_mention(record: dict, event_time: float, partition: int, offset: int, now: float) -> None:
    """Add one mention to its brand's bucket, exactly once (redeliveries and republished copies skipped)."""
    brand = brand_key(record["brand"])
    mention_key = dedup_key(record)
    if counted_mentions.get(mention_key):
        return
    start = bucket_start(event_time)
    state = stored_brand_state(brand)
    if state is None:
        state = new_brand_state(partition, start, record["brand"])
        brand_states[brand] = state
        brands_in(partition).add(brand)
    if start < state["closed_through"]:
        count_late(brand, state, start, offset)
    else:
        key = bucket_key(brand, start)
        stored = stored_bucket(key)
        if stored is None or stored[1] < offset:  # else: redelivered after a restart, already counted
            digest = stored[0] if stored else BucketDigest()
            digest.add(record)
            open_buckets[key] = {"digest": digest.to_dict(), "offset": offset}
    counted_mentions.add(mention_key, partition=partition, now=now)


def count_late(brand: str, state: dict, start: int, offset: int) -> None:
    """A mention for a bucket the detector already closed: the window count stays exact, the decision stands."""
    history = state["history"]
    if history and start < history[0][0]:
        metrics.LATE_MENTIONS.labels(state.get("name", brand)).inc()
        return  # older than the kept history
    position = bisect.bisect_left([entry[0] for entry in history], start)
    if position < len(history) and history[position][0] == start:
        entry = history[position]
        if entry[2] >= offset:
            return  # redelivered after a restart, already counted
        entry[1] += 1
        entry[2] = offset
    else:
        history.insert(position, [start, 1, offset])
    brand_states[brand] = state
    metrics.LATE_MENTIONS.labels(state.get("name", brand)).inc()


def to_bucket(start: int, digest: BucketDigest) -> Bucket:
    return Bucket(
        start=datetime.fromtimestamp(start, timezone.utc),
        count=digest.count,
        negative=digest.negative,
        positive=digest.positive,
        reach=float(digest.reach),
    )


def alert_event(brand: str, decision, explanation: dict) -> dict:
    return {
        "schema_version": 1,
        "event_id": f"{decision.incident_id}:{decision.seq}",
        "incident_id": decision.incident_id,
        "event": decision.event,
        "kind": decision.kind,
        "brand": brand,
        "at": format_rfc3339(decision.at),
        "started_at": format_rfc3339(decision.started_at),
        "severity": round(float(decision.severity), 3),
        "bucket_seconds": settings.bucket_s,
        "explanation": explanation,
        "emitted_at": format_rfc3339(datetime.now(timezone.utc)),
    }


async def close_buckets(brand: str, watermark: float) -> None:
    """Close every bucket of ``brand`` that ended more than the allowed lateness before the watermark; forget
    the brand when it has been silent, with no open incident, for longer than the brand state horizon."""
    state = stored_brand_state(brand, load_closable_brand_state)
    closable_until = bucket_start(watermark - settings.lateness_s)  # buckets starting before this are complete
    if state is None or closable_until <= state["closed_through"]:
        return
    name = state.get("name", brand)  # states written before brand keys: the key was the name
    # state written by another detector version or configuration: learning its baseline afresh
    detector = load_or_replace("brand-states", brand, state["detector"],
                               lambda stored: BrandDetector(DETECTOR_CONFIG, stored, brand=name),
                               lambda: BrandDetector(DETECTOR_CONFIG, None, brand=name))
    terms = load_or_replace("brand-states", brand, state["terms"],
                            lambda stored: TermBaseline.from_dict(stored) if stored else TermBaseline(), TermBaseline)
    incident = BucketDigest.from_dict(state["incident"]) if state["incident"] else None
    history = state["history"]
    closed_keys = []
    for start in range(state["closed_through"], closable_until, settings.bucket_s):
        key = bucket_key(brand, start)
        stored = stored_bucket(key)
        digest = stored[0] if stored else BucketDigest()
        if open_buckets.get(key) is not None:
            closed_keys.append(key)
        if stored:
            history.append([start, digest.count, stored[1]])
        decisions = detector.update(to_bucket(start, digest))
        if any(d.event == "opened" for d in decisions):
            incident = BucketDigest()
        if incident is not None:
            incident.merge(digest)
        else:
            terms.update(digest)  # a crisis must not teach the baseline its own terms
        for decision in decisions:
            await publish_alert(name, decision, build_explanation(decision, [incident or digest], terms))
        if any(d.event == "resolved" for d in decisions):
            incident = None
        update_gauges(name, digest, decisions, detector)
    del history[:-HISTORY_BUCKETS]
    state.update(closed_through=closable_until, detector=detector.to_state(), terms=terms.to_dict(),
                 incident=incident.to_dict() if incident else None, history=history)
    brand_states[brand] = state
    for key in closed_keys:  # only after the state that counts them is written: a crash in between loses nothing
        del open_buckets[key]
    last_active = history[-1][0] if history else closable_until
    if incident is None and closable_until - last_active > settings.brand_state_horizon_s:
        log.info("brand %s: silent since %s, longer than the brand state horizon; state deleted", name,
                 format_rfc3339(datetime.fromtimestamp(last_active, timezone.utc)))
        forget_brand(brand, state["p"])


def update_gauges(brand: str, digest: BucketDigest, decisions, detector: BrandDetector) -> None:
    metrics.BUCKET_OBSERVED.labels(brand).set(digest.count)
    metrics.NEGATIVE_SHARE.labels(brand).set(digest.negative / digest.count if digest.count else 0.0)
    if detector.last_expected is not None:
        metrics.BUCKET_EXPECTED.labels(brand).set(detector.last_expected)
    for decision in decisions:
        if decision.event != "resolved":
            metrics.SEVERITY.labels(brand, decision.kind).set(decision.severity)
    for kind in ("crisis", "opportunity"):
        is_open = detector.open_incident_kind == kind
        metrics.INCIDENTS_OPEN.labels(brand, kind).set(1 if is_open else 0)
        if not is_open:
            metrics.SEVERITY.labels(brand, kind).set(0.0)


async def publish_alert(brand: str, decision, explanation: dict) -> None:
    alert = alert_event(brand, decision, explanation)
    problems = validate("alert", alert)
    if problems:  # a bug on our side: publish anyway (the alert matters more), but loudly
        log.error("alert %s does not match schemas/alert.v1.json: %s", alert["event_id"], problems)
    await alerts_topic.send(key=brand.encode(), value=orjson.dumps(alert))
    metrics.ALERT_EVENTS.labels(decision.kind, decision.event).inc()
    log.warning("alert %s %s %s severity %.2f", decision.kind, decision.event, brand, decision.severity)


@app.agent(enriched_topic)
async def detect(stream):
    async for event in stream.events():
        message = event.message
        origin = functools.partial(dict, topic=message.topic, partition=message.partition, offset=message.offset,
                                   key=message.key, original=event.value)
        async with guard("detect", origin):
            await detect_one(orjson.loads(event.value), message.partition, message.offset)


async def detect_one(record: dict, partition: int, offset: int) -> None:
    now = time.time()
    event_time = epoch(record["created_at"])
    counted_mentions.purge_if_due(partition, now)
    count_mention(record, event_time, partition, offset, now)
    if event_time > _watermarks.get(partition, float("-inf")):
        _watermarks[partition] = event_time
    watermark = _watermarks[partition]
    boundary = bucket_start(watermark - settings.lateness_s)
    if boundary != _boundaries.get(partition):  # a bucket boundary passed: every brand here may close
        _boundaries[partition] = boundary
        for brand in sorted(brands_in(partition)):
            await close_buckets(brand, watermark)
    else:  # only this mention's brand can be behind (a brand seen for the first time)
        await close_buckets(brand_key(record["brand"]), watermark)


@app.page("/ascolta/windows")
async def windows_view(web, request):
    """Per-brand bucket counts held by this worker, by display name: open buckets and the recent closed history."""
    names = {brand: state.get("name", brand) for brand, state in brand_states.items() if isinstance(state, dict)}
    result: dict[str, dict] = {}
    for key, stored in open_buckets.items():
        if stored:
            brand, start = key.rsplit("|", 1)
            result.setdefault(names.get(brand, brand), {"open": {}, "closed": {}})["open"][start] = stored["digest"]["count"]
    for brand, state in brand_states.items():
        if isinstance(state, dict) and "history" in state:
            entry = result.setdefault(names[brand], {"open": {}, "closed": {}})
            entry["closed"] = {str(start): count for start, count, _ in state["history"]}
            entry["closed_through"] = state["closed_through"]
    return web.json(result)
