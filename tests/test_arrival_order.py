"""Scored mentions out of order (issue 18, item 3): every worker scores a share of a brand's mentions, so they reach
the brand's partition as far apart as the workers' backlogs. The arrivals ingest announces in raw order hold each
bucket's close until its mentions are scored, so none is late and the decisions are those of the ordered stream.
Through the detect stage's code over plain dicts, as tests/test_buckets.py drives it."""
from __future__ import annotations

from test_buckets import START, book, mention, step
from test_early_open import BURST, burst_day

from streams.detection.buckets import BucketBook


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
            opening = b.arrive(m["brand"], t, m["id"], now, 0)
            decisions += [a.decision for a in opening.alerts]
            opening.commit()
            continue
        late += b.count(m, t, 0, offset)
        b.scored(0, m["id"])
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


def test_a_new_brands_history_starts_at_its_first_announced_mention_even_if_scored_last():
    b = book()
    first, second = START + 10, START + 400  # two buckets apart, further than the lateness
    for n, t in enumerate((first, second)):
        b.arrive("Newco", t, f"m{n}", t, 0)
    assert not b.count(mention(1, "Newco"), second, 0, 0)  # the later one scored first
    b.scored(0, "m1")
    watermark, _ = b.due("Newco", second, 0, second + 1)
    assert not b.close("newco", watermark).buckets  # its first bucket waits for the mention announced in it
    assert not b.count(mention(0, "Newco"), first, 0, 1), "counted in its bucket, not late"
    b.scored(0, "m0")
    watermark, brands = b.due("Newco", first, 0, second + 2)
    closing = b.close("newco", watermark)
    assert [(c.start, c.digest.count) for c in closing.buckets][:1] == [(START, 1)]


def test_a_mention_announced_and_never_scored_holds_its_bucket_only_for_the_hold():
    b = book(arrival_hold_s=600)
    for n in range(3):
        step(b, mention(n), START + 10 + n, 0, n, now=START + 10 + n)
    b.arrive("Acme", START + 20, "lost", START + 20, 0)  # the enrich stage dead-letters it
    now = START + 400
    step(b, mention(5), START + 400, 0, 5, now=now)  # past the first bucket's end and lateness
    assert history_starts(b) == [], "the first bucket waits for the announced mention"
    b.tick(0, START + 20 + 599)
    assert history_starts(b) == []
    watermark, brands = b.tick(0, START + 20 + 601)  # the hold is over: the bucket closes without it
    for brand in brands:
        b.close(brand, watermark).commit()
    assert history_starts(b) == [START]


def counts(b: BucketBook, brand: str = "acme") -> list[list[int]]:
    """The brand's closed buckets as [start, count] (the offsets differ with the order)."""
    return [entry[:2] for entry in b.history(brand, b.brand_states[brand])]


def history_starts(b: BucketBook) -> list[int]:
    return [start for start, count in counts(b) if count]
