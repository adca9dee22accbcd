"""Per-brand event-time buckets: counting mentions into them, lateness, and closing them through the detector.

One path for the stream and for ``ascolta detect``: :class:`BucketBook` works over two mappings, Faust
tables in the worker (:mod:`streams.detect`) and plain dicts offline (:mod:`streams.detection.offline`), so
both count, close and explain with the same code. Values are JSON-safe dicts, so the tables changelog them:

* open buckets, ``"<brand>|<bucket start, epoch seconds>"`` -> ``{"digest": BucketDigest dict, "offset":
  last applied input offset}``; the offset makes counting idempotent under redelivery;
* brand states, ``brand`` -> ``{"p": input partition, "closed_through": first bucket still open,
  "detector", "terms", "incident", "history": [[start, count, last offset], ...]}``.

A bucket closes once the partition's watermark (the latest event time seen on it) has passed its end by the
allowed lateness; a mention for an already closed bucket is late: it keeps the closed counts in ``history``
exact, the decision stands.
"""
from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .alert import Alert, build_explanation
from .detector import BrandDetector, Bucket, DetectorConfig
from .digest import BucketDigest, TermBaseline

log = logging.getLogger(__name__)

HISTORY_SECONDS = 2 * 24 * 3600  # closed bucket counts kept per brand (two days)


def bucket_key(brand: str, start: int) -> str:
    return f"{brand}|{start}"


def to_bucket(start: int, digest: BucketDigest) -> Bucket:
    """The detector's view of a digest; sentiment unknown when none of its mentions carries a label."""
    unknown = digest.count > 0 and digest.labelled == 0
    return Bucket(
        start=datetime.fromtimestamp(start, timezone.utc),
        count=digest.count,
        negative=None if unknown else digest.negative,
        positive=None if unknown else digest.positive,
        reach=float(digest.reach),
    )


class BrandTimeline:
    """One brand's closing side: its detector, its usual vocabulary, and the digest of its open incident.

    Domain policy lives in :meth:`close`: the explanation covers the whole incident, and a crisis must
    not teach the baseline its own terms.
    """

    def __init__(self, brand: str, config: DetectorConfig, state: dict) -> None:
        self.brand = brand
        try:
            self.detector = BrandDetector(config, state["detector"], brand=brand)
        except ValueError as exc:  # state written by another detector version or configuration
            log.warning("brand %s: detector state not reusable (%s); learning its baseline afresh", brand, exc)
            self.detector = BrandDetector(config, None, brand=brand)
        self.terms = TermBaseline.from_dict(state["terms"]) if state["terms"] else TermBaseline()
        self.incident = BucketDigest.from_dict(state["incident"]) if state["incident"] else None

    def close(self, start: int, digest: BucketDigest) -> list[Alert]:
        """Judge one complete bucket; the alerts it raises, each explained by its incident so far."""
        decisions = self.detector.update(to_bucket(start, digest))
        if any(d.event == "opened" for d in decisions):
            self.incident = BucketDigest()
        if self.incident is not None:
            self.incident.merge(digest)
        else:
            self.terms.update(digest)  # a crisis must not teach the baseline its own terms
        alerts = [Alert(self.brand, d, build_explanation(d, [self.incident or digest], self.terms)) for d in decisions]
        if any(d.event == "resolved" for d in decisions):
            self.incident = None
        return alerts

    def state(self) -> dict:
        return {"detector": self.detector.to_state(), "terms": self.terms.to_dict(),
                "incident": self.incident.to_dict() if self.incident else None}


@dataclass
class ClosedBucket:
    """One bucket just judged: what the caller publishes (``alerts``) and reports (gauges)."""

    start: int
    digest: BucketDigest
    alerts: list[Alert]
    timeline: BrandTimeline


@dataclass
class Closing:
    """The buckets one :meth:`BucketBook.close` judged. Publish their alerts first, then :meth:`commit`:
    a crash in between publishes them again (same event ids) instead of losing them."""

    buckets: list[ClosedBucket]
    commit: Callable[[], None]


@dataclass
class PartitionClock:
    """Per input partition: the watermark and the last closing boundary, plus the brands whose state lives
    there. Worker-local caches, rebuilt from the tables on demand: :meth:`reset` drops them on rebalance."""

    watermarks: dict[int, float] = field(default_factory=dict)
    boundaries: dict[int, int] = field(default_factory=dict)
    brands: dict[int, set[str]] = field(default_factory=dict)

    def reset(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self.watermarks.pop(partition, None)
            self.boundaries.pop(partition, None)
            self.brands.pop(partition, None)


class BucketBook:
    """Counting and closing per-brand buckets over ``open_buckets`` and ``brand_states`` (see module doc)."""

    def __init__(self, config: DetectorConfig, lateness_s: int, open_buckets: MutableMapping,
                 brand_states: MutableMapping) -> None:
        self.config = config
        self.bucket_s = config.bucket_seconds
        self.lateness_s = lateness_s
        self.open_buckets = open_buckets
        self.brand_states = brand_states
        self.history_buckets = HISTORY_SECONDS // self.bucket_s
        self.clock = PartitionClock()

    def bucket_start(self, event_time: float) -> int:
        return int(event_time // self.bucket_s) * self.bucket_s

    def brands_in(self, partition: int) -> set[str]:
        """Brands whose state lives in this partition, rebuilt from the (recovered) states when unknown."""
        if partition not in self.clock.brands:
            self.clock.brands[partition] = {b for b, s in self.brand_states.items() if s and s["p"] == partition}
        return self.clock.brands[partition]

    def count(self, record: dict, event_time: float, partition: int, offset: int) -> bool:
        """Add one mention to its brand's bucket, once per offset. True when it came late (its bucket had
        closed) for the first time: the caller reports those."""
        brand = record["brand"]
        start = self.bucket_start(event_time)
        state = self.brand_states.get(brand)
        if state is None:
            state = {"p": partition, "closed_through": start, "detector": None, "terms": None, "incident": None,
                     "history": []}
            self.brand_states[brand] = state
            self.brands_in(partition).add(brand)
        if start < state["closed_through"]:
            return self._count_late(brand, state, start, offset)
        key = bucket_key(brand, start)
        stored = self.open_buckets.get(key)
        if stored is None or stored["offset"] < offset:  # else: redelivered after a restart, already counted
            digest = BucketDigest.from_dict(stored["digest"]) if stored else BucketDigest()
            digest.add(record)
            self.open_buckets[key] = {"digest": digest.to_dict(), "offset": offset}
        return False

    def _count_late(self, brand: str, state: dict, start: int, offset: int) -> bool:
        history = state["history"]
        if history and start < history[0][0]:
            return True  # older than the kept history
        position = bisect.bisect_left([entry[0] for entry in history], start)
        if position < len(history) and history[position][0] == start:
            entry = history[position]
            if entry[2] >= offset:
                return False  # redelivered after a restart, already counted
            entry[1] += 1
            entry[2] = offset
        else:
            history.insert(position, [start, 1, offset])
        self.brand_states[brand] = state
        return True

    def due(self, brand: str, event_time: float, partition: int) -> tuple[float, list[str]]:
        """After a mention of ``brand`` at ``event_time``: the partition's watermark and the brands that may
        have buckets to close (all of the partition's when a bucket boundary passed, else this one)."""
        watermarks, boundaries = self.clock.watermarks, self.clock.boundaries
        if event_time > watermarks.get(partition, float("-inf")):
            watermarks[partition] = event_time
        watermark = watermarks[partition]
        boundary = self.bucket_start(watermark - self.lateness_s)
        if boundary != boundaries.get(partition):
            boundaries[partition] = boundary
            return watermark, sorted(self.brands_in(partition))
        return watermark, [brand]  # only this brand can be behind (a brand seen for the first time)

    def close(self, brand: str, watermark: float) -> Closing:
        """Judge every bucket of ``brand`` that ended more than the allowed lateness before ``watermark``."""
        return self.close_until(brand, self.bucket_start(watermark - self.lateness_s))

    def close_until(self, brand: str, closable_until: int) -> Closing:
        """Judge the buckets of ``brand`` starting before ``closable_until`` (empty ones included)."""
        state = self.brand_states[brand]
        if closable_until <= state["closed_through"]:
            return Closing([], lambda: None)
        timeline = BrandTimeline(brand, self.config, state)
        history = state["history"]
        closed, closed_keys = [], []
        for start in range(state["closed_through"], closable_until, self.bucket_s):
            key = bucket_key(brand, start)
            stored = self.open_buckets.get(key)
            digest = BucketDigest.from_dict(stored["digest"]) if stored else BucketDigest()
            if stored:
                history.append([start, digest.count, stored["offset"]])
                closed_keys.append(key)
            closed.append(ClosedBucket(start, digest, timeline.close(start, digest), timeline))

        def commit() -> None:
            del history[:-self.history_buckets]
            state.update(closed_through=closable_until, history=history, **timeline.state())
            self.brand_states[brand] = state
            for key in closed_keys:  # only after the state that counts them is written: a crash loses nothing
                del self.open_buckets[key]

        return Closing(closed, commit)
