"""The incident lifecycle of one brand: from a bucket's evidence to opened, updated and resolved events.

:class:`~streams.detection.detector.BrandDetector` judges each bucket (:class:`Evidence`); this module decides
what that means for the brand's incident: open one (not again within the cooldown unless clearly bigger),
report it as updated when its severity grows, resolve it after ``calm_s`` of calm. Its state lives in the
detector's saved state (``incident``, ``cooldown_until``, ``last_peak``), so a restarted worker continues it. An
incident opened early, on a bucket still being counted (``early``), is continued when that bucket is judged.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the detector imports this module
    from .detector import Bucket, Decision, DetectorConfig, DetectorState


KINDS = ("crisis", "opportunity", "watch")  # what an incident can be; a watch is a reach-led heads-up


def incident_id_for(brand: str, kind: str, started_at: datetime) -> str:
    """Deterministic id: the same brand, kind and start always give the same incident (idempotent sinks)."""
    digest = hashlib.sha256(f"{brand}\x1f{kind}\x1f{started_at.isoformat()}".encode()).hexdigest()
    return f"inc-{digest[:20]}"


@dataclass
class Evidence:
    """What one bucket says, after the tail tests."""

    volume: float  # best -log10 p over the windows holding at least min_open_count mentions
    # best -log10 p over the windows no longer than calm_s: is it calm again? (0 while no incident is open: the calm
    # test below is its only reader)
    recent_volume: float
    observed: int  # mentions in the window that carries the decision (the best volume window when calm)
    expected: float  # baseline for that window
    beyond_routine: bool  # significant and bigger than the brand's routine bursts at that window
    shifted: bool  # the sustained-shift statistic is past its threshold
    # negative-share surprise behind that window (0 when sentiment is unknown, and for a bucket whose windows all
    # hold fewer than min_open_count mentions while no incident is open: then only the calm test would read it)
    negative: float
    sentiment_known: bool
    negative_share: float
    reach_ratio: float
    crisis: float = 0.0  # best volume + negative-share evidence of a window that makes a crisis, else 0
    opportunity: float = 0.0  # the same for a positive surge with no negative shift
    drift: float = 0.0  # evidence (-log10 units) of a negative-share drift that opens a crisis, else 0
    drift_up: float = 0.0  # the same for a positive-share drift (an opportunity)
    drifting: bool = False  # a drift statistic is past its threshold (not calm)
    watch: float = 0.0  # most-reached negative mention over the brand's records (>= 1: a watch)
    watch_reach_ratio: float = 0.0  # that mention's reach over the brand's typical reach per mention


def classify(ev: Evidence) -> tuple[str | None, float]:
    """(kind, severity) for this bucket's evidence; kind None when it is not alert-worthy (buzz, noise).

    Volume alone (sentiment unknown) must reach volume_only_surprise and beat the brand's routine
    bursts, or be a sustained shift. With sentiment known, a window whose surge and shift in tone add up
    (see _evidence) opens a crisis (negative share up) or an opportunity (positive share up, negative
    not); so does a sharply negative share on steady volume. A surge with the usual tone is buzz and
    raises nothing. A tone drift (hours of a higher negative or positive share, see signals.ToneDrift) opens
    a crisis or an opportunity with severity in the same -log10 units; a negative mention reaching far more
    people than the brand's usually do opens a ``watch``: a heads-up, weaker than either.
    """
    if not ev.sentiment_known:
        if ev.beyond_routine or ev.shifted:
            return "crisis", severity(ev.volume, ev)
        return None, 0.0
    if ev.crisis:
        return "crisis", severity(ev.crisis, ev)
    if ev.drift:
        return "crisis", severity(ev.drift, ev)
    if ev.opportunity:
        return "opportunity", severity(ev.opportunity, ev)
    if ev.drift_up:
        return "opportunity", severity(ev.drift_up, ev)
    if ev.watch >= 1.0:
        return "watch", round(math.log10(max(ev.watch_reach_ratio, 1.0)), 3)
    return None, 0.0

def severity(evidence: float, ev: Evidence) -> float:
    """Evidence in -log10 p units (volume + share surprise), plus a reach bonus (log2 of the ratio)."""
    reach_bonus = max(0.0, math.log2(ev.reach_ratio)) if ev.reach_ratio > 0 else 0.0
    return round(evidence + reach_bonus, 3)


class IncidentLifecycle:
    """Open, update and resolve one brand's incidents; ``describe`` turns an event into the detector's
    :class:`~streams.detection.detector.Decision` (its numbers come from the detector's baseline)."""

    def __init__(self, brand: str, config: DetectorConfig, calm_buckets: int,
                 describe: Callable[[str, int, Bucket, Evidence | None, float], Decision]) -> None:
        self.brand = brand
        self.config = config
        self._calm_buckets = calm_buckets
        self._cooldown_buckets = max(0, round(config.cooldown_s / config.bucket_seconds))
        self._describe = describe

    def step(self, s: DetectorState, index: int, bucket: Bucket, ev: Evidence) -> list[Decision]:
        """The incident's events for one judged bucket: opened, updated, resolved, or none."""
        c = self.config
        kind, severity = classify(ev)
        incident, taken_over = s.incident, False
        if incident is None and s.early is not None and (index >= s.early["start_index"] or kind is not None):
            # Opened early (BrandDetector.early): its bucket, or one before it that would open, continues it.
            incident, s.incident, s.early, taken_over = s.early, s.early, None, True
        if incident is None:
            if kind is None or (index <= s.cooldown_until and severity < 2.0 * s.last_peak):
                return []
            return [self.open(s, index, bucket, ev, kind, severity)]
        if (kind == "crisis" and incident["kind"] != "crisis") or (kind == "opportunity" and incident["kind"] == "watch"):
            # Buzz that turns negative, a watched post that the volume or the tone follows: close, open this.
            return self.close(s, index, bucket, ev) + [self.open(s, index, bucket, ev, kind, severity)]
        incident["peak"] = max(incident["peak"], severity)
        # Calm: the last hour's volume is back to usual (longer windows lag), no share shift is strong enough
        # to open a crisis on its own (a milder lasting shift must not keep an incident open for ever) and no
        # drift is back past its threshold (the detector restarts a drift's statistic while incidents are open).
        if ev.recent_volume < c.calm_surprise and ev.negative < c.open_surprise and not ev.drifting:
            incident["calm"] += 1
            return self.close(s, index, bucket, ev) if incident["calm"] >= self._calm_buckets else []
        incident["calm"] = 0
        same_kind = kind == incident["kind"]
        grown = same_kind and severity >= max(c.update_growth * incident["reported"], incident["reported"] + 1.0)
        if grown or taken_over:  # an early incident's first whole bucket is reported: its explanation was partial
            if same_kind:
                incident["reported"] = max(incident["reported"], severity)
            return [self._describe("updated", index, bucket, ev, severity)]
        return []

    def open(self, s: DetectorState, index: int, bucket: Bucket, ev: Evidence, kind: str, severity: float) -> Decision:
        s.incident = {
            "id": incident_id_for(self.brand, kind, bucket.start),
            "kind": kind,
            "started_at": bucket.start.isoformat(),
            "start_index": index,
            "seq": 0,
            "reported": severity,
            "peak": severity,
            "calm": 0,
        }
        return self._describe("opened", index, bucket, ev, severity)

    def close(self, s: DetectorState, index: int, bucket: Bucket, ev: Evidence | None) -> list[Decision]:
        """Resolve the open incident, if any, at ``bucket``; a clearly bigger one may reopen after the cooldown.
        A watch sets no cooldown: its severity is not on the scale of crises and opportunities."""
        if s.incident is None:
            return []
        decision = self._describe("resolved", index, bucket, ev, s.incident["peak"])
        if s.incident["kind"] != "watch":
            s.last_peak = s.incident["peak"]
            s.cooldown_until = index + self._cooldown_buckets
        s.incident = None
        return [decision]
