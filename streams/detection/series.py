"""Which brands get per-brand metric series: a bounded set, whatever the number of brands a worker tracks.

Prometheus holds every label set a worker ever exported; at 10,000 brands the per-brand gauges alone were
70,000 series (4.6 MB a scrape). A worker exports per-brand series for the brands with an open incident, the
``top_n`` brands by recent mentions, and an opt-in list (``ASCOLTA_METRICS_BRANDS``); every other brand is
counted under the label value :data:`OTHER`, so totals stay exact.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable

from .buckets import brand_key

OTHER = "other"  # the brand label of the brands without series of their own
HALF_LIFE_S = 3600.0  # "recent" mentions: decayed with this half-life (event time)


class BrandSeries:
    """The brands shown by name; :meth:`observe` per closed bucket, :meth:`refresh` per boundary."""

    def __init__(self, top_n: int, always: Iterable[str] = ()) -> None:
        self.top_n = top_n
        self.always = {brand_key(b) for b in always}
        self.volume: dict[str, tuple[float, int]] = {}  # brand key -> (decayed mentions, at bucket start)
        self.open: set[str] = set()
        self.names: dict[str, str] = {}  # brand key -> display name
        self.shown: set[str] = set()  # the top brands at the last refresh
        self.exported: set[str] = set()  # brands labelled by name since

    def observe(self, name: str, start: int, count: int, incident_open: bool) -> None:
        key = brand_key(name)
        self.names[key] = name
        value, at = self.volume.get(key, (0.0, start))
        self.volume[key] = (value * 0.5 ** (max(0, start - at) / HALF_LIFE_S) + count, max(start, at))
        (self.open.add if incident_open else self.open.discard)(key)

    def forget(self, name: str) -> None:
        key = brand_key(name)
        for cache in (self.volume, self.names):
            cache.pop(key, None)
        for cache in (self.open, self.shown, self.exported):
            cache.discard(key)

    def label(self, name: str) -> str:
        """The brand label for ``name``'s series: its name when shown, else :data:`OTHER`."""
        key = brand_key(name)
        if key in self.shown or key in self.open or key in self.always:
            self.exported.add(key)
            self.names.setdefault(key, name)
            return name
        return OTHER

    def refresh(self, now_start: int) -> list[str]:
        """Recompute the shown set at bucket start ``now_start``; the display names that left it (their
        series are to be removed)."""
        decays: dict[int, float] = {}  # per bucket start a volume was last counted at: most brands share one

        def recent(value: float, at: int) -> float:
            decay = decays.get(at)
            if decay is None:
                decay = decays[at] = 0.5 ** (max(0, now_start - at) / HALF_LIFE_S)
            return value * decay

        ranked = ((recent(value, at), key) for key, (value, at) in self.volume.items())
        top = [key for _, key in heapq.nlargest(self.top_n, ranked)] if self.top_n > 0 else []
        self.shown = set(top) | self.open
        left = self.exported - self.shown - self.always
        self.exported -= left
        return sorted(self.names.get(k, k) for k in left)
