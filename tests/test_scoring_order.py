"""The detect stage's result does not depend on the order the model scored a brand's mentions in (issue 13): with
``mentions.valid`` keyed by mention every worker scores a share of a brand, so its mentions reach the detector
out of event-time order. No broker: the code the detect stage runs (streams/detection/buckets.py) over dicts."""
from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from test_buckets import step

from streams.detection.alert import alert_event
from streams.detection.buckets import HOLD_S, BucketBook, DetectTables
from streams.detection.detector import DetectorConfig
from streams.normalise import dedup_key
from streams.tools.sample import CRISIS_BRAND, generate_labelled

START = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp())  # a bucket boundary


def book(tables: DetectTables | None = None) -> BucketBook:
    return BucketBook(DetectorConfig(bucket_seconds=300), 60, tables or DetectTables())


def event_time(record: dict) -> float:
    return datetime.fromisoformat(record["created_at"].replace("Z", "+00:00")).timestamp()


def mention(n: int, brand: str = "Acme") -> dict:
    return {"id": f"m{n}", "brand": brand, "source": "twitter", "text": f"post number {n}", "language": "en",
            "reach": 10, "sentiment": {"label": "neutral", "score": 0.0}}


def scored(b: BucketBook, record: dict, at: float, offset: int, partition: int = 0, now: float | None = None
           ) -> list:
    """What the detect stage does with a scored mention (tests/test_buckets.py: ``step``), an early judgement's
    alerts raised but uncommitted: when a partial bucket is judged depends on the scoring order
    (tests/test_early_open.py covers early opening), its close does not."""
    return step(b, record, at, partition, offset, now, commit_early=False)


def announced(b: BucketBook, record: dict, at: float, now: float = 0.0, partition: int = 0) -> list:
    """What the detect stage does with an arrival (``now`` 0: a replay of history, judged as without arrivals)."""
    return b.arrive(record["brand"], at, dedup_key(record), now, partition).alerts


def closed_history(b: BucketBook) -> dict[str, list]:
    """Each brand's closed counts, [[bucket start, count], ...] (without the offsets they were last counted at)."""
    return {key: [entry[:2] for entry in b.history(key, state)] for key, state in sorted(b.brand_states.items())}


def events(alerts: list) -> dict[str, dict]:
    """Alert events by id: the order brands' alerts interleave in is the order their buckets closed in."""
    return {e["event_id"]: e for e in (alert_event(a, 300, datetime(2027, 1, 1, tzinfo=UTC)) for a in alerts)}


def replay(records: list[dict], scoring_order: list[int], lead: int) -> tuple[dict[str, dict], dict]:
    """Announce the mentions in raw order and count them in ``scoring_order``, the announcements ``lead`` mentions
    ahead of the scored ones (ingest is cheap, the model is behind); then the last bucket's close."""
    b, alerts = book(), []
    ahead = 0
    for offset, i in enumerate(scoring_order):
        while ahead < min(len(records), offset + lead):
            alerts += announced(b, records[ahead], event_time(records[ahead]))
            ahead += 1
        alerts += scored(b, records[i], event_time(records[i]), offset)
    for brand in list(b.brand_states):
        closing = b.close(brand, b.clock.watermarks[0] + 3600)
        alerts += [alert for closed in closing.buckets for alert in closed.alerts]
        closing.commit()
    return events(alerts), closed_history(b)


def test_the_sample_raises_the_same_alerts_and_windows_whatever_order_its_mentions_are_scored_in():
    """The sample's twelve hours (its crisis included), counted in raw order and in an order shuffled within
    windows of 200 mentions (about 40 minutes, as several workers score them), give the same alert events and the
    same closed counts. Stories aside: the story stage assigns them in the order ingest announced the mentions
    (tests/test_story_order.py); none here."""
    labelled = generate_labelled(datetime.fromtimestamp(START + 6 * 3600 + 50 * 60, UTC), hours=12.0)
    # the generator's own tone stands for the model's: this test is about order, not the model
    records = sorted(({**m.record, "sentiment": {"label": m.sentiment, "score": 0.0}} for m in labelled),
                     key=event_time)
    in_order, in_order_windows = replay(records, list(range(len(records))), lead=1)
    assert any(e["brand"] == CRISIS_BRAND and e["event"] == "opened" for e in in_order.values()), in_order
    shuffled = list(range(len(records)))
    rng = random.Random(13)
    for first in range(0, len(shuffled), 200):
        window = shuffled[first:first + 200]
        rng.shuffle(window)
        shuffled[first:first + 200] = window
    out_of_order, out_of_order_windows = replay(records, shuffled, lead=400)
    assert out_of_order_windows == in_order_windows
    # top_terms aside: a digest keeps its terms in a bounded sketch (Space-Saving), exact only up to 64 terms a
    # bucket, so its counts past that depend on the order the bucket's mentions came in
    assert without_terms(out_of_order) == without_terms(in_order)


def without_terms(events: dict[str, dict]) -> str:
    return json.dumps({event_id: {**event, "explanation": {k: v for k, v in event["explanation"].items()
                                                           if k != "top_terms"}}
                       for event_id, event in events.items()}, sort_keys=True)


def test_a_new_brands_earlier_mention_scored_after_a_later_one_starts_its_history():
    """Without announcements (offline, or after a restart): the brand's first scored mention is not its first; the
    earlier one is not late by the partition's clock, so the brand's history starts at its bucket."""
    b = book()
    scored(b, mention(1, "Other"), START + 30, 0)  # the partition's clock: boundary at START - 300
    scored(b, mention(2), START + 310, 1)  # Acme's first scored mention, bucket START + 300
    assert b.count(mention(3), START + 10, 0, 2) is False  # bucket START: still open, counted
    assert b.brand_states["acme"]["closed_through"] == START
    scored(b, mention(4), START + 700, 3)
    assert closed_history(b)["acme"] == [[START, 1], [START + 300, 1]]


def test_an_announced_mention_holds_its_bucket_open_until_it_is_counted():
    b = book()
    early, later = mention(1), mention(2)
    announced(b, early, START + 10)
    announced(b, later, START + 1000)
    scored(b, later, START + 1000, 0)  # scored first, by another worker
    assert b.boundary(0) == START  # the bucket of the earlier mention stays open
    assert b.count(early, START + 10, 0, 1) is False  # not late
    b.release(dedup_key(early))
    watermark, brands = b.due("Acme", START + 10, 0)
    assert brands == ["acme"] and b.boundary(0) == START + 900  # the later mention's clock, minus the lateness
    assert [(c.start, c.digest.count) for c in b.close("acme", watermark).buckets][0] == (START, 1)


def test_an_announcement_survives_a_restart_and_gives_up_after_the_hold():
    """Stored with the counts, so the worker that takes the partition over after a crash still waits for the
    mention; one never counted (the model dead-lettered it) stops holding after ``HOLD_S`` of wall clock."""
    b = book()
    announced(b, mention(1), START + 10, now=1000.0)
    scored(b, mention(2), START + 1000, 0, now=1001.0)
    restarted = book(DetectTables(**json.loads(json.dumps({k: dict(v) for k, v in vars(b.tables).items()}))))
    assert restarted.held_from(0, 1002.0) == START + 10
    scored(restarted, mention(3), START + 1100, 0, now=1003.0)
    assert restarted.boundary(0) == START
    scored(restarted, mention(4), START + 1200, 0, now=1000.0 + HOLD_S + 1)
    assert restarted.boundary(0) == START + 1200 - 300 and restarted.held_from(0, 2000.0) is None
    assert not restarted.tables.awaited  # given up: no longer stored


def test_an_announcement_for_a_closed_bucket_or_announced_twice_holds_nothing_new():
    b = book()
    scored(b, mention(1), START + 1000, 0)
    announced(b, mention(2), START + 10)  # its bucket closed already: it will be late whatever happens
    assert b.held_from(0, None) is None and not b.tables.awaited
    announced(b, mention(3), START + 1010)
    announced(b, mention(3), START + 1010)  # redelivered after a restart
    assert list(b.tables.awaited) == [dedup_key(mention(3))] and b.held_from(0, None) == START + 1010
