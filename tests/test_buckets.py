"""Bucketing and closing (streams/detection/buckets.py) without a broker: the code the detect stage runs over
its Faust tables, here over plain dicts."""
from __future__ import annotations

from datetime import UTC, datetime

from streams.detection.buckets import BucketBook, bucket_key
from streams.detection.detector import DetectorConfig

START = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp())  # a bucket boundary


def mention(n: int, brand: str = "Acme", label: str = "neutral") -> dict:
    return {"id": f"m{n}", "brand": brand, "source": "twitter", "text": f"post number {n} about coffee",
            "language": "en", "reach": 10, "sentiment": {"label": label, "score": 0.0}}


def book(lateness_s: int = 60, **options) -> BucketBook:
    return BucketBook(DetectorConfig(bucket_seconds=300), lateness_s, {}, {}, **options)


def test_a_bucket_closes_only_once_the_watermark_passes_its_end_by_the_lateness():
    b = book()
    b.count(mention(1), START + 10, 0, 0)
    b.count(mention(2), START + 330, 0, 1)  # next bucket, but within the 60 s lateness of the first
    watermark, brands = b.due("Acme", START + 330, 0)
    assert brands == ["acme"] and not b.close("acme", watermark).buckets
    b.count(mention(3), START + 361, 0, 2)
    watermark, _ = b.due("Acme", START + 361, 0)
    closing = b.close("acme", watermark)
    assert [(c.start, c.digest.count) for c in closing.buckets] == [(START, 1)]
    assert bucket_key("acme", START) in b.open_buckets  # kept until the caller commits
    closing.commit()
    assert bucket_key("acme", START) not in b.open_buckets
    assert b.brand_states["acme"]["closed_through"] == START + 300
    assert b.brand_states["acme"]["history"] == [[START, 1, 0]]


def test_counting_is_idempotent_under_redelivery():
    b = book()
    b.count(mention(1), START + 10, 0, 5)
    b.count(mention(1), START + 10, 0, 5)  # the same offset again, after a restart
    b.count(mention(2), START + 20, 0, 4)  # an older offset: already applied
    assert b.open_buckets[bucket_key("acme", START)]["digest"]["count"] == 1


def test_a_late_mention_corrects_the_history_once_and_leaves_the_decision():
    b = book(lateness_s=0)
    b.count(mention(1), START + 10, 0, 0)
    b.count(mention(2), START + 310, 0, 1)
    b.close("acme", b.due("Acme", START + 310, 0)[0]).commit()
    assert b.count(mention(3), START + 20, 0, 2) is True  # late: reported once
    assert b.count(mention(3), START + 20, 0, 2) is False  # redelivered: neither counted nor reported again
    assert b.brand_states["acme"]["history"] == [[START, 2, 2]]


def test_empty_buckets_are_judged_too_and_a_boundary_closes_every_brand_of_the_partition():
    b = book(lateness_s=0)
    b.count(mention(1, "Acme"), START + 10, 0, 0)
    b.count(mention(2, "Bolt"), START + 20, 0, 1)
    b.due("Bolt", START + 20, 0)
    b.count(mention(3, "Bolt"), START + 1210, 0, 2)  # four buckets later
    watermark, brands = b.due("Bolt", START + 1210, 0)
    assert brands == ["acme", "bolt"]
    closing = b.close("acme", watermark)
    assert [(c.start - START, c.digest.count) for c in closing.buckets] == [(0, 1), (300, 0), (600, 0), (900, 0)]


def test_a_rebalance_forgets_the_partition_caches():
    b = book()
    b.count(mention(1), START + 10, 3, 0)
    b.due("Acme", START + 10, 3)
    b.clock.reset([3])
    assert 3 not in b.clock.watermarks and 3 not in b.clock.brands
    assert b.brands_in(3) == {"acme"}  # rebuilt from the states


def test_a_crisis_is_explained_by_its_own_buckets_and_does_not_teach_the_baseline_its_terms():
    b = book(lateness_s=0)
    n = 0
    alerts = []
    for minute in range(0, 24 * 60, 5):  # a day of calm traffic, then a negative burst about a recall
        burst = 22 * 60 <= minute < 22 * 60 + 20
        for _ in range(40 if burst else 2):
            m = mention(n, label="negative" if burst else "neutral")
            if burst:
                m["text"] = f"recall contamination listeria {n}"
            b.count(m, START + minute * 60 + 1, 0, n)
            n += 1
        watermark, brands = b.due("Acme", START + minute * 60 + 1, 0)
        closing = b.close("acme", watermark)
        alerts += [alert for closed in closing.buckets for alert in closed.alerts]
        closing.commit()
    opened = [a for a in alerts if a.decision.event == "opened"]
    assert opened and opened[0].decision.kind == "crisis"
    assert "recall" in {t["term"] for t in opened[0].explanation["top_terms"]}
    assert "recall" not in b.brand_states["acme"]["terms"]["frequencies"]


def test_one_brand_whatever_its_case_keyed_by_its_folded_name_and_shown_by_its_first_spelling():
    b = book(lateness_s=0)
    b.count(mention(1, "Acme"), START + 10, 0, 0)
    b.count(mention(2, "ACME"), START + 20, 0, 1)
    assert list(b.brand_states) == ["acme"] and b.display_name("aCmE") == "Acme"
    assert b.open_buckets[bucket_key("acme", START)]["digest"]["count"] == 2
    b.count(mention(3, "acme"), START + 310, 0, 2)
    closing = b.close("acme", b.due("acme", START + 310, 0)[0])
    assert closing.buckets[0].timeline.brand == "Acme"


def test_stored_values_that_cannot_be_loaded_are_replaced_and_reported_not_raised():
    replaced, forgotten = [], []
    b = book(lateness_s=0, on_replaced=replaced.append, on_forgotten=forgotten.append)
    b.count(mention(1), START + 10, 0, 0)
    b.count(mention(2), START + 310, 0, 1)
    b.close("acme", b.due("acme", START + 310, 0)[0]).commit()
    b.open_buckets[bucket_key("acme", START + 300)]["digest"]["reach"] = None  # Faust's JSON for infinity
    b.brand_states["acme"]["detector"] = {"version": -1}  # another detector version
    b.count(mention(3), START + 320, 0, 2)  # the bucket is replaced: counted afresh
    closing = b.close("acme", START + 600)
    assert [c.digest.count for c in closing.buckets] == [1]
    closing.commit()
    assert replaced == ["open-buckets", "brand-states"] and not forgotten
    b.brand_states["acme"]["history"] = None  # a state nothing can count into: the brand is forgotten
    b.count(mention(4), START + 610, 0, 3)
    assert forgotten == ["Acme"] and b.brand_states["acme"]["closed_through"] == START + 600
    assert b.brand_states["acme"]["history"] == []


def test_a_brand_silent_longer_than_the_horizon_with_no_open_incident_is_forgotten():
    forgotten = []
    b = book(lateness_s=0, horizon_s=3600, on_forgotten=forgotten.append)
    b.count(mention(1, "Acme"), START + 10, 0, 0)
    b.count(mention(2, "Bolt"), START + 3610, 0, 1)
    b.close("acme", b.due("Bolt", START + 3610, 0)[0]).commit()
    assert "acme" in b.brand_states and not forgotten  # its last bucket began exactly the horizon ago
    b.count(mention(3, "Bolt"), START + 3910, 0, 2)
    b.close("acme", b.due("Bolt", START + 3910, 0)[0]).commit()
    assert "acme" not in b.brand_states and forgotten == ["Acme"] and b.brands_in(0) == {"bolt"}
