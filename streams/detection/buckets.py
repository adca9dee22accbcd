"""Per-brand event-time buckets: counting mentions into them, lateness, and closing them through the detector.

One path for the stream and for ``ascolta detect``: :class:`BucketBook` works over two mappings, Faust
tables in the worker (:mod:`streams.detect`) and plain dicts offline (:mod:`streams.detection.offline`), so
both count, close and explain with the same code. Values are JSON-safe dicts, so the tables changelog them:

* open buckets, ``"<brand>|<bucket start, epoch seconds>"`` -> ``{"digest": BucketDigest dict, "offset":
  last applied input offset}``; the offset makes counting idempotent under redelivery;
* brand states, brand key (:func:`~streams.text.brand_key`, so 'ACME' and 'Acme' are one brand) ->
  ``{"p": input partition, "closed_through": first bucket still open, "detector", "terms", "incident",
  "history": [[start, count, last offset], ...], "name": display name, as first seen}``.

Stored values come back from a changelog written by older versions or corrupted; one that cannot be loaded
is replaced (:mod:`.stored`), never a crash at every bucket boundary. A brand silent for longer than the
horizon, with no open incident, is forgotten, so brands that come and go do not pile up.

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

from ..text import brand_key
from .alert import Alert, build_explanation
from .detector import BrandDetector, Bucket, DetectorConfig
from .digest import BucketDigest, TermBaseline
from .stored import load_brand_state, load_closable_brand_state, load_digest, load_or_replace

log = logging.getLogger(__name__)

HISTORY_SECONDS = 2 * 24 * 3600  # closed bucket counts kept per brand (two days)
# Table names, as the replaced-values metric labels them.
OPEN_BUCKETS, BRAND_STATES = "open-buckets", "brand-states"


def bucket_key(brand: str, start: int) -> str:
    return f"{brand}|{start}"


def to_bucket(start: int, digest: BucketDigest) -> Bucket:
    """The detector's view of a digest; sentiment unknown when none of its mentions carries a label; copies
    weighed down (:meth:`BucketDigest.evidence`)."""
    unknown = digest.count > 0 and digest.labelled == 0
    count, negative, positive = digest.evidence()
    return Bucket(
        start=datetime.fromtimestamp(start, timezone.utc),
        count=count,
        negative=None if unknown else negative,
        positive=None if unknown else positive,
        reach=float(digest.reach),
    )


class BrandTimeline:
    """One brand's closing side: its detector, its usual vocabulary, and the digest of its open incident.

    Domain policy lives in :meth:`close`: the explanation covers the whole incident, and a crisis must
    not teach the baseline its own terms.
    """

    def __init__(self, key: str, config: DetectorConfig, state: dict, on_replaced: Callable[[str], None]) -> None:
        self.brand = brand = state.get("name", key)  # states written before brand keys: the key was the name
        # state written by another detector version or configuration: its baseline is learnt afresh
        self.detector = load_or_replace(BRAND_STATES, key, state["detector"],
                                        lambda stored: BrandDetector(config, stored, brand=brand),
                                        lambda: BrandDetector(config, None, brand=brand), on_replaced)
        self.terms = load_or_replace(BRAND_STATES, key, state["terms"],
                                     lambda stored: TermBaseline.from_dict(stored) if stored else TermBaseline(),
                                     TermBaseline, on_replaced)
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


def _ignore(_: str) -> None:
    pass


class BucketBook:
    """Counting and closing per-brand buckets over ``open_buckets`` and ``brand_states`` (see module doc).

    ``horizon_s``: a brand silent (no mention, no open incident) for longer loses its state; None keeps every
    brand. The worker reports through ``on_replaced(table)`` (a stored value could not be loaded) and
    ``on_forgotten(display name)`` (a brand's state was deleted: its metric series go too).
    """

    def __init__(self, config: DetectorConfig, lateness_s: int, open_buckets: MutableMapping,
                 brand_states: MutableMapping, *, horizon_s: int | None = None,
                 on_replaced: Callable[[str], None] = _ignore, on_forgotten: Callable[[str], None] = _ignore) -> None:
        self.config = config
        self.bucket_s = config.bucket_seconds
        self.lateness_s = lateness_s
        self.open_buckets = open_buckets
        self.brand_states = brand_states
        self.horizon_s = horizon_s
        self.on_replaced = on_replaced
        self.on_forgotten = on_forgotten
        self.history_buckets = HISTORY_SECONDS // self.bucket_s
        self.clock = PartitionClock()

    def bucket_start(self, event_time: float) -> int:
        return int(event_time // self.bucket_s) * self.bucket_s

    def brands_in(self, partition: int) -> set[str]:
        """Brands whose state lives in this partition, rebuilt from the (recovered) states when unknown."""
        if partition not in self.clock.brands:
            self.clock.brands[partition] = {b for b, s in self.brand_states.items()
                                            if isinstance(s, dict) and s.get("p") == partition}
        return self.clock.brands[partition]

    def display_name(self, brand: str) -> str:
        """The name ``brand`` (any spelling) is shown by: the spelling its state was created with."""
        state = self.brand_states.get(brand_key(brand))
        return state.get("name", brand) if isinstance(state, dict) else brand

    def _stored_state(self, key: str, load: Callable[[object], dict] = load_brand_state) -> dict | None:
        """The brand's state, or None when there is none or it cannot be loaded (then the brand is forgotten)."""
        stored = self.brand_states.get(key)
        if stored is None:
            return None
        state = load_or_replace(BRAND_STATES, key, stored, load, lambda: None, self.on_replaced)
        if state is None:
            self.forget(key)
        return state

    def _stored_bucket(self, key: str) -> tuple[BucketDigest, int] | None:
        """An open bucket's digest and last applied offset; None when there is none or it cannot be loaded."""
        stored = self.open_buckets.get(key)
        if stored is None:
            return None
        return load_or_replace(OPEN_BUCKETS, key, stored, lambda s: (load_digest(s["digest"]), int(s["offset"])),
                               lambda: None, self.on_replaced)

    def forget(self, key: str) -> None:
        """Delete a brand's state (its open buckets are already closed) and report its display name."""
        state = self.brand_states.pop(key, None)
        for brands in self.clock.brands.values():
            brands.discard(key)
        self.on_forgotten(state.get("name", key) if isinstance(state, dict) else key)

    def count(self, record: dict, event_time: float, partition: int, offset: int) -> bool:
        """Add one mention to its brand's bucket, once per offset. True when it came late (its bucket had
        closed) for the first time: the caller reports those."""
        brand = brand_key(record["brand"])
        start = self.bucket_start(event_time)
        state = self._stored_state(brand)
        if state is None:
            state = {"p": partition, "closed_through": start, "detector": None, "terms": None, "incident": None,
                     "history": [], "name": record["brand"]}
            self.brand_states[brand] = state
            self.brands_in(partition).add(brand)
        if start < state["closed_through"]:
            return self._count_late(brand, state, start, offset)
        key = bucket_key(brand, start)
        stored = self._stored_bucket(key)
        if stored is None or stored[1] < offset:  # else: redelivered after a restart, already counted
            digest = stored[0] if stored else BucketDigest()
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
        """After a mention of ``brand`` at ``event_time``: the partition's watermark and the brand keys that
        may have buckets to close (all of the partition's when a bucket boundary passed, else this one's)."""
        watermarks, boundaries = self.clock.watermarks, self.clock.boundaries
        if event_time > watermarks.get(partition, float("-inf")):
            watermarks[partition] = event_time
        watermark = watermarks[partition]
        boundary = self.bucket_start(watermark - self.lateness_s)
        if boundary != boundaries.get(partition):
            boundaries[partition] = boundary
            return watermark, sorted(self.brands_in(partition))
        return watermark, [brand_key(brand)]  # only this brand can be behind (a brand seen for the first time)

    def close(self, brand: str, watermark: float) -> Closing:
        """Judge every bucket of the brand keyed ``brand`` that ended more than the allowed lateness before
        ``watermark``."""
        return self.close_until(brand, self.bucket_start(watermark - self.lateness_s))

    def close_until(self, brand: str, closable_until: int) -> Closing:
        """Judge the buckets of the brand keyed ``brand`` starting before ``closable_until`` (empty ones
        included); on commit, forget the brand when it has been silent longer than the horizon."""
        state = self._stored_state(brand, load_closable_brand_state)
        if state is None or closable_until <= state["closed_through"]:
            return Closing([], lambda: None)
        timeline = BrandTimeline(brand, self.config, state, self.on_replaced)
        history = state["history"]
        closed, closed_keys = [], []
        for start in range(state["closed_through"], closable_until, self.bucket_s):
            key = bucket_key(brand, start)
            stored = self._stored_bucket(key)
            digest = stored[0] if stored else BucketDigest()
            if self.open_buckets.get(key) is not None:  # an unloadable one is deleted too
                closed_keys.append(key)
            if stored:
                history.append([start, digest.count, stored[1]])
            closed.append(ClosedBucket(start, digest, timeline.close(start, digest), timeline))

        def commit() -> None:
            del history[:-self.history_buckets]
            state.update(closed_through=closable_until, history=history, **timeline.state())
            self.brand_states[brand] = state
            for key in closed_keys:  # only after the state that counts them is written: a crash loses nothing
                del self.open_buckets[key]
            last_active = history[-1][0] if history else closable_until
            if (self.horizon_s is not None and timeline.incident is None
                    and closable_until - last_active > self.horizon_s):
                log.info("brand %s: silent since %s, longer than the brand state horizon; state deleted",
                         timeline.brand, datetime.fromtimestamp(last_active, timezone.utc).isoformat())
                self.forget(brand)

        return Closing(closed, commit)
