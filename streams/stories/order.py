"""Scored mentions back in the order ingest announced them, so story assignment does not depend on the scoring order.

Every worker scores a share of a brand's mentions (``mentions.valid`` is keyed by mention), so they reach the
brand-keyed story stage in whatever order the workers' backlogs let them, and online story assignment depends on
order (which post is the original of its copies, which story a look-alike joins). Ingest announces each valid
mention on ``mentions.arrivals`` (brand-keyed, co-partitioned with ``mentions.scored``) in its raw order. Per
partition, :class:`AnnouncedOrder` releases a scored mention only once every mention announced before it is
released: its result is then the same with one worker or many, and after a crash.

Neither the held mentions nor the waiting announcements are acknowledged, so a crash or a rebalance redelivers
them to the next owner of the partition (the stage acknowledges in offset order, :class:`InOrderAcks`). The hold
is bounded: an announcement the enrich stage withdrew (it dead-lettered the mention) goes at once, one whose
scored mention has not come after ``hold_s`` of wall clock is given up; a scored mention nobody announced (a
redelivery of one already released, or one whose announcement was given up) is released once the stage has read
every announcement written before it was.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

RELEASED_KEYS_KEPT = 4096  # per partition: a duplicate's announcement after its original's release is not waited for


@dataclass
class Release:
    """One step of a partition's order: a scored mention (None when its announcement was given up) and the
    announcement it answers (None for a scored mention nobody is waiting for)."""
    scored: Any | None
    arrival: Any | None


@dataclass
class _Unannounced:
    item: Any
    arrivals_needed: int | None  # the arrivals' log end when it came (None: not known yet); once read up to it,
    # no announcement of it is on its way
    since: float  # wall clock: it waits ``hold_s`` at most, like an announcement


@dataclass
class _Partition:
    waiting: OrderedDict = field(default_factory=OrderedDict)  # key -> (arrival item, wall clock announced)
    scored: dict = field(default_factory=dict)  # key -> [items] scored and announced (or maybe about to be)
    unannounced: dict = field(default_factory=dict)  # key -> [_Unannounced]
    released: OrderedDict = field(default_factory=OrderedDict)  # recently released keys
    withdrawn: set = field(default_factory=set)  # waiting keys the enrich stage dead-lettered: no scored mention comes
    arrivals_read: int = 0  # offset after the last announcement read


class AnnouncedOrder:
    """Per partition: announcements (:meth:`announce`) in their order, scored mentions (:meth:`scored`) in any
    order, and :meth:`releases` in announcement order. Items are opaque (the stage passes its events)."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.partitions: dict[int, _Partition] = {}

    def announce(self, partition: int, key: str, offset: int, item: Any, now: float) -> bool:
        """Record an announcement; False when nothing needs to wait for it (its key is already waiting or was
        just released: a duplicate the enrich stage dead-letters), so the caller can let it go at once."""
        part = self.partitions.setdefault(partition, _Partition())
        part.arrivals_read = max(part.arrivals_read, offset + 1)
        if key in part.waiting or key in part.released:
            return False
        part.waiting[key] = (item, now)
        if key in part.unannounced:  # scored before its announcement was read
            part.scored.setdefault(key, []).extend(entry.item for entry in part.unannounced.pop(key))
        return True

    def withdraw(self, partition: int, key: str, offset: int) -> None:
        """The enrich stage dead-lettered the announced mention ``key`` (read at ``offset``): nothing to wait for."""
        part = self.partitions.setdefault(partition, _Partition())
        part.arrivals_read = max(part.arrivals_read, offset + 1)
        if key in part.waiting and not part.scored.get(key):
            part.withdrawn.add(key)

    def scored(self, partition: int, key: str, item: Any, arrivals_end: int | None, now: float) -> None:
        """A scored mention; ``arrivals_end`` is the arrivals partition's log end now, written after its
        announcement if there was one (None: not known yet, as before the partition's first fetch)."""
        part = self.partitions.setdefault(partition, _Partition())
        if key in part.waiting:
            part.scored.setdefault(key, []).append(item)
        else:
            part.unannounced.setdefault(key, []).append(_Unannounced(item, arrivals_end, now))

    def releases(self, partition: int, now: float, arrivals_end: int | None = None) -> list[Release]:
        """What can go now, in order: the waiting announcements from the first, while their scored mention is here
        (or ``hold_s`` has passed), then the scored mentions no announcement still on its way can precede.
        ``arrivals_end`` (the arrivals' log end now) stands in for an end that was not known when one came."""
        part = self.partitions.get(partition)
        if part is None:
            return []
        out: list[Release] = []
        while part.waiting:
            key, (arrival, announced_at) = next(iter(part.waiting.items()))
            copies = part.scored.get(key)
            if copies:
                out.append(Release(copies.pop(0), arrival))
                for extra in copies:  # the same mention scored twice (a redelivery upstream): it goes right after
                    out.append(Release(extra, None))
                del part.scored[key]
            elif key in part.withdrawn or now - announced_at >= self.hold_s:
                if key not in part.withdrawn:
                    log.warning("stories: partition %d waited %.0f s for announced mention %r, never scored; the "
                                "mentions after it go on", partition, self.hold_s, key)
                out.append(Release(None, arrival))
                part.withdrawn.discard(key)
            else:
                break
            del part.waiting[key]
            self._remember(part, key)
        for entries in part.unannounced.values():
            for entry in entries:
                if entry.arrivals_needed is None:
                    entry.arrivals_needed = arrivals_end
        ready = [key for key, entries in part.unannounced.items()
                 if all(e.arrivals_needed is not None and e.arrivals_needed <= part.arrivals_read
                        or now - e.since >= self.hold_s for e in entries)]
        for key in ready:
            out.extend(Release(entry.item, None) for entry in part.unannounced.pop(key))
            self._remember(part, key)
        return out

    def holding(self, partition: int) -> bool:
        part = self.partitions.get(partition)
        return part is not None and bool(part.waiting or part.unannounced)

    def forget(self, partitions) -> None:
        """Partitions revoked: what they held is redelivered (never acknowledged) to their next owner."""
        for partition in partitions:
            self.partitions.pop(partition, None)

    @staticmethod
    def _remember(part: _Partition, key: str) -> None:
        part.released[key] = None
        part.released.move_to_end(key)
        while len(part.released) > RELEASED_KEYS_KEPT:
            part.released.popitem(last=False)


class InOrderAcks:
    """Acknowledge a partition's messages in offset order only. Faust commits the first run of consecutive acked
    offsets; after a rebalance that run starts wherever the first ack lands, so a held message acknowledged out of
    order would be committed over, and lost at the next crash."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, int], OrderedDict] = {}  # (topic, partition) -> offset -> [item, done]

    def received(self, topic: str, partition: int, offset: int, item: Any) -> None:
        queue = self.pending.setdefault((topic, partition), OrderedDict())
        if queue and offset <= next(reversed(queue)):  # the consumer went back (a rebalance): start over from here
            queue.clear()
        queue[offset] = [item, False]

    def done(self, topic: str, partition: int, offset: int) -> list[Any]:
        """Mark one message finished; returns the items now safe to acknowledge, in offset order."""
        queue = self.pending.get((topic, partition))
        entry = None if queue is None else queue.get(offset)
        if entry is None:
            return []
        entry[1] = True
        ready = []
        while queue:
            first = next(iter(queue.values()))
            if not first[1]:
                break
            ready.append(first[0])
            queue.popitem(last=False)
        return ready

    def forget(self, partitions) -> None:
        for key in [key for key in self.pending if key[1] in partitions]:
            del self.pending[key]
