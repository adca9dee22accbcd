"""The chart point of one closed bucket, published on the timeline topic so any worker can draw any brand.

A worker owns only its partitions' detector states; the incident room on every worker needs every brand's
observed volume, expectation, band and negative share per bucket, so the detect stage publishes this small
record (about 200 bytes) per closed bucket instead of routing each page request to the owner.
"""
from __future__ import annotations

from ..detection.buckets import ClosedBucket


def timeline_point(closed: ClosedBucket, bucket_seconds: int) -> dict:
    """``closed`` as a chart point: counts, the detector's expectation and band, the shares."""
    digest, detector = closed.digest, closed.timeline.detector
    band = detector.chart_band()
    expected, low, high, baseline_negative = band if band else (0.0, 0.0, 0.0, 0.0)
    return {
        "brand": closed.timeline.brand,
        "start": closed.start,
        "bucket_seconds": bucket_seconds,
        "observed": digest.count,
        "expected": round(expected, 3),
        "low": round(low, 3),
        "high": round(high, 3),
        # None when no mention of the bucket carries a sentiment label: nothing to draw
        "negative_share": round(digest.negative / digest.labelled, 4) if digest.labelled else None,
        "baseline_negative_share": round(baseline_negative, 4),
        "incident": detector.open_incident_kind,
    }
