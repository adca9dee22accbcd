"""A detector :class:`~streams.detection.detector.Decision` as the outside world sees it: the one place that
turns a decision into the alert event on ``alerts`` (``schemas/alert.v1.json``), its ``explanation``, and
the flat record ``ascolta detect`` prints."""
from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import quote

from ..contracts import format_rfc3339
from .detector import Decision
from .digest import BucketDigest, TermBaseline, by_count, top_terms

# The detector's numbers an alert reports, in the order ``ascolta detect`` prints them.
DECISION_NUMBERS = ("observed", "expected", "volume_ratio", "negative_share", "baseline_negative_share", "reach",
                    "baseline_reach", "confidence")


class Alert(NamedTuple):
    """One decision of one brand with its explanation: what a closed bucket produces."""

    brand: str
    decision: Decision
    explanation: dict


def _finite(decision: Decision, name: str) -> float:
    value = float(getattr(decision, name))
    if not math.isfinite(value):
        raise ValueError(f"decision.{name} is {value}; an alert needs finite numbers")
    return value


def _share(value: float) -> float:
    return round(min(max(value, 0.0), 1.0), 4)


def build_explanation(decision: Decision, digests: list[BucketDigest], baseline: TermBaseline) -> dict:
    """The alert's ``explanation``: the detector's numbers from ``decision`` and what the ``digests``
    (the incident's buckets) were about, compared with ``baseline``. Build it before the baseline learns
    from the same buckets, or the incident's own terms stop looking unusual."""
    merged = BucketDigest()
    for digest in digests:
        merged.merge(digest)
    return {
        "observed": int(decision.observed),
        "expected": round(_finite(decision, "expected"), 3),
        "volume_ratio": round(_finite(decision, "volume_ratio"), 3),
        "negative_share": _share(_finite(decision, "negative_share")),
        "baseline_negative_share": _share(_finite(decision, "baseline_negative_share")),
        "reach": round(_finite(decision, "reach"), 1),
        "baseline_reach": round(_finite(decision, "baseline_reach"), 1),
        "top_terms": top_terms(merged, baseline),
        "most_reached": _with_copies(merged.most_reached, merged),
        "most_negative": _with_copies(merged.most_negative, merged),
        "languages": by_count(merged.languages),
        "sources": by_count(merged.sources),
        **({"drift": decision.drift} if decision.drift else {}),
        "mentions": merged.count,
        "copies": merged.copies,
        "unique_stories": merged.unique_stories,
        "unique_authors": merged.unique_authors,
        "top_stories": merged.top_stories(),
    }


def _with_copies(samples: list[dict], digest: BucketDigest) -> list[dict]:
    """Each sample with its story's copy count in the incident, where the digest tracks that story."""
    return [{**sample, "copies": digest.stories[sample["story"]]["copies"]} if sample.get("story") in digest.stories
            else sample for sample in samples]


def incident_url(public_url: str, incident_id: str) -> str:
    """The incident room page of an incident, under ``ASCOLTA_PUBLIC_URL``."""
    return f"{public_url.rstrip('/')}/incidents/{quote(incident_id, safe='')}"


def alert_event(alert: Alert, bucket_seconds: int, emitted_at: datetime, public_url: str = "") -> dict:
    """The event published on ``alerts`` (``schemas/alert.v1.json``); with ``public_url``, its incident's page."""
    decision = alert.decision
    event = {
        "schema_version": 1,
        "event_id": f"{decision.incident_id}:{decision.seq}",
        "incident_id": decision.incident_id,
        "event": decision.event,
        "kind": decision.kind,
        "brand": alert.brand,
        "at": format_rfc3339(decision.at),
        "started_at": format_rfc3339(decision.started_at),
        "severity": round(float(decision.severity), 3),
        "bucket_seconds": bucket_seconds,
        "explanation": alert.explanation,
        "emitted_at": format_rfc3339(emitted_at),
    }
    if public_url:
        event["url"] = incident_url(public_url, decision.incident_id)
    return event


def decision_record(decision: Decision, brand: str, bucket_seconds: int, at: str | None = None,
                    started_at: str | None = None) -> dict:
    """The line ``ascolta detect`` prints per event: the alert's core fields with the detector's unrounded
    numbers, no explanation. ``at``/``started_at`` default to RFC 3339; the CSV input echoes its own text."""
    return {
        "event": decision.event,
        "at": at or _rfc3339(decision.at),
        "started_at": started_at or _rfc3339(decision.started_at),
        "severity": decision.severity,
        "kind": decision.kind,
        "incident_id": decision.incident_id,
        "seq": decision.seq,
        "brand": brand,
        "bucket_seconds": bucket_seconds,
        **{name: getattr(decision, name) for name in DECISION_NUMBERS},
        **({"drift": decision.drift} if decision.drift else {}),
    }


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
