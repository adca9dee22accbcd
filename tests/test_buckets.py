"""Bucketing and closing (streams/detection/buckets.py) without a broker: the code the detect stage runs over
its Faust tables, here over plain dicts."""
from __future__ import annotations

import copy
import json
from collections.abc import MutableMapping
from datetime import UTC, datetime

import pytest

from streams.detection.buckets import BucketBook, DetectTables, ahead_of_clock, bucket_key, loaded_json
from streams.detection.detector import BrandDetector, Bucket, DetectorConfig
from streams.detection.offline import detect_mentions
from streams.normalise import dedup_key

START = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp())  # a bucket boundary
DAY = 86_400


def mention(n: int, brand: str = "Acme", label: str | None = "neutral") -> dict:
    """An enriched mention; ``label`` None: sentiment unknown (the detector's volume path decides alone)."""
    record = {"id": f"m{n}", "brand": brand, "source": "twitter", "text": f"post number {n} about coffee",
              "language": "en", "reach": 10}
    return record if label is None else {**record, "sentiment": {"label": label, "score": 0.0}}


def book(lateness_s: int = 60, **options) -> BucketBook:
    return BucketBook(DetectorConfig(bucket_seconds=300), lateness_s, DetectTables(), **options)


def step(b: BucketBook, m: dict, event_time: float, partition: int, offset: int, now: float | None = None,
         commit_early: bool = True) -> list:
    """What the detect stage does with one mention: count it, close what is due, then judge its open bucket
    early; the alerts raised. ``commit_early`` False leaves an early judgement uncommitted (its alerts still
    raised), for a comparison of what the closes decide."""
    b.count(m, event_time, partition, offset)
    b.release(dedup_key(m))
    watermark, brands = b.due(m["brand"], event_time, partition, now)
    alerts = []
    for brand in brands:
        closing = b.close(brand, watermark)
        alerts += [alert for closed in closing.buckets for alert in closed.alerts]
        closing.commit()
    opening = b.open_early(m["brand"], event_time)
    alerts += opening.alerts
    if commit_early:
        opening.commit()
    return alerts


def history(b: BucketBook, brand: str = "acme") -> list:
    return b.history(brand, b.brand_states[brand])


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
    assert history(b) == [[START, 1, 0]]


def test_counting_is_idempotent_under_redelivery():
    b = book()
    b.count(mention(1), START + 10, 0, 5)
    b.count(mention(1), START + 10, 0, 5)  # the same offset again, after a restart
    b.count(mention(2), START + 20, 0, 4)  # an older offset: already applied
    assert b.open_buckets[bucket_key("acme", START)]["digest"]["count"] == 1


def test_a_late_mention_corrects_the_history_once_and_leaves_the_decision():
    b = book(lateness_s=0)
    step(b, mention(1), START + 10, 0, 0)
    step(b, mention(2), START + 310, 0, 1)
    assert b.count(mention(3), START + 20, 0, 2) is True  # late: reported once
    assert b.count(mention(3), START + 20, 0, 2) is False  # redelivered: neither counted nor reported again
    assert history(b) == [[START, 2, 2]]


def test_a_late_mention_of_a_quiet_brand_is_late_by_the_partition_clock():
    b = book(lateness_s=0)
    step(b, mention(1, "Acme"), START + 10, 0, 0)
    step(b, mention(2, "Bolt"), START + 3610, 0, 1)  # Acme is quiet: nothing of it judged since its bucket
    assert b.brand_states["acme"]["closed_through"] == START + 300
    assert b.count(mention(3, "Acme"), START + 1210, 0, 2) is True  # its bucket is behind the boundary
    assert history(b) == [[START, 1, 0], [START + 1200, 1, 2]]


def test_a_boundary_judges_only_the_brands_with_mentions_or_an_open_incident():
    b = book(lateness_s=0)
    for i in range(100):
        step(b, mention(i, f"Brand {i}"), START + 10 + i, 0, i)
    _, due = b.due("Brand 7", START + 310, 0)  # the first boundary closes everyone's first bucket
    assert len(due) == 100
    for brand in due:
        b.close_until(brand, START + 300).commit()
    b.count(mention(100, "Brand 7"), START + 320, 0, 100)
    b.count(mention(101, "Brand 7"), START + 610, 0, 101)
    _, due = b.due("Brand 7", START + 610, 0)
    assert due == ["brand 7"]  # the 99 quiet brands are not touched, their records not rewritten
    written = DetectTables(**{name: _Recording(getattr(b.tables, name)) for name in vars(b.tables)})
    b.tables = written
    b.open_buckets, b.brand_states = written.open_buckets, written.brand_states
    b.close("brand 7", START + 610).commit()
    # its record only: detector state, term baseline and this hour's history chunk inside
    assert {key for table in vars(written).values() for key in table.written} == {"brand 7"}


def test_the_current_hours_history_is_in_the_brand_record_and_moves_to_its_own_key_once_the_hour_is_complete():
    b = book(lateness_s=0)
    for n, minute in enumerate((0, 5, 55, 60, 65, 125)):
        step(b, mention(n), START + minute * 60 + 10, 0, n)
    hour = START // 3600 * 3600
    state = b.brand_states["acme"]
    assert state["chunks"] == [hour, hour + 3600] and state["recent"] == [[START + 3600, 1, 3], [START + 3900, 1, 4]]
    assert list(b.tables.history) == [f"acme|{hour}"]  # the complete hour only; the last bucket is still open
    assert b.tables.history[f"acme|{hour}"] == [[START, 1, 0], [START + 300, 1, 1], [START + 3300, 1, 2]]
    b.tables = DetectTables(**{name: _Recording(getattr(b.tables, name)) for name in vars(b.tables)})
    b.brand_states = b.tables.brand_states
    assert b.count(mention(6), START + 310, 0, 6) is True  # late, in the complete hour: its own key only
    assert b.count(mention(7), START + 3610, 0, 7) is True  # late, in the current hour: the brand record
    assert b.tables.history.written == {f"acme|{hour}"} and b.brand_states.written == {"acme"}
    assert history(b) == [[START, 1, 0], [START + 300, 2, 6], [START + 3300, 1, 2], [START + 3600, 2, 7],
                          [START + 3900, 1, 4]]


class _Recording(dict):
    def __init__(self, data):
        super().__init__(data)
        self.written: set[str] = set()

    def __setitem__(self, key, value):
        self.written.add(key)
        super().__setitem__(key, value)


def test_empty_buckets_of_a_quiet_brand_are_caught_up_when_it_is_next_judged():
    b = book(lateness_s=0)
    step(b, mention(1, "Acme"), START + 10, 0, 0)
    step(b, mention(2, "Bolt"), START + 1210, 0, 1)  # four buckets later
    detector = loaded_json(b.brand_states["acme"]["detector"])
    assert detector["last_index"] == START // 300  # Acme is quiet: not stepped through the empty buckets
    step(b, mention(3, "Acme"), START + 1510, 0, 2)
    step(b, mention(4, "Bolt"), START + 1810, 0, 3)
    detector = loaded_json(b.brand_states["acme"]["detector"])
    assert detector["last_index"] == (START + 1500) // 300
    assert detector["seen"] == 6  # the empty run counted, in one step


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
            alerts += step(b, m, START + minute * 60 + 1, 0, n)
            n += 1
    opened = [a for a in alerts if a.decision.event == "opened"]
    assert opened and opened[0].decision.kind == "crisis"
    assert "recall" in {t["term"] for t in opened[0].explanation["top_terms"]}
    assert "recall" not in loaded_json(b.brand_states["acme"]["terms"])["frequencies"]
    assert b.brand_states["acme"]["hot"] and b.brand_states["acme"]["incident"]["count"] > 100


def burst_day():
    """(offset, minute, mention): a day of Acme's calm traffic, two mentions every 5 minutes, then a negative burst
    of 30 every 5 minutes from 22:00 for 20 minutes."""
    n = 0
    for minute in range(0, 24 * 60, 5):
        burst = 22 * 60 <= minute < 22 * 60 + 20
        for _ in range(30 if burst else 2):
            yield n, minute, mention(n, label="negative" if burst else "neutral")
            n += 1


def stepped(b: BucketBook, n: int, minute: int, m: dict) -> list[tuple]:
    """The events ``m`` raises at ``minute`` (offset ``n``), comparable across runs."""
    return [(a.decision.kind, a.decision.event, str(a.decision.at), round(a.decision.severity, 9))
            for a in step(b, m, START + minute * 60 + 1, 0, n)]


def test_detector_and_term_states_written_as_objects_by_an_earlier_version_continue_identically():
    """States are stored as JSON text; a changelog written before holds them as objects, and a worker upgraded in
    place must continue from them exactly as from the text."""

    def day(b: BucketBook, upgrade_at: int = -1) -> list:
        events = []
        for n, minute, m in burst_day():
            if n == upgrade_at:  # what the earlier version wrote: the same states, as objects
                for key, state in list(b.brand_states.items()):
                    b.brand_states[key] = {**state, "detector": loaded_json(state["detector"]),
                                           "terms": loaded_json(state["terms"])}
            events += stepped(b, n, minute, m)
        return events

    text = day(book(lateness_s=0))
    assert any(event == ("crisis", "opened") for event in (e[:2] for e in text))
    assert day(book(lateness_s=0), upgrade_at=21 * 12 * 2) == text  # at 21:00, before its first mention


def split_layout(b: BucketBook) -> None:
    """What the version before wrote, from the same states: brand records of version 2, the detector and term
    states (JSON text) under their own keys ``d|`` and ``t|``, every history chunk under its own key ``h|``."""
    for key, state in list(b.brand_states.items()):
        record = {name: value for name, value in state.items() if name not in ("detector", "terms", "recent")}
        b.brand_states[key] = {**record, "v": 2}
        if "detector" in state:
            b.tables.detectors[key], b.tables.terms[key] = state["detector"], state["terms"]
        if "recent" in state:
            b.tables.history[bucket_key(key, max(state["chunks"]))] = state["recent"]


@pytest.mark.parametrize("upgrade_at", [21 * 12 * 2, 22 * 12 * 2 + 1])  # an hour before the burst; in its first bucket
def test_detector_and_term_states_under_their_own_keys_by_the_version_before_continue_identically(upgrade_at):
    """A worker upgraded in place over a changelog written by the version before (brand records of version 2, the
    detector and term states under ``d|`` and ``t|``) raises exactly the events it would have, early opening
    included; each brand's next close (or early opening) moves the states into its record and deletes their keys."""

    def day(b: BucketBook, upgrade_at: int = -1) -> tuple[list, list]:
        events, moved = [], []  # moved: (minute upgraded, minute its record was next written)
        for n, minute, m in burst_day():
            if n == upgrade_at:
                split_layout(b)
                assert set(b.tables.detectors) == set(b.tables.terms) == {"acme"}
                moved.append(minute)
            events += stepped(b, n, minute, m)
            if len(moved) == 1 and b.brand_states["acme"]["v"] == 3:
                moved.append(minute)
        return events, moved

    straight = book(lateness_s=0)
    reference, _ = day(straight)
    assert [e[:2] for e in reference][:1] == [("crisis", "opened")]
    upgraded = book(lateness_s=0)
    events, moved = day(upgraded, upgrade_at)
    assert events == reference
    assert upgraded.brand_states == straight.brand_states  # the same detector state and term baseline, to the byte
    assert upgraded.tables.history == straight.tables.history and history(upgraded) == history(straight)
    assert not upgraded.tables.detectors and not upgraded.tables.terms  # moved into the record, then deleted
    assert upgraded.brand_states["acme"]["v"] == 3 and isinstance(upgraded.brand_states["acme"]["detector"], str)
    if upgrade_at % 2:  # upgraded within the burst's first bucket: its early opening wrote the record of version 3
        assert moved[0] == moved[1] == 22 * 60, moved


def test_an_open_incident_is_judged_at_every_boundary_and_resolves_without_mentions():
    b = book(lateness_s=0)
    n, alerts = 0, []
    for minute in range(0, 24 * 60, 5):  # sentiment unknown: a crisis on volume alone
        burst = 22 * 60 <= minute < 22 * 60 + 20
        for _ in range(60 if burst else 2):
            alerts += step(b, mention(n, label=None), START + minute * 60 + 1, 0, n)
            n += 1
        if minute >= 22 * 60 + 20:
            break  # Acme goes silent; only Bolt keeps the partition's clock moving
    for minute in range(22 * 60 + 25, 25 * 60, 5):
        alerts += step(b, mention(n, "Bolt"), START + minute * 60 + 1, 0, n)
        n += 1
    # the burst opens early, on its first bucket's partial count; that bucket's close may report it "updated"
    events = [(a.decision.event, a.decision.at) for a in alerts if a.brand == "Acme" and a.decision.event != "updated"]
    reference = BrandDetector(DetectorConfig(bucket_seconds=300), brand="Acme")  # every bucket, one by one
    expected = [(d.event, d.at) for minute in range(0, 25 * 60, 5) for d in reference.update(
        Bucket(datetime.fromtimestamp(START + minute * 60, UTC), 60 if 22 * 60 <= minute < 22 * 60 + 20 else
               2 if minute < 22 * 60 else 0, None, None, 0.0))]
    assert [e for e, _ in events] == ["opened", "resolved"] and events == expected[:2], (events, expected)
    assert b.brand_states["acme"]["closed_through"] == START + (24 * 60 + 55) * 60  # hot: judged at every boundary


def test_a_brands_first_mention_a_year_old_starts_its_history_without_replaying_a_year():
    b = book(lateness_s=0)
    step(b, mention(1, "Bolt"), START + 10, 0, 0)
    step(b, mention(2, "Acme"), START - 365 * DAY + 10, 0, 1)  # a new brand's first mention is never late
    step(b, mention(3, "Acme"), START + 310, 0, 2)
    step(b, mention(4, "Bolt"), START + 610, 0, 3)
    state = loaded_json(b.brand_states["acme"]["detector"])
    assert state["seen"] == 2 and state["last_index"] == (START + 300) // 300  # the year was not replayed
    assert b.count(mention(5, "Acme"), START - 365 * DAY + 400, 0, 4) is True  # behind the clock now: late


def test_a_wall_clock_tick_closes_a_quiet_live_partition_and_a_replay_keeps_its_event_time():
    b = book(lateness_s=60)
    now = START + 100_000.0
    step(b, mention(1), now - 5, 0, 0, now=now)
    assert b.tick(0, now + 200) == (now + 195, [])  # not yet past the bucket's end plus the lateness
    watermark, due = b.tick(0, now + 700)
    assert due == ["acme"] and watermark == now + 695
    assert [c.digest.count for c in b.close("acme", watermark).buckets] == [1]
    replay = book(lateness_s=60)
    step(replay, mention(1), START + 10, 0, 0, now=now)  # history replayed: event time far behind the wall clock
    step(replay, mention(2), START + 20, 0, 1, now=now + 1)
    assert replay.tick(0, now + 2) == (START + 21, [])  # the wall clock moved one second since: so does time


def test_pauses_between_arrivals_do_not_add_up_to_a_clock_ahead_of_the_mentions():
    """A backlog drained slower than real time (a burst outrunning the model): a mention a second of event time
    every three seconds, a tick in each pause. Each tick adds the pause to the latest mention's time, not to the
    previous tick's, so no bucket closes before its mentions arrive and none comes late."""
    b = book(lateness_s=5)
    now = START + 100_200.0  # a bucket boundary: every mention below is in the bucket ending now
    late = 0
    for k in range(120):
        event_time = now - 200 + k  # behind the wall clock, falling further behind
        late += b.count(mention(k), event_time, 0, k)
        _, brands = b.due("Acme", event_time, 0, now + 3 * k)
        for brand in b.tick(0, now + 3 * k + 2.5)[1] + brands:
            b.close(brand, b.clock.watermarks[0]).commit()
    assert late == 0 and b.clock.watermarks[0] <= now - 200 + 119 + 2.5


def test_the_clock_survives_a_restart_and_a_rebalance_resets_the_caches():
    b = book(lateness_s=0)
    step(b, mention(1), START + 10, 3, 0)
    step(b, mention(2), START + 610, 3, 1)
    tables = json.loads(json.dumps({name: dict(table) for name, table in vars(b.tables).items()}))
    restarted = BucketBook(DetectorConfig(bucket_seconds=300), 0, DetectTables(**tables))
    assert restarted.count(mention(3), START + 20, 3, 2) is True  # late, by the clock read back from its table
    b.clock.reset([3])
    assert 3 not in b.clock.watermarks and 3 not in b.clock.brands
    assert b.brands_in(3) == {"acme"} and b.boundary(3) == START + 600  # rebuilt from the tables


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
    step(b, mention(1), START + 10, 0, 0)
    step(b, mention(2), START + 310, 0, 1)
    b.open_buckets[bucket_key("acme", START + 300)]["digest"]["reach"] = None  # Faust's JSON for infinity
    b.brand_states["acme"] = {**b.brand_states["acme"],
                              "detector": {"version": -1},  # another detector version (written as an object)
                              "terms": '{"frequencies": {"recall": 1',  # cut short
                              "recent": "garbage"}  # this hour's history chunk
    b.clock.reset([0])  # values come back from a changelog after a restart: the worker's caches start empty
    b.count(mention(3), START + 320, 0, 2)  # the bucket is replaced: counted afresh
    closing = b.close("acme", START + 600)
    assert [c.digest.count for c in closing.buckets] == [1]
    closing.commit()
    assert replaced == ["open-buckets", "detector-states", "term-baselines", "bucket-history"] and not forgotten
    b.brand_states["acme"] = {**b.brand_states["acme"], "v": 1, "history": []}  # a record of version 1
    b.count(mention(4), START + 610, 0, 3)
    assert forgotten == ["Acme"] and b.brand_states["acme"]["closed_through"] == START + 600
    assert b.brand_states["acme"]["chunks"] == [] and "detector" not in b.brand_states["acme"]


def test_a_brand_silent_longer_than_the_horizon_with_no_open_incident_is_forgotten():
    forgotten = []
    b = book(lateness_s=0, horizon_s=3600, on_forgotten=forgotten.append)
    step(b, mention(1, "Acme"), START + 10, 0, 0)
    step(b, mention(2, "Bolt"), START + 3610, 0, 1)
    assert "acme" in b.brand_states and not forgotten  # its last bucket began exactly the horizon ago
    step(b, mention(3, "Bolt"), START + 7210, 0, 2)  # the next hourly sweep
    assert "acme" not in b.brand_states and forgotten == ["Acme"] and b.brands_in(0) == {"bolt"}
    assert not [key for key in b.tables.history if key.startswith("acme|")] and "acme" not in b.tables.terms


def test_a_mention_beyond_the_future_skew_is_refused_with_its_reason():
    assert ahead_of_clock(START + 299, START, 300) is None
    detail = ahead_of_clock(START + 20 * 3600, START, 300)
    assert "72000s ahead" in detail and "limit is 300s" in detail


def test_offline_detection_over_a_year_old_brand_and_a_live_one_is_not_slowed_by_the_gap():
    mentions = [(mention(1, "Acme"), START - 365 * DAY + 10.0)] + [
        (mention(i, "Bolt"), START + 300.0 * i) for i in range(2, 50)]
    assert list(detect_mentions(mentions, DetectorConfig())) == []


def test_catching_up_a_quiet_run_at_once_gives_the_decisions_of_stepping_every_bucket():
    import numpy as np

    rng = np.random.default_rng(3)
    config = DetectorConfig()
    for mean in (0.05, 0.3, 1.0):  # sparse brands: most buckets empty, runs of silence caught up at once
        n = 288 * 14
        counts = rng.poisson(mean * (1 + 0.8 * np.cos(2 * np.pi * ((np.arange(n) * 5 / 60) % 24 - 20) / 24)))
        counts[0], counts[n - 1000:n - 997], counts[n - 200:n - 196] = 1, [15, 25, 20], [30, 40, 35, 20]
        exact, lazy = BrandDetector(config, brand="a"), BrandDetector(config, brand="a")
        stepped, caught_up, quiet_from = [], [], None
        for i, count in enumerate(counts):
            at = datetime.fromtimestamp(START + 300 * i, UTC)
            stepped += exact.update(Bucket(at, int(count), None, None, 0.0))
            if count == 0 and lazy.quiet:
                quiet_from = i if quiet_from is None else quiet_from
                continue
            if quiet_from is not None:
                assert lazy.skip_empty(datetime.fromtimestamp(START + 300 * quiet_from, UTC), i - quiet_from) == []
                quiet_from = None
            caught_up += lazy.update(Bucket(at, int(count), None, None, 0.0))
        opened_resolved = [(d.event, d.at) for d in stepped if d.event != "updated"]
        assert opened_resolved and opened_resolved == [(d.event, d.at) for d in caught_up if d.event != "updated"]
        for a, b in zip([d for d in stepped if d.event == "opened"], [d for d in caught_up if d.event == "opened"]):
            assert abs(a.severity - b.severity) <= 0.05 * a.severity
        assert abs(exact.state.level - lazy.state.level) <= 0.1 * exact.state.level
        assert abs(exact.last_expected - lazy.last_expected) <= 0.1 * exact.last_expected


class Crash(Exception):
    """The worker dies in the middle of a message."""


class Changelog:
    """Every table write in the order Faust would produce it, as the stored object: Faust serialises a write
    when its producer buffer sends it, so an object changed in place after being stored reaches the changelog
    changed. Modelled at its worst: writes before the last commit are serialised at the commit, the ones after
    it when the worker dies (``crash_at``: the number of writes it lives to make)."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.written = 0
        self.pending: list[tuple[str, str, object]] = []  # written since the last commit, as stored
        self.committed: dict[tuple[str, str], str | None] = {}  # the latest committed value per key
        self.crash_at = crash_at

    def tables(self) -> DetectTables:
        return DetectTables(**{name: LoggedTable(self, name) for name in
                               ("open_buckets", "brand_states", "detectors", "terms", "history", "clocks")})

    def record(self, name: str, key: str, value: object) -> None:
        if self.written == self.crash_at:
            raise Crash
        self.pending.append((name, key, value))
        self.written += 1

    def commit(self) -> None:
        for name, key, value in self.pending:
            self.committed[name, key] = None if value is None else json.dumps(value)
        self.pending = []

    def recover(self) -> DetectTables:
        """The tables a restarted worker recovers: the committed writes, then the ones sent before it died."""
        self.commit()
        tables = DetectTables()
        for (name, key), value in self.committed.items():
            if value is not None:
                getattr(tables, name)[key] = json.loads(value)
        return tables


class LoggedTable(MutableMapping):
    """A mapping whose every write is recorded in a :class:`Changelog`."""

    def __init__(self, log: Changelog, name: str) -> None:
        self.log, self.name, self.values = log, name, {}

    def __getitem__(self, key):
        return self.values[key]

    def __setitem__(self, key, value) -> None:
        self.log.record(self.name, key, value)
        self.values[key] = value

    def __delitem__(self, key) -> None:
        self.log.record(self.name, key, None)
        del self.values[key]

    def __iter__(self):
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def crisis_day() -> list[tuple[dict, float]]:
    """Two brands for a day; a negative burst on Acme near its end."""
    mentions, n = [], 0
    for minute in range(0, 24 * 60, 5):
        burst = 22 * 60 <= minute < 22 * 60 + 25
        for brand, count in (("Acme", 40 if burst else 2), ("Bolt", 2)):
            for i in range(count):
                m = mention(n, brand, "negative" if brand == "Acme" and burst else "neutral")
                mentions.append((m, START + minute * 60 + 1 + i))
                n += 1
    return mentions


def test_a_crash_anywhere_in_a_boundarys_writes_neither_loses_nor_splits_the_incident():
    """Faust commits an input offset only after flushing the table writes before it, so after a crash the
    tables hold everything up to the committed offset and some prefix of the writes after it, and the messages
    after it come again. Committed a bucket and more before, cut at every write of the messages that open
    (early, then at the close) and continue the crisis: replayed, the brand has the same incident events, raised by the same messages, as
    without the crash (one sent again keeps its event id)."""
    mentions = crisis_day()

    def process(b: BucketBook, offsets: range, events: list, marks: list, changelog: Changelog) -> None:
        for offset in offsets:
            marks.append(changelog.written)
            m, t = mentions[offset]
            events.append([(a.decision.incident_id, a.decision.event, a.decision.seq)  # as event ids tell them
                           for a in step(b, m, t, 0, offset) if a.brand == "Acme"])
        marks.append(changelog.written)

    changelog = Changelog()
    reference, events, marks = BucketBook(DetectorConfig(bucket_seconds=300), 0, changelog.tables()), [], []
    process(reference, range(len(mentions)), events, marks, changelog)
    expected = {}  # event -> the message that raised it
    for offset, message in enumerate(events):
        for event in message:
            expected.setdefault(event, offset)
    boundaries = [i for i, message in enumerate(events) if message][:3]  # opened (early), then updated
    expected = {event: offset for event, offset in expected.items() if offset <= boundaries[-1]}
    assert {event for _, event, _ in expected} == {"opened", "updated"}, expected

    cuts = 0
    for i in boundaries:
        committed = i - 45  # the last commit: a bucket of messages (and its boundary) before
        changelog = Changelog()
        b = BucketBook(DetectorConfig(bucket_seconds=300), 0, changelog.tables())
        process(b, range(committed), [], [], changelog)
        changelog.commit()
        judging = [kept for m in range(committed, i + 1) if marks[m + 1] - marks[m] > 1  # more than its count
                   for kept in range(marks[m], marks[m + 1])]
        for kept in judging:
            crashing, log = copy.deepcopy((b, changelog))
            log.crash_at = kept
            with pytest.raises(Crash):
                process(crashing, range(committed, i + 1), [], [], log)
            restarted = BucketBook(DetectorConfig(bucket_seconds=300), 0, log.recover())
            seen = {e: offset for e, offset in expected.items() if offset <= i}  # published before the crash
            late = []  # raised again after the restart, later than without the crash
            for offset in range(committed, boundaries[-1] + 1):
                m, t = mentions[offset]
                for alert in step(restarted, m, t, 0, offset):
                    if alert.brand == "Acme":
                        event = (alert.decision.incident_id, alert.decision.event, alert.decision.seq)
                        seen.setdefault(event, offset)
                        if offset > expected.get(event, offset):
                            late.append((event, offset))
            assert seen == expected and not late, (i, kept - marks[committed], seen, expected, late)
            cuts += 1
    assert cuts > 10
