"""A changelogged record of mention keys seen recently, shared by the dedup (enrich) and counting (detect) steps.

Faust logs a table write to the changelog partition of the *current* event, so every write here happens
inside stream processing with the right event current (see :func:`processing`), and expiry runs the same way.
"""
from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import MutableMapping

import faust
from faust.streams import _current_event

log = logging.getLogger(__name__)


@contextlib.contextmanager
def processing(event):
    """Make ``event`` Faust's current event, so table writes go to its changelog partition.

    ``take_events`` hands over a whole batch; without this, every table write in the batch would be logged
    to the partition of whichever event Faust saw last.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class SeenKeys:
    """Keys with when and where they were first seen, forgotten after ``horizon_s``."""

    def __init__(self, app: faust.App, name: str, *, horizon_s: float, partitions: int, schema: faust.Schema,
                 purge_every_s: float = 600.0) -> None:
        self._keep_in(app.Table(name, default=None, schema=schema, partitions=partitions), horizon_s, purge_every_s)

    @classmethod
    def within(cls, table: MutableMapping, *, horizon_s: float, purge_every_s: float = 600.0) -> SeenKeys:
        """Keys kept in a mapping that holds other state too (a key-prefixed view of one table with a ``name``),
        so their writes stay in order with that state's."""
        seen = cls.__new__(cls)
        seen._keep_in(table, horizon_s, purge_every_s)
        return seen

    def _keep_in(self, table: MutableMapping, horizon_s: float, purge_every_s: float) -> None:
        self.table = table
        self.horizon_s = horizon_s
        self.purge_every_s = purge_every_s
        self._last_purge: dict[int, float] = {}

    def get(self, key: str) -> dict | None:
        return self.table.get(key)

    def first_seen_within_horizon(self, key: str, now: float) -> dict | None:
        seen = self.table.get(key)
        return seen if seen and now - seen["at"] < self.horizon_s else None

    def add(self, key: str, *, partition: int, now: float, **origin: object) -> None:
        self.table[key] = {"at": now, "p": partition, **origin}

    def purge_if_due(self, partition: int, now: float) -> None:
        """Drop this partition's keys older than the horizon, at most every ``purge_every_s``."""
        if now - self._last_purge.setdefault(partition, now) < self.purge_every_s:
            return
        self._last_purge[partition] = now
        horizon = now - self.horizon_s
        expired = [k for k, seen in self.table.items() if seen and seen["p"] == partition and seen["at"] < horizon]
        for key in expired:
            del self.table[key]
        if expired:
            log.info("%s, partition %d: forgot %d keys older than the horizon", self.table.name, partition, len(expired))
