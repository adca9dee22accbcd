"""Early opening (issue 18): an extreme burst opens its incident while its bucket is still being counted, and the
bucket's close continues that incident. Through the detect stage's code over plain dicts (``BucketBook``, as
tests/test_buckets.py drives it), ``ascolta detect``'s ``detect_mentions``, and the detector alone."""
from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from test_buckets import START, Changelog, Crash, book, mention, step
from test_scenarios import CONFIG, ORDINARY, PER_DAY, buckets_for

from streams.detection.buckets import TONE_SAMPLE, TONE_WAIT_S, BucketBook
from streams.detection.detector import BrandDetector, Bucket, DetectorConfig
from streams.detection.incidents import incident_id_for
from streams.detection.offline import detect_mentions
from streams.normalise import dedup_key

BURST = START + 22 * 3600  # a bucket boundary, after 22 hours of calm


def burst_day(phase_s: int, per_second: float = 2.0, seconds: int = 100, label: str = "negative"
              ) -> list[tuple[dict, float]]:
    """Acme and Bolt, two neutral mentions each per 5 minutes for a day; ``phase_s`` into the bucket at BURST, a
    burst on Acme about a recall (``label``: its sentiment), ``per_second`` for ``seconds``. In event-time order."""
    mentions, n = [], 0
    for minute in range(0, 24 * 60, 5):
        for brand in ("Acme", "Bolt"):
            for i in range(2):
                mentions.append((mention(n, brand), START + minute * 60 + 1 + 100 * i + (brand == "Bolt")))
                n += 1
    for k in range(int(per_second * seconds)):
        m = {**mention(n, "Acme", label), "text": f"recall contamination listeria batch {k}"}
        mentions.append((m, BURST + phase_s + k / per_second))
        n += 1
    return sorted(mentions, key=lambda pair: pair[1])


def acme_events(b: BucketBook, mentions: list[tuple[dict, float]]) -> list[tuple[float, object]]:
    """(event time of the mention whose processing raised it, alert) for Acme's alerts, as the stream raises them."""
    return [(t, alert) for offset, (m, t) in enumerate(mentions) for alert in step(b, m, t, 0, offset)
            if alert.brand == "Acme"]


def test_an_extreme_burst_opens_before_its_bucket_closes_and_the_close_continues_the_same_incident():
    for phase, lateness in ((0, 60), (250, 60), (0, 0)):
        b = book(lateness_s=lateness)
        mentions = burst_day(phase)
        in_bucket = sum(m["brand"] == "Acme" and BURST <= t < BURST + 300 for m, t in mentions)
        events = acme_events(b, mentions)
        bucket = BURST  # the bucket the burst starts in: a phase of 250 s leaves 50 s of it
        opened = [(t, a) for t, a in events if a.decision.event == "opened"]
        assert len(opened) == 1, (phase, lateness, [(t - BURST, a.decision.event) for t, a in events])
        raised_at, first = opened[0]
        # within 10 s of the burst's start, while its bucket is open (and, at phase 0 with 60 s of lateness,
        # while the bucket before it still waits for late mentions)
        assert BURST + phase <= raised_at <= BURST + phase + 10, (phase, lateness, raised_at - BURST)
        assert first.decision.at == datetime.fromtimestamp(bucket, UTC) and first.decision.kind == "crisis"
        assert first.decision.incident_id == incident_id_for("Acme", "crisis", first.decision.at)
        assert first.decision.expected < first.decision.observed and first.explanation["mentions"] >= 5
        assert "recall" in {term["term"] for term in first.explanation["top_terms"]}
        # the close of its bucket continues it: the same id, seq going on, never a second "opened"
        assert {a.decision.incident_id for _, a in events} == {first.decision.incident_id}
        assert [a.decision.seq for _, a in events] == list(range(1, len(events) + 1))
        assert len(events) > 1 and events[1][0] >= bucket + 300 + lateness  # the close's update, not earlier
        # from the close on, the incident is explained by its whole bucket, which the brand record now holds
        assert events[1][1].explanation["mentions"] == in_bucket
        assert b.tables.brand_states["acme"]["incident"]["count"] >= in_bucket


def test_ascolta_detect_opens_early_the_same_way():
    """``detect_mentions`` (no lateness: a bucket closes when the next one starts) and the stream's book with 60 s
    of lateness (the bucket before the burst still waits for late mentions) raise the same events, explained
    alike, though not after the same mentions."""
    for phase in (0, 250):
        mentions = burst_day(phase)
        now = [0.0]

        def clocked():
            for m, t in mentions:
                now[0] = t
                yield m, t

        last_bucket = datetime.fromtimestamp(mentions[-1][1] // 300 * 300, UTC)  # offline judges it at the end
        alerts = [(now[0], a) for a in detect_mentions(clocked(), DetectorConfig())
                  if a.brand == "Acme" and a.decision.at < last_bucket]
        streamed = acme_events(book(lateness_s=60), mentions)
        assert [(a.decision, a.explanation) for _, a in alerts] == [(a.decision, a.explanation) for _, a in streamed]
        assert alerts[0][1].decision.event == "opened" and alerts[0][0] < BURST + phase + 10
        assert streamed[0][0] == alerts[0][0]  # the same mention opens it


def test_a_burst_the_whole_bucket_test_would_not_call_significant_does_not_open_early():
    """Twice the usual rate, with the usual tone, for half an hour: a lot for the first minutes of a bucket,
    nothing for a whole bucket: no early opening."""
    events = acme_events(book(lateness_s=0), burst_day(0, per_second=2 / 300 * 2, seconds=60 * 30, label="neutral"))
    assert not [a for _, a in events if a.decision.event == "opened"]


def behind_the_model(mentions: list[tuple[dict, float]], delay_s: float, announced: bool, replayed_s: float = 0.0
                     ) -> list[tuple[float, str, dict, float]]:
    """The detect stage's input, live (event time is wall-clock time, unless ``replayed_s`` later), while from the
    burst on the model is ``delay_s`` behind: (wall clock, "arrived" or "scored", mention, event time), in the order
    they come. Each mention's arrival (``announced``) comes as ingest sees it, its scored record once the model is
    done."""
    inputs = []
    for m, t in mentions:
        if announced:
            inputs.append((t + replayed_s, "arrived", m, t))
        inputs.append((t + replayed_s + (delay_s if t >= BURST else 0.5), "scored", m, t))
    return sorted(inputs, key=lambda row: row[0])


def live_acme_events(inputs: list[tuple[float, str, dict, float]]) -> list[tuple[float, str, object]]:
    """(wall clock, input kind, alert) of Acme's alerts as the detect stage raises them."""
    b, events = book(lateness_s=60), []
    for offset, (now, kind, m, t) in enumerate(inputs):
        if kind == "arrived":
            opening = b.arrive(m["brand"], t, dedup_key(m), now, 0)
            raised = opening.alerts
            opening.commit()
        else:
            raised = step(b, m, t, 0, offset)
        events += [(now, kind, a) for a in raised if a.brand == "Acme"]
    return events


def test_arrivals_open_a_burst_the_model_is_minutes_behind_on_and_the_scored_tone_continues_it():
    """Issue 18, item 2: the model two minutes behind, the burst's arrivals open the crisis on volume once they
    have waited ``TONE_WAIT_S`` for a tone, long before its first scored mention; the scored mentions then
    continue the same incident (one ``opened``, one id) and their close explains it with its tone."""
    mentions = burst_day(250, per_second=4.0, seconds=100)
    events = live_acme_events(behind_the_model(mentions, 120, announced=True))
    now, kind, opened = events[0]
    assert opened.decision.event == "opened" and kind == "arrived", events[0]
    assert BURST + 250 + TONE_WAIT_S <= now <= BURST + 250 + TONE_WAIT_S + 5, now - BURST
    assert opened.decision.kind == "crisis" and opened.decision.observed >= 4 * TONE_WAIT_S
    assert [event.decision.event for _, _, event in events].count("opened") == 1
    assert {event.decision.incident_id for _, _, event in events} == {opened.decision.incident_id}
    _, kind, update = events[1]
    assert kind == "scored" and update.decision.event == "updated"
    assert update.explanation["negative_share"] > 0.9  # the tone the scored mentions brought
    without = live_acme_events(behind_the_model(mentions, 120, announced=False))
    assert without[0][2].decision.event == "opened" and without[0][0] >= BURST + 250 + 120
    assert without[0][2].decision.incident_id == opened.decision.incident_id
    # a replay of the same day, a day later, waits for the tone: it raises what it raised without arrivals
    replayed = live_acme_events(behind_the_model(mentions, 120, announced=True, replayed_s=86_400))
    assert [(kind, a.decision) for _, kind, a in replayed] == [(kind, a.decision) for _, kind, a in without]


def calm_until_the_burst() -> list[tuple[dict, float]]:
    return [(m, t) for m, t in burst_day(250, seconds=0) if t < BURST]


def test_a_scored_tone_sample_lets_arrivals_open_before_the_wait():
    """Once ``TONE_SAMPLE`` of the bucket are scored, the arrived count is judged with their tone at once: on a
    busy brand (30 mentions per bucket), whose scored part alone is far below its early gate."""
    b = book(lateness_s=60)
    for k in range(8 * 12 * 30):  # eight hours, one mention in five negative
        t = BURST - 8 * 3600 + k * 10
        step(b, {**mention(k, "Acme", "negative" if k % 5 == 0 else "neutral"), "text": f"coffee post {k % 7}"},
             t, 0, k)
    burst = [({**mention(10_000 + k, "Acme", "negative"), "text": f"recall listeria {k}"}, BURST + 250 + k / 100)
             for k in range(400)]
    for k, (m, t) in enumerate(burst[:TONE_SAMPLE]):  # scored at once ...
        opening = b.arrive("Acme", t, dedup_key(m), t, 0)
        assert not step(b, m, t, 0, 100_000 + k) and not opening.alerts
    raised = []
    for m, t in burst[TONE_SAMPLE:]:  # ... then the model falls behind
        opening = b.arrive("Acme", t, dedup_key(m), t, 0)
        raised += opening.alerts
        opening.commit()
    assert [a.decision.event for a in raised] == ["opened"] and raised[0].decision.observed > 2 * TONE_SAMPLE


def test_arrivals_without_a_tone_open_nothing_until_the_wait_is_over():
    """Volume alone waits ``TONE_WAIT_S`` for the tone (a launch's burst is no crisis): arrivals that come faster
    than the model, less than that behind, open nothing; nor do arrivals of a brand without a baseline."""
    b = book(lateness_s=60)
    for offset, (m, t) in enumerate(calm_until_the_burst()):
        step(b, m, t, 0, offset)
    start = BURST + 250
    for k in range(2_000):
        t = start + k * (TONE_WAIT_S - 1) / 2_000
        assert not b.arrive("Acme", t, f"arrived-{k}", t, 0).alerts
        assert not b.arrive("Newco", t, f"new-{k}", t, 0).alerts
    assert f"acme|{BURST}" not in b.open_buckets  # an arrival never counts


def history(rng: np.random.Generator, days: int = 7, level: float = 20.0) -> list[Bucket]:
    """A week of a mid-size brand: a daily rhythm, overdispersed counts, 20% negative and 25% positive."""
    buckets = []
    for i in range(days * 288):
        mean = level * (1 + 0.5 * np.cos(2 * np.pi * ((i * 5 / 60) % 24 - 20) / 24))
        count = int(rng.poisson(rng.gamma(20.0, mean / 20.0)))
        negative = int(rng.binomial(count, 0.2))
        positive = int(rng.binomial(count - negative, 0.25 / 0.8))
        buckets.append(Bucket(datetime(2026, 3, 2, tzinfo=UTC) + timedelta(minutes=5 * i), count, negative, positive,
                              100.0 * count))
    return buckets


def test_a_partial_bucket_opens_only_where_the_whole_bucket_test_falls_short_by_less_than_the_margin():
    """The documented rule (docs/detection.md, "Early opening"): whatever a partial bucket opens, the full-bucket
    test on the same mentions, with every opening threshold lowered by ``early_margin``, opens too. And a count
    far above the elapsed part's expectation but ordinary for a whole bucket does not open."""
    config = DetectorConfig()
    lowered = replace(config, open_surprise=config.open_surprise - config.early_margin,
                      volume_only_surprise=config.volume_only_surprise - config.early_margin)
    detector = BrandDetector(config, brand="acme")
    for bucket in history(np.random.default_rng(4)):
        detector.update(bucket)
    start = datetime(2026, 3, 9, tzinfo=UTC)  # the next bucket: about 25 mentions expected
    state = detector.to_state()  # each detector below steps a copy: a restored detector works on the lists it is given
    opened = refused = 0
    for count in range(0, 161, 4):
        for negative_share in (None, 0.2, 0.5, 0.9):
            for elapsed in (20, 90, 200, 300):
                negative = None if negative_share is None else round(count * negative_share)
                positive = None if negative is None else (count - negative) // 4
                partial = Bucket(start, count, negative, positive, 100.0 * count)
                early = BrandDetector(config, copy.deepcopy(state), brand="acme").early(partial, elapsed)
                whole = BrandDetector(lowered, copy.deepcopy(state), brand="acme").update(partial)
                if early is not None:
                    assert [(d.event, d.kind) for d in whole] == [("opened", early.kind)], (count, negative_share,
                                                                                            elapsed, early, whole)
                    opened += 1
                elif not whole and count >= 3 * 25 * max(elapsed, config.early_min_elapsed_s) / 300:
                    refused += 1  # three times the elapsed part's expectation, yet no case for the whole bucket
    assert opened > 10 and refused > 10, (opened, refused)
    quiet = Bucket(start, 25, 5, 5, 2500.0)  # a whole bucket's usual mentions within the first 30 seconds
    assert BrandDetector(config, copy.deepcopy(state), brand="acme").early(quiet, 30) is None


def published_then_committed(b: BucketBook, m: dict, t: float, offset: int):
    """``step`` (tests/test_buckets.py) taken apart: each batch of alerts the detect stage publishes for one
    mention, with the commit that follows it."""
    b.count(m, t, 0, offset)
    watermark, brands = b.due(m["brand"], t, 0)
    for brand in brands:
        closing = b.close(brand, watermark)
        yield [alert for closed in closing.buckets for alert in closed.alerts], closing.commit
    opening = b.open_early(m["brand"], t)
    yield opening.alerts, opening.commit


def test_a_crash_between_the_early_opening_and_the_close_does_not_open_a_second_incident():
    """The input committed just before the early opening's message, the worker killed at every write of the
    messages that open early and close the bucket (as in test_buckets.py's crash test), the tables recovered and
    the messages after the commit replayed: one ``opened``, one incident id, and every event with the event id
    (incident id and seq) it has without the crash."""
    mentions = burst_day(250)
    config = DetectorConfig(bucket_seconds=300)

    def process(b: BucketBook, offsets: range, changelog: Changelog, raised: list, marks: list, published: dict):
        for offset in offsets:
            m, t = mentions[offset]
            marks.append(changelog.written)
            raised.append([])
            for alerts, commit in published_then_committed(b, m, t, offset):
                for a in alerts:
                    if a.brand == "Acme":
                        event = (a.decision.incident_id, a.decision.event, a.decision.seq)
                        raised[-1].append(event)
                        published[event] = changelog.written  # went out before this many writes
                commit()
        marks.append(changelog.written)

    changelog, raised, marks, published = Changelog(), [], [], {}
    process(BucketBook(config, 60, changelog.tables()), range(len(mentions)), changelog, raised, marks, published)
    expected = sorted({event for message in raised for event in message})
    first = next(i for i, message in enumerate(raised) if message)
    close = next(i for i, message in enumerate(raised) if i > first and message)  # the close's "updated"
    assert raised[first][0][1] == "opened" and mentions[first][1] < BURST + 300 <= mentions[close][1]
    committed = Changelog()
    before = BucketBook(config, 60, committed.tables())
    process(before, range(first), committed, [], [], {})
    committed.commit()
    cuts = 0
    for i in [first, first + 1, close - 1, close]:
        for kept in range(marks[i], marks[i + 1]):
            crashing, log = copy.deepcopy((before, committed))
            log.crash_at = kept
            with pytest.raises(Crash):
                process(crashing, range(first, i + 1), log, [], [], {})
            restarted = BucketBook(config, 60, log.recover())
            events = {event for message in raised[:i + 1] for event in message if published[event] <= kept}
            for offset in range(first, len(mentions)):
                m, t = mentions[offset]
                events |= {(a.decision.incident_id, a.decision.event, a.decision.seq)
                           for a in step(restarted, m, t, 0, offset) if a.brand == "Acme"}
            assert sorted(events) == expected, (i - first, kept - marks[i], sorted(events), expected)
            assert [e for e in events if e[1] == "opened"] == [raised[first][0]]
            cuts += 1
    assert cuts > 8


def test_a_month_of_ordinary_traffic_opens_nothing_early(model_labels):
    """The 30-day ordinary traffic of tests/test_scenarios.py (five brands, real texts labelled by the real model):
    each bucket judged early at 30 s to 4 minutes, its mentions so far drawn clumped (the elapsed share of the
    bucket from a Beta(2f, 2(1 - f)): bursts of ordinary mentions), opens exactly the incidents the closes open."""
    rng, draws = np.random.default_rng(30), np.random.default_rng(5)
    for brand in ORDINARY:
        buckets = buckets_for(rng, brand, model_labels, 30 * PER_DAY)
        closes_only, judged_early = BrandDetector(CONFIG, brand=brand.name), BrandDetector(CONFIG, brand=brand.name)
        reference = [(d.incident_id, d.event) for b in buckets for d in closes_only.update(b) if d.kind != "watch"]
        events = []
        for bucket in buckets:
            for elapsed in (30, 60, 120, 240):
                decision = judged_early.early(clumped(draws, bucket, elapsed / 300), elapsed)
                events += [(decision.incident_id, decision.event)] if decision is not None else []
            events += [(d.incident_id, d.event) for d in judged_early.update(bucket) if d.kind != "watch"]
        assert events == reference, (brand.name, events, reference)


def clumped(rng: np.random.Generator, bucket: Bucket, fraction: float) -> Bucket:
    """The part of ``bucket`` counted by ``fraction`` of its time, the arrivals clumped."""
    count = int(rng.binomial(bucket.count, rng.beta(2 * fraction, 2 * (1 - fraction))))
    negative = int(rng.hypergeometric(bucket.negative, bucket.count - bucket.negative, count)) if count else 0
    others = bucket.count - bucket.negative
    positive = (int(rng.hypergeometric(bucket.positive, others - bucket.positive, count - negative))
                if count > negative else 0)
    return Bucket(bucket.start, count, negative, positive, bucket.reach * count / max(bucket.count, 1))
