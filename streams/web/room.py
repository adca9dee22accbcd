"""The incident room's view of every brand: incidents from alert events, chart points from the timeline topic.

Every worker builds the same :class:`Room` by reading all partitions of ``alerts`` and of the timeline topic
(not a consumer group: each worker reads everything), so a request answered by any worker sees every
brand. Plain code, fed record by record; :mod:`streams.web.views` does the reading. Events and points may
arrive twice (at-least-once upstream): an event id or a bucket start seen again replaces, never adds.

Bounded: a brand keeps the chart points of its last :data:`BRAND_HOURS` hours, plus those around its
incidents of the last :data:`INCIDENT_DAYS` days; older incidents and points are pruned.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..text import brand_key

BRAND_HOURS = 48
INCIDENT_DAYS = 7
# Around an incident its chart shows this much before its start and after its end.
MARGIN_S = 6 * 3600
SPARK_MARGIN_S = 3600
SPARK_VALUES = 48  # a sparkline shows at most this many values (the peak of each stretch of buckets)


def epoch(text: str) -> float:
    """An RFC 3339 timestamp as epoch seconds (the alert contract guarantees the format)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).timestamp()


class RecordError(ValueError):
    """A record on the alerts or timeline topic that the room cannot use (the reader logs and skips it)."""


@dataclass
class Incident:
    """One incident as its alert events told it; ``latest`` is the newest event (its explanation is shown)."""

    incident_id: str
    brand: str
    key: str  # streams.text.brand_key of the brand
    kind: str
    started_at: float
    bucket_seconds: int
    events: dict[str, dict] = field(default_factory=dict)  # event id -> {event, at, severity, emitted_at}
    latest: dict = field(default_factory=dict)
    latest_order: tuple[float, int] = (float("-inf"), -1)

    @property
    def state(self) -> str:
        return "resolved" if any(e["event"] == "resolved" for e in self.events.values()) else "open"

    @property
    def ended_at(self) -> float | None:
        resolved = [e["at"] for e in self.events.values() if e["event"] == "resolved"]
        return min(resolved) if resolved else None

    @property
    def last_at(self) -> float:
        return max(e["at"] for e in self.events.values())

    @property
    def severity(self) -> float:
        """The peak severity of the incident's events (a resolve reports the calm bucket's)."""
        return max((e["severity"] for e in self.events.values() if e["event"] != "resolved"), default=0.0)

    def lifecycle(self) -> list[dict]:
        return sorted(self.events.values(), key=lambda e: (e["at"], e["seq"]))


@dataclass
class BrandLine:
    """One brand's chart points, sorted by bucket start (parallel lists: bisect on ``starts``)."""

    name: str
    starts: list[int] = field(default_factory=list)
    points: list[dict] = field(default_factory=list)

    def put(self, point: dict) -> None:
        start = point["start"]
        i = bisect.bisect_left(self.starts, start)
        if i < len(self.starts) and self.starts[i] == start:
            self.points[i] = point
        else:
            self.starts.insert(i, start)
            self.points.insert(i, point)

    def between(self, first: float, last: float) -> list[dict]:
        return self.points[bisect.bisect_left(self.starts, first):bisect.bisect_right(self.starts, last)]

    @property
    def latest(self) -> int | None:
        return self.starts[-1] if self.starts else None


class Room:
    """Incidents and chart points of every brand; the pages read it through the query methods below."""

    def __init__(self) -> None:
        self.incidents: dict[str, Incident] = {}
        self.brands: dict[str, BrandLine] = {}  # brand key -> line
        self.names: dict[str, str] = {}  # brand key -> display name, as first seen

    # --- feeding ------------------------------------------------------------------------------------------

    def _name(self, brand: str) -> str:
        return self.names.setdefault(brand_key(brand), brand)

    def add_alert(self, event: dict) -> None:
        """One event of ``schemas/alert.v1.json``; raises :class:`RecordError` for what cannot be used."""
        try:
            incident_id, event_id = str(event["incident_id"]), str(event["event_id"])
            entry = {"event": str(event["event"]), "event_id": event_id, "at": epoch(event["at"]),
                     "severity": float(event["severity"]), "emitted_at": str(event.get("emitted_at", "")),
                     "seq": int(event_id.rsplit(":", 1)[-1]) if event_id.rsplit(":", 1)[-1].isdigit() else 0}
            started_at = epoch(event["started_at"])
            brand, kind, bucket_s = str(event["brand"]), str(event["kind"]), int(event["bucket_seconds"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RecordError(f"unusable alert event: {type(exc).__name__}: {exc}") from None
        incident = self.incidents.get(incident_id)
        if incident is None:
            incident = self.incidents[incident_id] = Incident(incident_id, self._name(brand), brand_key(brand),
                                                              kind, started_at, bucket_s)
        incident.events[event_id] = entry
        if (entry["at"], entry["seq"]) >= incident.latest_order:
            incident.latest, incident.latest_order = event, (entry["at"], entry["seq"])

    def add_point(self, point: dict) -> None:
        """One chart point (:func:`streams.web.timeline.timeline_point`)."""
        try:
            key = brand_key(str(point["brand"]))
            point = {**point, "start": int(point["start"]), "observed": int(point["observed"]),
                     "expected": float(point["expected"]), "low": float(point["low"]), "high": float(point["high"])}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RecordError(f"unusable timeline point: {type(exc).__name__}: {exc}") from None
        line = self.brands.get(key)
        if line is None:
            line = self.brands[key] = BrandLine(self._name(str(point["brand"])))
        line.put(point)

    def prune(self, now: float) -> None:
        """Forget incidents that ended over :data:`INCIDENT_DAYS` ago, and points no page shows any more."""
        horizon = now - INCIDENT_DAYS * 86400
        for incident_id in [i for i, inc in self.incidents.items()
                            if inc.state == "resolved" and inc.last_at < horizon]:
            del self.incidents[incident_id]
        spans: dict[str, list[tuple[float, float]]] = {}
        for inc in self.incidents.values():
            end = inc.ended_at + MARGIN_S if inc.ended_at is not None else float("inf")  # open: up to now
            spans.setdefault(inc.key, []).append((inc.started_at - MARGIN_S, end))
        for key, line in self.brands.items():
            if not line.starts:
                continue
            recent = line.starts[-1] - BRAND_HOURS * 3600
            keep = [i for i, start in enumerate(line.starts)
                    if start > recent or any(a <= start <= b for a, b in spans.get(key, ()))]
            if len(keep) < len(line.starts):
                line.starts = [line.starts[i] for i in keep]
                line.points = [line.points[i] for i in keep]

    # --- queries (JSON-safe dicts: the pages render them, the API returns them) ------------------------------

    def incident_list(self, now: float, brand: str = "", kind: str = "") -> list[dict]:
        """Open incidents first, then those of the last :data:`INCIDENT_DAYS` days; newest first in each."""
        horizon, key = now - INCIDENT_DAYS * 86400, brand_key(brand)
        chosen = [inc for inc in self.incidents.values()
                  if (inc.state == "open" or inc.last_at >= horizon)
                  and (not brand or inc.key == key) and (not kind or inc.kind == kind)]
        chosen.sort(key=lambda inc: (inc.state != "open", -inc.started_at, inc.incident_id))
        return [self._summary(inc) for inc in chosen]

    def _summary(self, inc: Incident) -> dict:
        line = self.brands.get(inc.key)
        end = inc.ended_at or (line.latest if line and line.latest else inc.last_at)
        spark = line.between(inc.started_at - SPARK_MARGIN_S, end + SPARK_MARGIN_S) if line else []
        return {"incident_id": inc.incident_id, "brand": inc.brand, "kind": inc.kind, "state": inc.state,
                "severity": round(inc.severity, 3), "started_at": inc.started_at, "ended_at": inc.ended_at,
                "bucket_seconds": inc.bucket_seconds, "sparkline": _downsample([p["observed"] for p in spark])}

    def incident(self, incident_id: str) -> dict | None:
        """One incident: summary, lifecycle, the latest event (with its explanation) and its chart."""
        inc = self.incidents.get(incident_id)
        if inc is None:
            return None
        line = self.brands.get(inc.key)
        end = inc.ended_at or (line.latest if line and line.latest else inc.last_at)
        points = line.between(inc.started_at - MARGIN_S, end + MARGIN_S) if line else []
        return {**self._summary(inc), "lifecycle": inc.lifecycle(), "latest": inc.latest,
                "timeline": [_chart(p) for p in points]}

    def brand(self, brand: str, now: float) -> dict | None:
        """A brand's last :data:`BRAND_HOURS` hours (up to its newest point) and its incidents."""
        key = brand_key(brand)
        line = self.brands.get(key)
        incidents = self.incident_list(now, brand=brand)
        if line is None and not incidents:
            return None
        points = line.between(line.latest - BRAND_HOURS * 3600 + 1, line.latest) if line and line.latest else []
        return {"brand": line.name if line else self.names.get(key, brand), "hours": BRAND_HOURS,
                "timeline": [_chart(p) for p in points], "incidents": incidents}


def _downsample(values: list[int]) -> list[int]:
    """At most :data:`SPARK_VALUES` values, each the peak of its stretch: a week-long incident stays a glance."""
    if len(values) <= SPARK_VALUES:
        return values
    size = len(values) / SPARK_VALUES
    return [max(values[int(i * size):max(int((i + 1) * size), int(i * size) + 1)]) for i in range(SPARK_VALUES)]


def _chart(point: dict) -> dict:
    return {name: point.get(name) for name in ("start", "observed", "expected", "low", "high", "negative_share",
                                               "baseline_negative_share", "incident")}
