"""The bundled sample stream: reproducible, schema-valid, demo-sized, with exactly the two stories it promises."""
from __future__ import annotations

import bisect
import collections
import io
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from streams import contracts
from streams.tools import sample

START = datetime(2026, 11, 21, 20, 0, tzinfo=timezone.utc)
HOURS = 36
WINDOW = sample.BURST_DURATION


@pytest.fixture(scope="module")
def labelled() -> list[sample.LabelledMention]:
    return sample.generate_labelled(START, HOURS, seed=7)


@pytest.fixture(scope="module")
def records(labelled: list[sample.LabelledMention]) -> list[dict]:
    return [mention.record for mention in labelled]


def _times(records: list[dict], brand: str) -> list[datetime]:
    return [contracts.parse_rfc3339(r["created_at"]) for r in records if r["brand"] == brand]


def _count(times: list[datetime], start: datetime, end: datetime) -> int:
    return bisect.bisect_left(times, end) - bisect.bisect_left(times, start)


def _usual_per_window(times: list[datetime], excluded: list[tuple[datetime, datetime]]) -> float:
    """Mean count per burst-length window over the stream, leaving out the given spans."""
    kept = [t for t in times if not any(a <= t < b for a, b in excluded)]
    covered = timedelta(hours=HOURS) - sum((b - a for a, b in excluded), timedelta(0))
    return len(kept) / (covered / WINDOW)


def test_same_seed_same_stream_other_seed_other_stream(records: list[dict]) -> None:
    assert sample.generate(START, HOURS, seed=7) == records
    assert sample.generate(START, HOURS, seed=8) != records


def test_every_record_is_a_valid_raw_mention(records: list[dict]) -> None:
    problems = {r["id"]: errors for r in records if (errors := contracts.validate("raw", r))}
    assert problems == {}


def test_time_order_unique_ids_and_bounds(records: list[dict]) -> None:
    times = [contracts.parse_rfc3339(r["created_at"]) for r in records]
    assert times == sorted(times)
    assert START <= times[0] and times[-1] < START + timedelta(hours=HOURS)
    assert len({r["id"] for r in records}) == len(records)


def test_demo_sized_volume(records: list[dict]) -> None:
    assert 6000 <= len(records) <= 9000
    assert {r["brand"] for r in records} == set(sample.BRAND_NAMES)


def test_multilingual_with_italian_first_among_equals(records: list[dict]) -> None:
    languages = collections.Counter(r.get("lang") for r in records)
    assert {"it", "en", "de", "es", "pt", "fr"} <= set(languages)
    assert languages["it"] >= 0.15 * len(records)
    aurora = collections.Counter(r.get("lang") for r in records if r["brand"] == sample.CRISIS_BRAND and "lang" in r)
    assert aurora.most_common(1)[0][0] == "it"


def test_only_reposts_repeat_a_text(labelled: list[sample.LabelledMention]) -> None:
    originals = collections.Counter(m.record["text"] for m in labelled if m.repost_of is None)
    assert [text for text, count in originals.items() if count > 1] == []
    by_id = {m.record["id"]: m for m in labelled}
    for repost in (m for m in labelled if m.repost_of):
        assert repost.record["text"].endswith(by_id[repost.repost_of].record["text"])


def test_sources_authors_and_heavy_tailed_followers(records: list[dict]) -> None:
    assert {"twitter", "reddit", "news", "review", "forum", "instagram"} <= {r["source"] for r in records}
    followers = sorted(r["author"]["followers"] for r in records)
    median = followers[len(followers) // 2]
    assert median < 200 and followers[-1] > 100 * median
    assert any("@" in r["text"] for r in records) and any("https://" in r["text"] for r in records)


def test_bursts_sit_in_the_last_four_hours() -> None:
    crisis, viral = sample.bursts(START, HOURS)
    end = START + timedelta(hours=HOURS)
    assert (crisis.brand, crisis.kind) == (sample.CRISIS_BRAND, "crisis")
    assert (viral.brand, viral.kind) == (sample.VIRAL_BRAND, "opportunity")
    for burst in (crisis, viral):
        assert end - timedelta(hours=4) <= burst.start and burst.end <= end
        assert burst.end - burst.start == WINDOW
    assert crisis.end <= viral.start
    assert [b.kind for b in sample.bursts(START, 2)] == ["opportunity"]  # too short for the crisis
    assert sample.bursts(START, 1) == ()


@pytest.mark.parametrize("kind", ["crisis", "opportunity"])
def test_burst_is_six_times_usual_volume_with_its_sentiment(labelled: list[sample.LabelledMention], kind: str) -> None:
    burst = next(b for b in sample.bursts(START, HOURS) if b.kind == kind)
    records = [m.record for m in labelled]
    times = _times(records, burst.brand)
    usual = _usual_per_window(times, [(burst.start, burst.end + sample.AFTERMATH)])
    assert _count(times, burst.start, burst.end) >= 6 * usual

    inside = [m for m in labelled if m.record["brand"] == burst.brand
              and burst.start <= contracts.parse_rfc3339(m.record["created_at"]) < burst.end]
    dominant = "negative" if kind == "crisis" else "positive"
    assert sum(m.sentiment == dominant for m in inside) > len(inside) / 2


def test_crisis_is_mostly_italian_and_names_the_problem(labelled: list[sample.LabelledMention]) -> None:
    crisis = [m.record for m in labelled if m.burst == sample.CRISIS_BRAND]
    languages = collections.Counter(r.get("lang") for r in crisis if "lang" in r)
    assert languages["it"] > 0.6 * sum(languages.values())
    text = " ".join(r["text"].lower() for r in crisis)
    assert all(term in text for term in sample.CRISIS_TERMS)
    assert any(r["author"]["followers"] >= 40_000 for r in crisis)


def test_viral_launch_is_french_and_english_and_names_the_model(labelled: list[sample.LabelledMention]) -> None:
    viral = [m.record for m in labelled if m.burst == sample.VIRAL_BRAND]
    assert {r.get("lang") for r in viral if "lang" in r} == {"fr", "en"}
    naming = [r for r in viral if any(term in r["text"] for term in sample.VIRAL_TERMS)]
    assert len(naming) > 0.6 * len(viral)


def test_other_brands_and_times_have_no_burst(records: list[dict]) -> None:
    """Sliding windows every 5 minutes: outside the two stories nothing reaches even 4x the usual volume."""
    stream_bursts = {b.brand: (b.start, b.end + sample.AFTERMATH) for b in sample.bursts(START, HOURS)}
    for brand in sample.BRAND_NAMES:
        times = _times(records, brand)
        excluded = [stream_bursts[brand]] if brand in stream_bursts else []
        usual = _usual_per_window(times, excluded)
        moment = START
        while moment + WINDOW <= START + timedelta(hours=HOURS):
            overlaps = any(moment < b and a < moment + WINDOW for a, b in excluded)
            if not overlaps:
                assert _count(times, moment, moment + WINDOW) < 4 * usual, (brand, moment)
            moment += timedelta(minutes=5)


def test_write_jsonl_round_trips(records: list[dict], tmp_path) -> None:
    path = tmp_path / "sample.jsonl"
    assert sample.write_jsonl(records[:50], path) == 50
    assert [orjson.loads(line) for line in path.read_bytes().splitlines()] == records[:50]
    buffer = io.StringIO()
    sample.write_jsonl(records[:3], buffer)
    assert buffer.getvalue().count("\n") == 3


def test_cli_writes_the_stream(tmp_path, capsys) -> None:
    out = tmp_path / "s.jsonl"
    assert sample.main(["--hours", "1", "--start", "2026-05-04T16:00:00Z", "--out", str(out)]) == 0
    lines = out.read_bytes().splitlines()
    assert lines and [orjson.loads(line) for line in lines] == sample.generate(
        datetime(2026, 5, 4, 16, tzinfo=timezone.utc), 1)


def test_rejects_naive_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sample.generate(datetime(2026, 5, 4), 1)
