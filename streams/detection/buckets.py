"""Per-brand event-time buckets: counting mentions into them, lateness, and closing them through the detector.

One path for the stream and for ``ascolta detect``: :class:`BucketBook` works over the mappings of
:class:`DetectTables`, Faust tables in the worker (:mod:`streams.detect`) and plain dicts offline
(:mod:`streams.detection.offline`), so both count, close and explain with the same code. Values are JSON-safe,
so the tables changelog them. In the worker the six are key-prefixed views of one table, ``detect-state``
(:meth:`DetectTables.within`, prefixes in ``VIEWS``; the detect stage's counted-mention keys are a seventh, ``m|``),
so a crash keeps its writes in order. The layout (the windows view, ``/ascolta/windows``, reads it too):

* ``open-buckets``: ``"<brand>|<bucket start, epoch s>"`` -> ``{"digest": BucketDigest dict, "offset": last
  applied input offset}``; the offset makes counting idempotent under redelivery;
* ``brand-states``: brand key (:func:`~streams.text.brand_key`: 'ACME' and 'Acme' are one brand) -> the brand
  record ``{"v": 3, "p": input partition, "name": display name as first seen, "closed_through": first bucket
  the detector has not judged, "last_active": start of the last bucket with mentions, "hot": judged at every
  boundary, "incident": BucketDigest dict of the open incident or None, "chunks": [history chunk starts],
  "recent": the latest history chunk, "early_from": the count from which the next bucket is judged while still
  open, "detector": :meth:`BrandDetector.to_state` as JSON text (opaque; it holds an incident opened early),
  "terms": :meth:`TermBaseline.to_dict` as JSON text (opaque)}`` (the last four absent until the brand is first
  judged); one record, so a close writes the judged buckets, their counts and the detector's step in one write;
* ``detector-states``, ``term-baselines``: brand key -> the detector state and term baseline of a record of
  version 2 (written by the version before, which kept them apart). Read while the record is of version 2; the
  brand's next close or early opening moves them into its record and deletes them (:meth:`BucketBook._parts`);
* ``bucket-history``: ``"<brand>|<hour start>"`` -> ``[[bucket start, count, last offset], ...]``: closed
  counts, late mentions included, for the last two days; the latest hour is the record's ``recent`` (a close
  counts into it), and moves to its key when a later hour takes its place (a record without ``recent``, of
  version 2, has every hour under its key);
* ``partition-clocks``: input partition (str) -> ``{"watermark": event time, "boundary": first bucket still
  open}``, written when the boundary moves, so lateness survives a restart;
* ``awaited-mentions``: de-duplication key of a mention announced at ingest and not yet counted -> ``{"p": input
  partition, "t": its event time, "w": wall clock when announced}``: it holds its partition's boundary.

Cost follows activity: a bucket boundary judges only the brands with mentions in the closing buckets and the
"hot" ones (an open incident, or recent mentions that a window could still fire on), and writes only their
records. A quiet brand is left alone; when its next bucket closes, its run of empty buckets is caught up
at once (:meth:`BrandDetector.skip_empty`, :meth:`TermBaseline.skip`), so ``closed_through`` of a quiet brand
lags the partition's boundary. Brands silent past the horizon (no incident) are swept once an hour.

An extreme burst opens its incident before its bucket closes (:meth:`BucketBook.open_early`, after each counted
mention): judged only once the open bucket's count passes the brand's ``early_from`` (stored at its last close)
and then at counts a quarter apart, so ordinary brands pay one comparison per mention. The detector state in the
brand record keeps the early incident (the one write), and the bucket's close continues it. Mentions announced
before they are scored (:meth:`BucketBook.arrive`, worker memory only) make that judgement current while the
model is behind.

A bucket closes once the partition's watermark (the latest event time seen on it, or the wall clock on a quiet
live partition: :meth:`BucketBook.tick`) has passed its end by the allowed lateness, and no mention announced for
it is still being scored; a mention for an already closed bucket is late: it keeps the counts in the history
exact, the decision stands. Why the announced mentions hold the clock: the model scores a brand's mentions on
every partition and worker, so they reach the detector out of event-time order (hours apart in a replay); a
bucket closed on the latest event time alone would be judged on whichever part was scored first, and the alerts
would depend on the number of workers. Ingest announces each mention, in raw order, before it is scored
(:meth:`BucketBook.arrive`); the announcement is stored, so a worker that takes over the partition after a crash
still waits for it, and it stops holding after ``hold_s`` of wall clock (``ASCOLTA_ARRIVAL_HOLD_SECONDS``, 600 s:
a mention the model dead-lettered, or one scored later still).
A new brand's history starts at its earliest mention that is not late by the partition's clock, whichever of its
mentions was scored first.

The detector and term states are stored as their JSON text (:func:`stored_json`), the two largest values of a
brand: one string instead of hundreds of number objects (``benchmarks/brands_scale.py`` at 10,000 brands: peak
RSS 131 instead of 202 MiB), and a snapshot that the next close parses into new objects faster than it could
copy stored ones (values written as objects by earlier versions still load).

A value stored in a table is never changed in place, only replaced: Faust serialises a changelog write when
its producer buffer sends it, so an object changed after it was stored would reach the changelog ahead of the
writes that belong with the change, and a crash could keep one without the other. ``commit`` writes in the
order a crash may cut: the complete hours of history, then the brand record, which says the buckets are judged
and holds their counts and the detector's and term baseline's step with them (a crash keeps all or none), then
the open buckets deleted.

Stored values come back from a changelog written by older versions or corrupted; one that cannot be loaded
is replaced (:mod:`.stored`), never a crash at every bucket boundary.
"""
from __future__ import annotations

import functools
import heapq
import logging
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import orjson

from .. import text
from .alert import Alert, build_explanation
from .detector import STATE_VERSION, BrandDetector, Bucket, DetectorConfig, json_copy
from .digest import BucketDigest, TermBaseline
from .stored import (BRAND_RECORD_VERSION, load_brand_state, load_closable_brand_state, load_digest,
                     load_history_chunk, load_or_replace)

log = logging.getLogger(__name__)

SPLIT_RECORD = 2  # the brand record version whose detector and term states are under their own keys
HISTORY_SECONDS = 2 * 24 * 3600  # closed bucket counts kept per brand (two days)
CHUNK_SECONDS = 3600  # one history record per brand and hour: a boundary rewrites a few hundred bytes
TONE_SAMPLE = 20  # scored mentions of an open bucket whose tone stands for the ones still being scored ...
TONE_WAIT_S = 10.0  # ... else how long (wall clock) its arrivals wait for that tone before volume decides alone
SWEEP_SECONDS = 3600  # how often (event time) a partition looks for brands silent past the horizon
HOLD_S = 600.0  # wall clock an announced mention holds its partition's boundary for, waiting to be counted
# Table names, as the replaced-values metric labels them.
OPEN_BUCKETS, BRAND_STATES, DETECTORS, TERMS, HISTORY, CLOCKS, AWAITED = (
    "open-buckets", "brand-states", "detector-states", "term-baselines", "bucket-history", "partition-clocks",
    "awaited-mentions")


# A brand's key, per mention and per close: cached, as normalising a name walks it character by character.
brand_key = functools.lru_cache(maxsize=1 << 16)(text.brand_key)


def stored_json(value: Any) -> str:
    """A detector or term state as the tables keep it: its JSON text (module doc)."""
    return orjson.dumps(value).decode()


def loaded_json(stored: Any) -> Any:
    """A stored detector or term state as new objects, never the stored ones: its JSON text parsed, or a copy of
    an object written by an earlier version. Unreadable text raises ValueError (:func:`.stored.load_or_replace`)."""
    return orjson.loads(stored) if isinstance(stored, str) else json_copy(stored)


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
        negative_reach=float(digest.negative_reach),
    )


class KeyPrefixed(MutableMapping):
    """The keys of one mapping that start with ``prefix``, without it: several kinds of state in one table.

    Why one table: a producer keeps the order of writes within a changelog partition, not across topics, so
    writes to several tables may reach the broker in any order and a crash could keep a later write without
    an earlier one it depends on (a mention's dedup key without its count). In one table a crash keeps a
    prefix of the writes, in the order they were made. Iterating scans the whole mapping: for rare scans."""

    def __init__(self, mapping: MutableMapping, prefix: str, name: str) -> None:
        self.mapping, self.prefix, self.name = mapping, prefix, name

    def __getitem__(self, key: str):
        return self.mapping[self.prefix + key]

    def get(self, key: str, default=None):
        return self.mapping.get(self.prefix + key, default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.prefix + key in self.mapping

    def __setitem__(self, key: str, value) -> None:
        self.mapping[self.prefix + key] = value

    def __delitem__(self, key: str) -> None:
        del self.mapping[self.prefix + key]

    def __iter__(self):
        n = len(self.prefix)
        return (key[n:] for key in list(self.mapping.keys()) if isinstance(key, str) and key.startswith(self.prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class DetectTables:
    """The mappings a :class:`BucketBook` keeps its state in (see the module doc for their layout)."""

    open_buckets: MutableMapping = field(default_factory=dict)
    brand_states: MutableMapping = field(default_factory=dict)
    detectors: MutableMapping = field(default_factory=dict)
    terms: MutableMapping = field(default_factory=dict)
    history: MutableMapping = field(default_factory=dict)
    clocks: MutableMapping = field(default_factory=dict)
    awaited: MutableMapping = field(default_factory=dict)

    @classmethod
    def within(cls, table: MutableMapping) -> DetectTables:
        """All of them as key-prefixed views of one table (the worker's ``detect-state``: see
        :class:`KeyPrefixed` for why one)."""
        return cls(**{attribute: KeyPrefixed(table, prefix, name) for attribute, (prefix, name) in VIEWS.items()})


# Where each kind of state lives in the one table: key prefix and name (the name logs and metrics show).
VIEWS = {"open_buckets": ("o|", OPEN_BUCKETS), "brand_states": ("b|", BRAND_STATES), "detectors": ("d|", DETECTORS),
         "terms": ("t|", TERMS), "history": ("h|", HISTORY), "clocks": ("c|", CLOCKS),
         "awaited": ("a|", AWAITED)}


class BrandTimeline:
    """One brand's closing side: its detector, its usual vocabulary, and the digest of its open incident.

    Domain policy lives in :meth:`close`: the explanation covers the whole incident, and a crisis must
    not teach the baseline its own terms.
    """

    def __init__(self, key: str, config: DetectorConfig, state: dict, detector: object, terms: object,
                 on_replaced: Callable[[str], None]) -> None:
        self.brand = brand = state.get("name", key)
        # state written by another detector version or configuration: its baseline is learnt afresh; new objects
        # (loaded_json), as the detector steps its lists in place and a stored object must never change
        self.detector = load_or_replace(DETECTORS, key, detector,
                                        lambda stored: BrandDetector(config, loaded_json(stored), brand=brand),
                                        lambda: BrandDetector(config, None, brand=brand), on_replaced)
        self.terms = load_or_replace(TERMS, key, terms,
                                     lambda stored: TermBaseline.from_dict(loaded_json(stored)) if stored
                                     else TermBaseline(), TermBaseline, on_replaced)
        self.incident = BucketDigest.from_dict(state["incident"]) if state["incident"] else None

    def close(self, start: int, digest: BucketDigest) -> list[Alert]:
        """Judge one complete bucket; the alerts it raises, each explained by its incident so far.

        A bucket the stored detector has already judged raises nothing again; its digest joins the incident the
        detector holds open, which the older brand record does not know yet. Only a changelog of version 2 can
        hold one: there the detector's state was written before the brand record, and a crash could fall between
        (a record of version 3 holds both)."""
        bucket = to_bucket(start, digest)
        judged = self.detector.judged(bucket.start)
        decisions = [] if judged else self.detector.update(bucket)
        # The record knows no incident the detector holds: one opened early (BrandDetector.early), or a crash
        # between the two writes. It is explained by its buckets from this one on.
        if any(d.event == "opened" for d in decisions) or (
                self.incident is None and self.detector.open_incident_kind is not None):
            self.incident = BucketDigest()
        if self.incident is not None:
            self.incident.merge(digest)
        elif not judged:
            self.terms.update(digest)  # a crisis must not teach the baseline its own terms
        alerts = [Alert(self.brand, d, build_explanation(d, [self.incident or digest], self.terms)) for d in decisions]
        if any(d.event == "resolved" for d in decisions):
            self.incident = None
        return alerts

    def skip(self, start: int, buckets: int) -> None:
        """A quiet brand's run of empty buckets, at once (no event can come of them)."""
        self.detector.skip_empty(datetime.fromtimestamp(start, timezone.utc), buckets)
        self.terms.skip(buckets)


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
class EarlyOpening:
    """What :meth:`BucketBook.open_early` raised (at most one ``opened``). Publish, then :meth:`commit`: a crash in
    between raises it again, with the same event id, when the mention comes again."""

    alerts: list[Alert]
    commit: Callable[[], None]


NOT_EARLY = EarlyOpening([], lambda: None)


@dataclass
class PartitionClock:
    """Worker-local caches per input partition, rebuilt from the tables on demand; :meth:`reset` drops a
    partition's on every assignment change: watermarks and boundaries, when the last mention arrived (wall
    clock), the partition's brands, its hot brands, its open buckets by start, their digests as loaded (a
    mention adds to the object instead of reloading the stored dict)."""

    watermarks: dict[int, float] = field(default_factory=dict)
    boundaries: dict[int, int] = field(default_factory=dict)
    last_mention: dict[int, tuple[float, float]] = field(default_factory=dict)  # (wall time, watermark then)
    # mentions announced before they are scored (BucketBook.arrive): (brand key, bucket start) -> (their de-duplication
    # keys, the latest event time among them, the wall clock at each arrival), for the partition's open buckets only
    arrived: dict[int, dict[tuple[str, int], tuple[set[str], float, list[float]]]] = field(default_factory=dict)
    brands: dict[int, set[str]] = field(default_factory=dict)
    hot: dict[int, set[str]] = field(default_factory=dict)
    pending: dict[int, dict[int, set[str]]] = field(default_factory=dict)
    digests: dict[int, dict[str, tuple[BucketDigest, int]]] = field(default_factory=dict)  # open buckets, loaded
    awaited: dict[int, list[tuple[float, str]]] = field(default_factory=dict)  # heap of (event time, key), lazy

    def reset(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            for cache in (self.watermarks, self.boundaries, self.last_mention, self.arrived, self.brands, self.hot,
                          self.pending, self.digests, self.awaited):
                cache.pop(partition, None)


def _ignore(_: str) -> None:
    pass


class BucketBook:
    """Counting and closing per-brand buckets over :class:`DetectTables` (see module doc).

    ``horizon_s``: a brand silent (no mention, no open incident) for longer loses its state; None keeps every
    brand. The worker reports through ``on_replaced(table)`` (a stored value could not be loaded) and
    ``on_forgotten(display name)`` (a brand's state was deleted: its metric series go too).
    """

    def __init__(self, config: DetectorConfig, lateness_s: int, tables: DetectTables | None = None, *,
                 horizon_s: int | None = None, hold_s: float = HOLD_S, on_replaced: Callable[[str], None] = _ignore,
                 on_forgotten: Callable[[str], None] = _ignore) -> None:
        self.config = config
        self.bucket_s = config.bucket_seconds
        self.lateness_s = lateness_s
        self.hold_s = hold_s
        self.tables = tables = tables or DetectTables()
        self.open_buckets = tables.open_buckets
        self.brand_states = tables.brand_states
        self.horizon_s = horizon_s
        self.on_replaced = on_replaced
        self.on_forgotten = on_forgotten
        self.clock = PartitionClock()

    def bucket_start(self, event_time: float) -> int:
        return int(event_time // self.bucket_s) * self.bucket_s

    # ------------------------------------------------------------------------------- caches

    def _scan(self, partition: int) -> None:
        """Rebuild a partition's brand, hot-brand and open-bucket caches from the (recovered) tables."""
        brands, hot = set(), set()
        for key, state in self.brand_states.items():
            if isinstance(state, dict) and state.get("p") == partition:
                brands.add(key)
                if state.get("hot"):
                    hot.add(key)
        pending: dict[int, set[str]] = {}
        for key in self.open_buckets.keys():
            brand, _, start = key.rpartition("|")
            if brand in brands and start.lstrip("-").isdigit():
                pending.setdefault(int(start), set()).add(brand)
        self.clock.brands[partition], self.clock.hot[partition], self.clock.pending[partition] = brands, hot, pending

    def brands_in(self, partition: int) -> set[str]:
        """Brands whose state lives in this partition."""
        if partition not in self.clock.brands:
            self._scan(partition)
        return self.clock.brands[partition]

    def _hot(self, partition: int) -> set[str]:
        if partition not in self.clock.hot:
            self._scan(partition)
        return self.clock.hot[partition]

    def _pending(self, partition: int) -> dict[int, set[str]]:
        if partition not in self.clock.pending:
            self._scan(partition)
        return self.clock.pending[partition]

    def boundary(self, partition: int) -> int | None:
        """The partition's first bucket still open (None before its first mention), from the clocks table
        after a restart."""
        if partition not in self.clock.boundaries:
            stored = self.tables.clocks.get(str(partition))
            clock = load_or_replace(CLOCKS, str(partition), stored,
                                    lambda s: (float(s["watermark"]), int(s["boundary"])) if s is not None else None,
                                    lambda: None, self.on_replaced)
            if clock is None:
                return None
            self.clock.watermarks[partition], self.clock.boundaries[partition] = clock
        return self.clock.boundaries[partition]

    # ------------------------------------------------------------------------------- reading state

    def display_name(self, brand: str) -> str:
        """The name ``brand`` (any spelling) is shown by: the spelling its state was created with."""
        state = self.brand_states.get(brand_key(brand))
        return state.get("name", brand) if isinstance(state, dict) else brand

    def _stored_state(self, key: str, load: Callable[[object], dict] = load_brand_state) -> dict | None:
        """The brand's record, or None when there is none or it cannot be loaded (then the brand is forgotten)."""
        stored = self.brand_states.get(key)
        if stored is None:
            return None
        state = load_or_replace(BRAND_STATES, key, stored, load, lambda: None, self.on_replaced)
        if state is None:
            self.forget(key)
        return state

    def _parts(self, key: str, state: dict) -> tuple[object, object]:
        """The brand's stored detector and term states (JSON text, or objects written by an earlier version; None:
        none yet): in its record, or under their own keys in a record of version 2 (written before)."""
        if state["v"] == SPLIT_RECORD:
            return self.tables.detectors.get(key), self.tables.terms.get(key)
        return state.get("detector"), state.get("terms")

    def _drop_split_parts(self, key: str) -> None:
        """After a brand record that holds the detector and term states is written: their keys of version 2, if
        any (a record written before, or a crash between that write and this), deleted. A lookup when none."""
        for view in (self.tables.detectors, self.tables.terms):
            if key in view:
                del view[key]

    def _stored_bucket(self, key: str, partition: int) -> tuple[BucketDigest, int] | None:
        """An open bucket's digest and last applied offset; None when there is none or it cannot be loaded."""
        digests = self.clock.digests.setdefault(partition, {})
        if key in digests:
            return digests[key]
        stored = self.open_buckets.get(key)
        if stored is None:
            return None
        loaded = load_or_replace(OPEN_BUCKETS, key, stored, lambda s: (load_digest(s["digest"]), int(s["offset"])),
                                 lambda: None, self.on_replaced)
        if loaded is not None:
            digests[key] = loaded
        return loaded

    def _chunk(self, brand: str, state: dict, chunk_start: int) -> list[list[int]]:
        """One hour of the brand's history: the latest in its record (``recent``), the others under their keys."""
        key = bucket_key(brand, chunk_start)
        stored = state["recent"] if "recent" in state and chunk_start == max(state["chunks"]) \
            else self.tables.history.get(key)
        if stored is None:
            return []
        return load_or_replace(HISTORY, key, stored, load_history_chunk, list, self.on_replaced)

    def _keep_chunks(self, brand: str, state: dict, chunks: dict[int, list[list[int]]],
                     through: int | None = None) -> None:
        """Store the brand's changed history ``chunks`` (start -> entries) along with ``state``, its new record (a
        copy, written after this): the latest hour goes into the record, the others under their keys, the
        record's hour among them once a later one takes its place. With ``through`` (a close), the chunks older
        than the kept history are deleted."""
        kept = set(state["chunks"]) | set(chunks)
        if through is not None:
            for chunk_start in [s for s in kept if s + CHUNK_SECONDS <= through - HISTORY_SECONDS]:
                self.tables.history.pop(bucket_key(brand, chunk_start), None)
                kept.discard(chunk_start)
        latest = max(kept, default=None)
        held = max(state["chunks"]) if "recent" in state and state["chunks"] else None  # the hour in the record
        if held is not None and held in kept and held not in chunks:  # stays there, or moves to its key
            chunks = {**chunks, held: self._chunk(brand, state, held)}
        state.pop("recent", None)
        for chunk_start, chunk in chunks.items():
            if chunk_start == latest:
                state["recent"] = chunk
            elif chunk_start in kept:
                self.tables.history[bucket_key(brand, chunk_start)] = chunk
        state["chunks"] = sorted(kept)

    def history(self, brand: str, state: dict) -> list[list[int]]:
        """The brand's closed bucket counts, oldest first: [[start, count, last offset], ...]."""
        return [entry for start in sorted(state["chunks"]) for entry in self._chunk(brand, state, start)]

    def forget(self, key: str) -> None:
        """Delete a brand's state (it has no open bucket) and report its display name."""
        state = self.brand_states.pop(key, None)
        if isinstance(state, dict) and isinstance(state.get("chunks"), list):
            for start in state["chunks"]:
                self.tables.history.pop(bucket_key(key, start), None)
        self.tables.detectors.pop(key, None)
        self.tables.terms.pop(key, None)
        for cache in (self.clock.brands, self.clock.hot):
            for brands in cache.values():
                brands.discard(key)
        self.on_forgotten(state.get("name", key) if isinstance(state, dict) else key)

    # ------------------------------------------------------------------------------- counting

    def count(self, record: dict, event_time: float, partition: int, offset: int) -> bool:
        """Add one mention to its brand's bucket, once per offset. True when it came late (its bucket had
        closed) for the first time: the caller reports those."""
        brand = brand_key(record["brand"])
        start = self.bucket_start(event_time)
        state = self._stored_state(brand)
        if state is None:  # a new brand's history starts at its first mention, however old
            state = {"v": BRAND_RECORD_VERSION, "p": partition, "name": record["brand"], "closed_through": start,
                     "last_active": None, "hot": False, "incident": None, "chunks": []}
            self.brand_states[brand] = state
            self.brands_in(partition).add(brand)
        elif start < state["closed_through"] and start >= (self.boundary(state["p"]) or start):
            # a new brand's mention older than the one it was created by (scored later): nothing of the brand is
            # judged yet (a close never passes the boundary), so its history starts here, whatever the order
            state = {**state, "closed_through": start}
            self.brand_states[brand] = state
        elif start < max(state["closed_through"], self.boundary(state["p"]) or start):
            return self._count_late(brand, state, start, offset)
        key, partition = bucket_key(brand, start), state["p"]
        stored = self._stored_bucket(key, partition)
        if stored is None or stored[1] < offset:  # else: redelivered after a restart, already counted
            digest = stored[0] if stored else BucketDigest()
            digest.add(record)
            self.open_buckets[key] = {"digest": digest.to_dict(), "offset": offset}
            self.clock.digests[partition][key] = (digest, offset)
            self._pending(partition).setdefault(start, set()).add(brand)
        return False

    def _count_late(self, brand: str, state: dict, start: int, offset: int) -> bool:
        chunk_start = start // CHUNK_SECONDS * CHUNK_SECONDS
        if state["chunks"] and chunk_start < min(state["chunks"]):
            return True  # older than the kept history
        chunk = self._chunk(brand, state, chunk_start)
        entry = next((e for e in chunk if e[0] == start), None)
        if entry is not None and entry[2] >= offset:
            return False  # redelivered after a restart, already counted
        # new values, never the stored ones changed in place (module doc: never changed in place)
        chunk = sorted([e for e in chunk if e[0] != start] + [[start, entry[1] + 1 if entry else 1, offset]])
        record = dict(state)
        self._keep_chunks(brand, record, {chunk_start: chunk})
        if record != state:  # the chunk is the record's, or a new hour
            self.brand_states[brand] = record
        return True

    # ------------------------------------------------------------------------------- early opening

    def open_early(self, brand: str, event_time: float, now: float | None = None) -> EarlyOpening:
        """After a mention of ``brand`` at ``event_time`` is counted (and what is due closed): an extreme burst in
        its still open bucket opens the incident now (:meth:`BrandDetector.early`, the mention's event time minus
        the bucket's start elapsed: the brand's own clock, as its mentions arrive in order on its partition).
        ``now``: the wall clock when live (:meth:`arrive`).

        Cheap for ordinary traffic: judged only when the bucket's count reaches one of the checkpoints (each a
        quarter above the last: :func:`early_checkpoint`) at or above the brand's ``early_from``. The buckets
        before it that still wait for late mentions are judged first as they stand, on copies (their close
        commits them), so the stream, with its allowed lateness, decides as ``ascolta detect`` does."""
        key = brand_key(brand)
        state = self._stored_state(key)
        start = self.bucket_start(event_time)
        if state is None or not isinstance(state.get("early_from"), int) or start < state["closed_through"]:
            return NOT_EARLY
        stored = self._stored_bucket(bucket_key(key, start), state["p"])
        if stored is None or stored[0].count < state["early_from"] or not early_checkpoint(stored[0].count):
            return NOT_EARLY
        return self._judge_early(key, start, stored[0], event_time, now)

    def arrive(self, brand: str, event_time: float, mention_key: str, now: float, partition: int | None = None
               ) -> EarlyOpening:
        """A mention of ``brand`` at ``event_time`` announced at wall-clock ``now``, before the model has scored
        it (the detect stage reads ingest's arrivals topic), known by its de-duplication key: volume does not
        wait for sentiment. With its input ``partition`` (the brand's), it is awaited: the partition's buckets
        from its own on stay open until it is counted (:meth:`release`) or has waited ``hold_s``.

        Its open bucket is judged early at the same checkpoints as :meth:`open_early`, on the arrived count
        (:meth:`_partial` says with which tone). Arrivals live in worker memory for the open buckets only; after a
        restart the scored mentions alone open a burst, as before. An arrival neither counts nor moves the clock:
        its scored mention does both, once."""
        key = brand_key(brand)
        state = self._stored_state(key)
        start = self.bucket_start(event_time)
        if partition is not None:
            self._await(partition, mention_key, event_time, now)
        if state is None or start < max(state["closed_through"], self.boundary(state["p"]) or start):
            return NOT_EARLY  # a new brand (no baseline to judge against yet) or a bucket already closed
        buckets = self.clock.arrived.setdefault(state["p"], {})
        keys, latest, walls = buckets.get((key, start), (set(), event_time, []))
        if mention_key not in keys:
            keys.add(mention_key)
            walls.append(now)
        buckets[(key, start)] = (keys, max(latest, event_time), walls)
        if not isinstance(state.get("early_from"), int) or len(keys) < state["early_from"] or not early_checkpoint(
                len(keys)):
            return NOT_EARLY
        stored = self._stored_bucket(bucket_key(key, start), state["p"])
        return self._judge_early(key, start, stored[0] if stored else BucketDigest(), event_time, now)

    def _partial(self, key: str, partition: int, start: int, digest: BucketDigest, event_time: float,
                 now: float | None) -> tuple[Bucket, float]:
        """The open bucket as judged early, and its latest event time. The scored mentions (``digest``), unless
        more have arrived in a live bucket (its latest arrival less than a bucket before ``now``); then the arrived
        count, with

        * the scored part's tone once ``TONE_SAMPLE`` of the bucket are scored (scoring order does not depend on
          tone: a fair sample; copies weighed down alike);
        * no tone (the detector's volume-only test, stricter) once its oldest arrival not yet scored has waited
          ``TONE_WAIT_S`` of wall clock without such a sample: the model is behind, the tone follows with the
          scored mentions and updates the incident;
        * else the scored mentions alone: the tone is on its way.

        Reach is the scored part's (none is guessed). A replay of history decides as without arrivals."""
        bucket = to_bucket(start, digest)
        keys, latest, walls = self.clock.arrived.get(partition, {}).get((key, start), ((), event_time, []))
        arrived = len(keys)
        if arrived <= digest.count or now is None or now - latest > self.bucket_s:
            return bucket, event_time  # all scored, offline, or a replay of history: as without arrivals
        latest = max(latest, event_time)
        if digest.labelled >= TONE_SAMPLE and bucket.negative is not None:
            scale = arrived / digest.count
            return replace(bucket, count=round(bucket.count * scale), negative=round(bucket.negative * scale),
                           positive=round(bucket.positive * scale)), latest
        if now - walls[digest.count] >= TONE_WAIT_S:  # the oldest not yet scored (about first in, first out)
            return replace(bucket, count=max(bucket.count, arrived), negative=None, positive=None), latest
        return bucket, event_time

    def _judge_early(self, key: str, start: int, digest: BucketDigest, event_time: float, now: float | None
                     ) -> EarlyOpening:
        state = self._stored_state(key, load_closable_brand_state)
        detector, terms = self._parts(key, state) if state is not None else (None, None)
        if state is None or state["incident"] is not None or not isinstance(detector, (str, dict)):
            return NOT_EARLY  # an incident is open (the close judges its growth), or nothing judged yet
        try:
            detector = loaded_json(detector)
        except ValueError:
            return NOT_EARLY  # unreadable: the brand's next close replaces it (stored.load_or_replace)
        held = self.held_from(state["p"], now)
        if held is not None and self.bucket_start(held) < start:
            # a bucket before this one still waits for mentions being scored: judged as it stands it could open one
            # incident here and its own close a second; this bucket is judged early once those are counted
            return NOT_EARLY
        closing = self.close_until(key, start)  # never committed
        if any(closed.alerts for closed in closing.buckets):
            return NOT_EARLY  # the waiting buckets raise something: their close comes first
        timeline = closing.buckets[-1].timeline if closing.buckets else BrandTimeline(
            key, self.config, state, detector, terms, self.on_replaced)
        partial, latest = self._partial(key, state["p"], start, digest, event_time, now)
        decision = timeline.detector.early(partial, latest - start)
        if decision is None:
            return NOT_EARLY
        alert = Alert(timeline.brand, decision, build_explanation(decision, [digest], timeline.terms))
        early = timeline.detector.state.early

        def commit() -> None:
            """The brand record with its stored detector state plus the early incident is the one write (the term
            baseline as stored): the waiting buckets are judged by their own close, and the bucket's close continues
            the incident."""
            self.brand_states[key] = {
                **state, "v": BRAND_RECORD_VERSION, "detector": stored_json({**detector, "version": STATE_VERSION,
                                                                            "early": early}),
                "terms": terms if terms is None or isinstance(terms, str) else stored_json(terms)}
            self._drop_split_parts(key)

        return EarlyOpening([alert], commit)

    # ------------------------------------------------------------------------------- awaited mentions

    def _await(self, partition: int, mention_key: str, event_time: float, now: float) -> None:
        """Hold the partition's boundary for an announced mention, unless its bucket has closed already or it is
        awaited already (an announcement redelivered after a restart)."""
        boundary = self.boundary(partition)
        if (boundary is not None and self.bucket_start(event_time) < boundary) or mention_key in self.tables.awaited:
            return
        heap = self._awaited(partition)
        self.tables.awaited[mention_key] = {"p": partition, "t": event_time, "w": now}
        heapq.heappush(heap, (event_time, mention_key))

    def release(self, mention_key: str) -> None:
        """The mention keyed ``mention_key`` is counted (or was before): it no longer holds its partition."""
        if mention_key in self.tables.awaited:
            del self.tables.awaited[mention_key]

    def _awaited(self, partition: int) -> list[tuple[float, str]]:
        """The partition's awaited mentions as a heap by event time, rebuilt from the table after a reset."""
        heap = self.clock.awaited.get(partition)
        if heap is None:
            heap = [(entry["t"], key) for key, entry in self.tables.awaited.items() if isinstance(entry, dict)
                    and entry.get("p") == partition and isinstance(entry.get("t"), (int, float))]
            heapq.heapify(heap)
            self.clock.awaited[partition] = heap
        return heap

    def held_from(self, partition: int, now: float | None) -> float | None:
        """The event time of the partition's earliest mention announced and not yet counted (None: none): the
        buckets from its own on stay open. One that has waited ``hold_s`` of wall clock (a mention the enrich
        stage dead-lettered) is given up."""
        heap = self._awaited(partition)
        while heap:
            event_time, mention_key = heap[0]
            entry = self.tables.awaited.get(mention_key)
            if not isinstance(entry, dict) or entry.get("t") != event_time or entry.get("p") != partition:
                heapq.heappop(heap)  # counted since
                continue
            waited = 0.0 if now is None else now - float(entry.get("w", now))
            if waited > self.hold_s:
                log.warning("partition %d: mention %s announced %.0f s ago was never counted; its bucket may close",
                            partition, mention_key, waited)
                heapq.heappop(heap)
                del self.tables.awaited[mention_key]
                continue
            return event_time
        return None

    # ------------------------------------------------------------------------------- the clock

    def due(self, brand: str, event_time: float, partition: int, now: float | None = None) -> tuple[float, list[str]]:
        """After a mention of ``brand`` at ``event_time``: the partition's watermark and the brand keys to
        close (when a bucket boundary passed: those with open buckets before it and the hot ones, else this
        one). ``now``: the wall clock when live, which :meth:`tick` measures quiet time from."""
        self.boundary(partition)
        if now is not None:  # the latest event time of a mention, which quiet time is added to (not the ticks')
            last = self.clock.last_mention.get(partition)
            latest = self.clock.watermarks.get(partition, float("-inf")) if last is None else last[1]
            self.clock.last_mention[partition] = (now, max(event_time, latest))
        return self._advance(partition, event_time, [brand_key(brand)], now)

    def tick(self, partition: int, now: float) -> tuple[float, list[str]]:
        """Wall-clock time on a live partition: event time advances as much as the wall clock has since the
        last mention arrived (never past ``now``), so a quiet partition still closes its buckets. Replays of
        history keep their event time: their mentions arrive faster than the wall clock moves. The quiet time
        counts from the latest mention's event time, never from an earlier tick's: pauses between arrivals
        (a model batch, a restart) do not add up to a clock running ahead of the mentions still arriving."""
        self.boundary(partition)
        if partition not in self.clock.watermarks:
            return float("-inf"), []  # nothing seen on this partition yet
        last = self.clock.last_mention.get(partition)
        if last is None:  # after a restart or rebalance: quiet time counts from now
            self.clock.last_mention[partition] = (now, self.clock.watermarks[partition])
            return self.clock.watermarks[partition], []
        wall, watermark = last
        return self._advance(partition, min(watermark + (now - wall), now), [], now)

    def _advance(self, partition: int, watermark: float, otherwise: list[str], now: float | None
                 ) -> tuple[float, list[str]]:
        """Move the partition's watermark; the returned one is held back to the bucket of its earliest awaited
        mention (:meth:`held_from`), so that closing ``otherwise``'s buckets up to it never passes the boundary."""
        watermarks, boundaries = self.clock.watermarks, self.clock.boundaries
        latest = watermarks[partition] = max(watermark, watermarks.get(partition, float("-inf")))
        held = self.held_from(partition, now)
        watermark = latest if held is None else min(latest, self.bucket_start(held) + self.lateness_s)
        boundary = self.bucket_start(watermark - self.lateness_s)
        previous = boundaries.get(partition)
        if previous is not None and boundary <= previous:
            return watermark, otherwise
        boundaries[partition] = boundary
        self.tables.clocks[str(partition)] = {"watermark": latest, "boundary": boundary}
        arrived = self.clock.arrived.get(partition)
        if arrived:  # closed buckets take no more early judgements
            self.clock.arrived[partition] = {bucket: seen for bucket, seen in arrived.items() if bucket[1] >= boundary}
        if previous is not None and (self.horizon_s is not None
                                     and boundary // SWEEP_SECONDS != previous // SWEEP_SECONDS):
            self._sweep(partition, boundary)
        return watermark, sorted(self.due_before(partition, boundary) | set(otherwise))

    def due_before(self, partition: int, boundary: int) -> set[str]:
        """The partition's brands with something to judge before ``boundary``: open buckets, or hot."""
        due = set(self._hot(partition))
        for start, brands in self._pending(partition).items():
            if start < boundary:
                due |= brands
        return due

    def next_boundary(self, partition: int, after: int) -> int | None:
        """The first bucket end past ``after`` at which one of the partition's brands has something to judge
        (None: nothing until a new mention), so a replay need not visit every empty bucket."""
        if self._hot(partition):
            return after + self.bucket_s
        starts = [start for start in self._pending(partition) if start >= after]
        return min(starts) + self.bucket_s if starts else None

    def _sweep(self, partition: int, boundary: int) -> None:
        """Forget the partition's brands silent longer than the horizon, with no open incident or bucket."""
        pending = set().union(*self._pending(partition).values())
        for brand in sorted(self.brands_in(partition) - self._hot(partition) - pending):
            state = self.brand_states.get(brand)
            if not isinstance(state, dict):
                continue
            last_active = state.get("last_active")
            last_active = state.get("closed_through", boundary) if last_active is None else last_active
            if isinstance(last_active, int) and boundary - last_active > self.horizon_s:
                log.info("brand %s: silent since %s, longer than the brand state horizon; state deleted",
                         state.get("name", brand), datetime.fromtimestamp(last_active, timezone.utc).isoformat())
                self.forget(brand)

    # ------------------------------------------------------------------------------- closing

    def close(self, brand: str, watermark: float) -> Closing:
        """Judge every bucket of the brand keyed ``brand`` that ended more than the allowed lateness before
        ``watermark``."""
        return self.close_until(brand, self.bucket_start(watermark - self.lateness_s))

    def close_until(self, brand: str, closable_until: int) -> Closing:
        """Judge the buckets of the brand keyed ``brand`` starting before ``closable_until``: its open ones,
        and its empty ones while it is hot; a quiet brand's empty buckets wait, to be caught up at once."""
        state = self._stored_state(brand, load_closable_brand_state)
        if state is None or closable_until <= state["closed_through"]:
            return Closing([], lambda: None)
        state = dict(state)  # commit() writes it back whole; the stored one is never changed in place
        pending = self._pending(state["p"])
        starts = sorted(s for s, brands in pending.items() if s < closable_until and brand in brands)
        if not starts and not state["hot"]:
            return Closing([], lambda: None)
        return self._judge(brand, state, starts, closable_until)

    def _judge(self, brand: str, state: dict, starts: list[int], closable_until: int) -> Closing:
        """:meth:`close_until` once there is something to judge (apart, as most calls find nothing: they do not
        set up the closure below). ``state``: the brand record's copy that commit writes back."""
        partition, b = state["p"], self.bucket_s
        pending = self._pending(partition)
        timeline = BrandTimeline(brand, self.config, state, *self._parts(brand, state), self.on_replaced)
        closed: list[ClosedBucket] = []
        counted: list[tuple[int, int, int]] = []  # (start, count, offset) of the closed buckets with mentions
        t = state["closed_through"]
        for start in [*starts, None]:
            until = closable_until if start is None else start
            while t < until:
                if timeline.detector.quiet:
                    if start is None:
                        break  # quiet from here on: caught up when its next bucket closes
                    timeline.skip(t, (until - t) // b)
                    t = until
                    break
                empty = BucketDigest()
                closed.append(ClosedBucket(t, empty, timeline.close(t, empty), timeline))
                t += b
            if start is None:
                break
            stored = self._stored_bucket(bucket_key(brand, start), partition)
            digest = stored[0] if stored else BucketDigest()
            if stored:
                counted.append((start, digest.count, stored[1]))
            closed.append(ClosedBucket(start, digest, timeline.close(start, digest), timeline))
            t = start + b

        def commit() -> None:
            """Written in the order a crash may cut the changelog: the history, then the brand record, which says
            the buckets are judged and holds the detector's and term baseline's step with it (a cut before it
            re-judges them), then the open buckets deleted."""
            self._record_history(brand, state, counted, t)
            hot = not timeline.detector.quiet
            last_active = max([state["last_active"] or -1] + [c[0] for c in counted])
            state.update(v=BRAND_RECORD_VERSION, closed_through=t, hot=hot,
                         last_active=None if last_active < 0 else last_active,
                         incident=timeline.incident.to_dict() if timeline.incident else None,
                         early_from=self._early_from(timeline.detector, t),
                         detector=stored_json(timeline.detector.to_state(handover=True)),
                         terms=stored_json(timeline.terms.to_dict()))
            self.brand_states[brand] = state
            self._drop_split_parts(brand)
            (self._hot(partition).add if hot else self._hot(partition).discard)(brand)
            digests = self.clock.digests.get(partition, {})
            for start in starts:  # only after the state that counts them is written: a crash loses nothing
                self.open_buckets.pop(bucket_key(brand, start), None)
                digests.pop(bucket_key(brand, start), None)
                brands = pending.get(start)
                if brands is not None:
                    brands.discard(brand)
                    if not brands:
                        del pending[start]

        return Closing(closed, commit)

    def _early_from(self, detector: BrandDetector, first: int) -> int:
        """The count below which counting a mention of buckets from ``first`` on skips the early judgement: 80% of
        the detector's gate (:meth:`BrandDetector.early_gate`) for that bucket or the next, the lower, so that the
        stream (its last bucket waiting for late mentions) and ``ascolta detect`` judge at the same counts."""
        return max(1, detector.lowest_early_gate(first // self.bucket_s, 2) * 4 // 5)

    def _record_history(self, brand: str, state: dict, counted: list[tuple[int, int, int]], through: int) -> None:
        """Append the closed counts to their hour chunks (the latest into ``state``, the record about to be
        written); drop the chunks older than the kept history."""
        chunks: dict[int, list[list[int]]] = {}
        for start, count, offset in counted:
            chunk_start = start // CHUNK_SECONDS * CHUNK_SECONDS
            if chunk_start not in chunks:
                chunks[chunk_start] = self._chunk(brand, state, chunk_start)
            chunk = chunks[chunk_start]
            chunks[chunk_start] = sorted([e for e in chunk if e[0] != start] + [[start, count, offset]])
        self._keep_chunks(brand, state, chunks, through)


def early_checkpoint(count: int) -> bool:
    """Whether an open bucket is judged early at this count: 1, 2, ... 8, 10, 12, 15, 18, 22, 27, ..., each about a
    quarter above the last, so a burst of n mentions costs O(log n) judgements and every path judges at the same
    counts, whenever its buckets close."""
    checkpoint = 1
    while checkpoint < count:
        checkpoint = max(checkpoint + 1, checkpoint * 5 // 4)
    return checkpoint == count


def ahead_of_clock(event_time: float, now: float, skew_s: float) -> str | None:
    """Why a live mention cannot move its partition's clock: dated more than ``skew_s`` after the wall clock
    (the detect stage dead-letters it as ``timestamp_in_future``); None when it may."""
    ahead = event_time - now
    if ahead <= skew_s:
        return None
    when = datetime.fromtimestamp(event_time, timezone.utc).isoformat()
    return (f"field created_at {when} is {ahead:.0f}s ahead of the detect stage's clock; the limit is {skew_s:.0f}s "
            "(ASCOLTA_MAX_FUTURE_SKEW_SECONDS): it would close every bucket of its partition early")
