"""A live burst while one of two workers is six minutes behind (issue 18, item 3): every worker scores a share of a
brand's mentions, so they reach the brand's partition as far apart as the workers' backlogs. The arrivals ingest
announces in raw order hold each bucket's close until its mentions are scored, so none is late, the arrivals open
the burst early, and the decisions are those of the ordered stream (tests/test_scoring_order.py shuffles the
sample offline). Through the detect stage's code over plain dicts, as tests/test_buckets.py drives it."""
from __future__ import annotations

from test_buckets import book, step
from test_early_open import BURST, burst_day

from streams.detection.buckets import BucketBook
from streams.normalise import dedup_key


def two_workers(mentions: list[tuple[dict, float]], slow_delay_s: float, announced: bool
                ) -> list[tuple[float, str, dict, float]]:
    """The detect stage's input, live: (wall clock, "arrived" or "scored", mention, event time) in the order they
    come. Ingest announces each mention as it sees it; one worker scores its half a second later, the other,
    behind a backlog, ``slow_delay_s`` later."""
    inputs = []
    for n, (m, t) in enumerate(mentions):
        if announced:
            inputs.append((t, "arrived", m, t))
        inputs.append((t + (slow_delay_s if n % 2 else 0.5), "scored", m, t))
    return sorted(inputs, key=lambda row: (row[0], row[1] == "scored"))


def run(b: BucketBook, inputs: list[tuple[float, str, dict, float]]) -> tuple[list, int]:
    """The decisions raised (without their explanations) and how many mentions came late."""
    decisions, late = [], 0
    for offset, (now, kind, m, t) in enumerate(inputs):
        if kind == "arrived":
            opening = b.arrive(m["brand"], t, dedup_key(m), now, 0)
            decisions += [a.decision for a in opening.alerts]
            opening.commit()
            continue
        late += b.count(m, t, 0, offset)
        b.release(dedup_key(m))
        watermark, brands = b.due(m["brand"], t, 0, now)
        for brand in brands:
            closing = b.close(brand, watermark)
            decisions += [a.decision for closed in closing.buckets for a in closed.alerts]
            closing.commit()
        opening = b.open_early(m["brand"], t, now)
        decisions += [a.decision for a in opening.alerts]
        opening.commit()
    return decisions, late


def closed_decisions(decisions: list) -> list[tuple]:
    """What the closes decided: event, kind, bucket, incident id (an early opening's moment may differ)."""
    return sorted((d.event, d.kind, d.at, d.incident_id) for d in decisions)


def test_a_worker_six_minutes_behind_loses_no_mention_to_lateness_and_changes_no_decision():
    mentions = burst_day(250)
    in_order, ordered = [], book()
    for offset, (m, t) in enumerate(mentions):
        in_order += [a.decision for a in step(ordered, m, t, 0, offset)]

    unannounced, late = run(book(), two_workers(mentions, 360.0, announced=False))
    assert late > len(mentions) // 5, "without arrivals the slow worker's mentions come after their buckets closed"

    b = book()
    decisions, late = run(b, two_workers(mentions, 360.0, announced=True))
    assert late == 0
    assert closed_decisions(decisions) == closed_decisions(in_order)
    assert counts(b) == counts(ordered)
    assert any(d.event == "opened" and d.kind == "crisis" and d.at.timestamp() == BURST for d in decisions)


def counts(b: BucketBook, brand: str = "acme") -> list[list[int]]:
    """The brand's closed buckets as [start, count] (the offsets differ with the order)."""
    return [entry[:2] for entry in b.history(brand, b.brand_states[brand])]
