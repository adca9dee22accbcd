"""Stories in the detection digest and the alert: unique counts, one sample per story, top stories, and copies
weighed down in the detector's input."""
from __future__ import annotations

import math
from datetime import datetime, timezone

import orjson

from streams.alerting.channels.email import _html_body
from streams.alerting.channels.slack import slack_message
from streams.alerting.channels.teams import teams_message
from streams.alerting.render import format_alert, summarise
from streams.contracts import validate
from streams.detection.alert import build_explanation
from streams.detection.buckets import to_bucket
from streams.detection.digest import MAX_STORIES, SKETCH_K, BucketDigest, TermBaseline

from streams.detection.detector import Decision

AT = datetime(2026, 11, 23, 14, 5, tzinfo=timezone.utc)

def mention(i: int, text: str, *, label: str = "neutral", score: float = 0.0, followers: int = 100,
            handle: str | None = None) -> dict:
    author = {"id": f"author-{i}", "followers": followers}
    if handle is not None:
        author["handle"] = handle
    return {"id": f"m{i}", "brand": "acme", "text": text, "author": author, "url": f"https://example.com/p/{i}",
            "language": "it", "source": "twitter",
            "sentiment": {"label": label, "score": score,
                          "probabilities": {"negative": 0.0, "neutral": 1.0, "positive": 0.0}}}


def decision() -> Decision:
    return Decision(event="opened", kind="crisis", incident_id="acme:crisis:1795528800", seq=0, at=AT,
                    started_at=AT, severity=7.3, observed=96, expected=12.0, volume_ratio=8.0, negative_share=0.71,
                    baseline_negative_share=0.18, reach=1_250_000.0, baseline_reach=150_000.0)


def alert_for(d: Decision, explanation: dict) -> dict:
    return {"schema_version": 1, "event_id": f"{d.incident_id}:{d.seq}", "incident_id": d.incident_id,
            "event": d.event, "kind": d.kind, "brand": "acme", "at": "2026-11-23T14:05:00Z",
            "started_at": "2026-11-23T14:05:00Z", "severity": d.severity, "bucket_seconds": 300,
            "explanation": explanation, "emitted_at": "2026-11-23T14:10:02Z"}


POST = "Caffè Aurora knew about the contamination and kept selling? Disgusting."


def storied(i: int, text: str, story: str, *, copy_of: str | None = None, author: str | None = None, **kw) -> dict:
    record = mention(i, text, **kw)
    record["author"]["id"] = author or f"author-{i}"
    record["created_at"] = f"2026-12-01T10:{i % 60:02d}:00Z"
    record["story"] = {"id": story, "is_copy": copy_of is not None, "first_id": copy_of or f"m{i}",
                       "first_seen_at": "2026-12-01T10:00:00Z", "mentions": 1}
    if copy_of is not None:
        record["story"]["copy_of"] = copy_of
    return record


def bot_storm(copies: int = 500, people: int = 10) -> BucketDigest:
    digest = BucketDigest()
    for i in range(people):
        digest.add(storied(i, f"ordinary post {i} about coffee", f"st_{i:016x}", label="neutral"))
    digest.add(storied(1000, POST, "st_" + "a" * 16, label="negative", score=-0.9))
    for i in range(copies):
        digest.add(storied(2000 + i, f"RT @x: {POST}", "st_" + "a" * 16, copy_of="m1000", label="negative", score=-0.9))
    return digest


def test_copies_weigh_log2_so_a_bot_storm_does_not_count_as_500_people():
    digest = bot_storm()
    count, negative, positive = digest.evidence()
    assert digest.count == 511
    assert count == round(11 + math.log2(501))  # 20: the ten people, the original, and 9 for its 500 copies
    assert negative == round(1 + math.log2(501))
    assert positive == 0
    bucket = to_bucket(1_795_000_000, digest)
    assert (bucket.count, bucket.negative) == (count, negative)


def test_without_stories_the_evidence_is_the_plain_counts():
    digest = BucketDigest()
    for i in range(50):
        digest.add(mention(i, "same text every time", label="negative" if i % 2 else "positive"))
    assert digest.evidence() == (50, 25, 25)
    assert digest.unique_stories == 0 and digest.copies == 0


def test_unique_authors_and_stories_are_exact_when_few_and_close_when_many():
    digest = bot_storm(copies=20, people=5)
    assert digest.unique_authors == 26
    assert digest.unique_stories == 6
    many = BucketDigest()
    for i in range(10_000):
        many.add(storied(i, "x y z", f"st_{i % 3000:016x}", author=f"user{i % 7000}"))
    assert abs(many.unique_authors - 7000) / 7000 < 0.35
    assert abs(many.unique_stories - 3000) / 3000 < 0.35
    assert len(many.authors) == SKETCH_K and len(many.stories) == MAX_STORIES


def test_samples_are_one_per_story_never_two_copies_of_one_post():
    digest = BucketDigest()
    for i in range(6):  # the most reached mentions are all copies of one post
        digest.add(storied(i, f"RT @a: {POST}", "st_" + "a" * 16, copy_of="m0" if i else None, label="negative",
                           score=-0.9, followers=10_000 + i))
    digest.add(storied(10, "The recall notice is on the website", "st_" + "b" * 16, label="negative", score=-0.5))
    digest.add(storied(11, "Sustainability report out today", "st_" + "c" * 16, label="neutral", followers=5))
    stories = [s["story"] for s in digest.most_reached]
    assert len(stories) == len(set(stories)) == 3
    assert len({s["story"] for s in digest.most_negative}) == len(digest.most_negative) == 2
    explanation = build_explanation(decision(), [digest], TermBaseline())
    top = explanation["most_reached"][0]
    assert top["story"] == "st_" + "a" * 16 and top["copies"] == 5


def test_top_stories_list_the_largest_stories_with_their_figures_and_skip_one_offs():
    digest = bot_storm(copies=30, people=5)
    explanation = build_explanation(decision(), [digest], TermBaseline())
    [top] = explanation["top_stories"]  # the five ordinary posts are told once each
    assert top["id"] == "st_" + "a" * 16
    assert (top["mentions"], top["copies"], top["unique_authors"]) == (31, 30, 31)  # authors: exact below the sketch size
    assert top["negative_share"] == 1.0 and top["languages"] == {"it": 31}
    assert top["first_by"] == "author-1000" and top["first_seen_at"].startswith("2026-12-01T10:")
    assert POST in top["text"]
    assert (explanation["mentions"], explanation["copies"], explanation["unique_stories"]) == (36, 30, 6)
    assert validate("alert", alert_for(decision(), explanation)) == []


def test_merging_bucket_digests_keeps_story_counts():
    whole, parts = BucketDigest(), [BucketDigest(), BucketDigest(), BucketDigest()]
    for i in range(300):
        record = storied(i, f"post {i % 40}", f"st_{i % 40:016x}", copy_of=None if i < 40 else f"m{i % 40}",
                         label="negative" if i % 3 else "neutral")
        whole.add(record)
        parts[i % 3].add(record)
    merged = BucketDigest()
    for part in parts:
        merged.merge(part)
    assert merged.copies == whole.copies == 260
    assert merged.unique_stories == whole.unique_stories == 40
    assert merged.unique_authors == whole.unique_authors
    assert len(merged.stories) <= MAX_STORIES


def test_story_fields_survive_a_round_trip_and_older_digests_load_without_them():
    digest = bot_storm(copies=40)
    restored = BucketDigest.from_dict(orjson.loads(orjson.dumps(digest.to_dict())))
    assert restored.to_dict() == digest.to_dict()
    assert restored.evidence() == digest.evidence()
    old = {k: v for k, v in digest.to_dict().items() if k not in ("copies", "storied", "authors", "story_ids", "stories")}
    assert BucketDigest.from_dict(old).evidence() == (digest.count, digest.negative, digest.positive)


def test_a_busy_bucket_with_stories_stays_small():
    digest, largest = BucketDigest(), 0
    for i in range(10_000):
        digest.add(storied(i, f"post about the recall number {i % 500} " + "x" * 200, f"st_{i % 500:016x}",
                           copy_of=None if i < 500 else f"m{i % 500}", handle="h" * 100, label="negative", score=-0.5))
        if i % 1000 == 999:
            largest = max(largest, len(orjson.dumps(digest.to_dict())))
    assert largest < 24 * 1024


def test_every_channel_and_the_terminal_show_the_top_stories():
    explanation = build_explanation(decision(), [bot_storm(copies=30, people=5)], TermBaseline())
    alert = alert_for(decision(), explanation)
    for lang, word in (("en", "Top stories"), ("it", "Storie principali")):
        summary = summarise(alert, lang)
        assert summary.stories_heading == word and POST in summary.stories[0].text
        assert word.lower() in format_alert(alert, lang)
    assert "31 mentions (30 copies) by 31 authors" in summarise(alert, "en").stories[0].figures
    assert "Top stories" in orjson.dumps(slack_message(alert)).decode()
    assert "Top stories" in orjson.dumps(teams_message(alert)).decode()
    assert "Top stories" in _html_body(summarise(alert, "en"), "en")
