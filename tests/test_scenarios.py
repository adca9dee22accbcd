"""Detector scenarios with real texts and the real default model (issue 15).

Streams are built from real tweets (``tests/data/umsab_texts.jsonl``: the UMSAB validation split of six
languages, 108 per language and class, Apache-2.0, see tests/data/README.md) whose *true* class follows the scenario; the
detector sees what the default model labels them, with its own per-language bias, never the truth. Texts
are labelled once per session. Buckets are built the way ``buckets.to_bucket`` builds them (count,
negative, positive, reach, most-reached negative mention); the sample's launch goes through the whole
offline path (``detect_mentions``) instead.
"""
from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from streams.detection.detector import BrandDetector, Bucket, DetectorConfig
from streams.detection.offline import detect_mentions
from streams.tools.sample import CRISIS_BRAND, VIRAL_BRAND, bursts, generate

from conftest import CLASSES

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
PER_DAY = 288
CONFIG = DetectorConfig()


def daily(i: np.ndarray | int) -> np.ndarray:
    """European daily rhythm: quiet at night, busiest late afternoon (peak 1.6x, trough 0.4x the mean)."""
    hours = (np.asarray(i) * 5 / 60.0) % 24
    return 1.0 + 0.6 * np.cos(2 * math.pi * (hours - 17) / 24)


class Brand:
    """A brand's ordinary traffic: volume, language mix (optionally varying by hour), true tone per language,
    and reach per mention (log-normal followers)."""

    def __init__(self, name, level, languages, truth, reach_median=300.0, mix_by_hour=None):
        self.name, self.level, self.languages, self.truth = name, level, languages, truth
        self.reach_median, self.mix_by_hour = reach_median, mix_by_hour

    def mix(self, i: int) -> np.ndarray:
        weights = np.array([self.languages[lang] for lang in self.languages])
        if self.mix_by_hour:
            hour = (i * 5 / 60.0) % 24
            weights = weights * np.array([1 + 0.8 * math.cos(2 * math.pi * (hour - self.mix_by_hour.get(lang, hour)) / 24)
                                          for lang in self.languages])
        return weights / weights.sum()


def buckets_for(rng, brand: Brand, pool, n: int, volume=None, truth=None, first: int = 0) -> list[Bucket]:
    """n buckets of ``brand`` from bucket index ``first``; ``volume(i)`` scales the volume, ``truth(i, lang)``
    overrides the true class shares."""
    out = []
    for i in range(first, first + n):
        weekday = (i // PER_DAY) % 7
        mean = brand.level * daily(i) * (0.8 if weekday >= 5 else 1.0) * (volume(i) if volume else 1.0)
        count = int(rng.poisson(rng.gamma(20.0, mean / 20.0)))  # overdispersed (alpha 0.05)
        by_language = rng.multinomial(count, brand.mix(i))
        labels = []
        for lang, k in zip(brand.languages, by_language):
            shares = truth(i, lang) if truth else brand.truth[lang]
            for cls, m in zip(CLASSES, rng.multinomial(k, shares)):
                if m:
                    labels.append(rng.choice(pool[lang, cls], size=m))
        labels = np.concatenate(labels) if labels else np.zeros(0, dtype=int)
        reach = rng.lognormal(math.log(brand.reach_median), 1.3, size=count)
        negative = labels == 0
        out.append(Bucket(START + timedelta(minutes=5 * i), count, int(negative.sum()), int((labels == 2).sum()),
                          float(reach.sum()), float(reach[negative].max()) if negative.any() else 0.0))
    return out


def run(buckets, name="brand", config=CONFIG):
    detector = BrandDetector(config, brand=name)
    return [d for b in buckets for d in detector.update(b)]


def index_of(decision) -> int:
    return round((decision.at - START).total_seconds() / 300)


# --------------------------------------------------------------------------------------------- slow burn

# A large brand: about 110 mentions per 5 minutes in the afternoon. The model turns the true +15 points into
# about +9 (it calls some neutral and positive posts negative, and misses some negative ones), and a 3-hour
# ramp of +9 points needs about this much volume to stand out within the three hours at no more than one
# false alarm per brand and month (docs/detection.md has the measured rates for smaller brands).
SLOW_BURN = {
    "german": Brand("Nordwind Air", 80.0, {"de": 1.0}, {"de": (0.33, 0.42, 0.25)}),
    "mixed": Brand("Lumen Bank", 80.0, {"es": 0.45, "pt": 0.35, "en": 0.2},
                   {lang: (0.33, 0.42, 0.25) for lang in ("es", "pt", "en")}),
}


@pytest.mark.parametrize("market", sorted(SLOW_BURN))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_slow_burn_opens_a_drift_crisis_within_three_hours(model_labels, market, seed):
    """A week of ordinary traffic, then over three hours (from 13:00 UTC) the true negative share climbs by 15
    points while the volume grows to 1.75x: a crisis opens within the three hours, nothing before, and its
    explanation says it is a drift: since when, the share then and now."""
    rng = np.random.default_rng(seed)
    brand = SLOW_BURN[market]
    n, ramp = 7 * PER_DAY + 13 * 12, 36
    history = buckets_for(rng, brand, model_labels, n)

    def truth(i, lang):
        neg, neu, pos = brand.truth[lang]
        step = 0.15 * (i - n + 1) / ramp
        return (neg + step, neu - step / 2, pos - step / 2)

    burn = buckets_for(rng, brand, model_labels, ramp, volume=lambda i: 1 + 0.75 * (i - n + 1) / ramp,
                       truth=truth, first=n)
    decisions = run(history + burn, brand.name)
    opened = [d for d in decisions if d.event == "opened" and d.kind in ("crisis", "opportunity")]
    assert opened, "the slow burn raised nothing"
    first = opened[0]
    assert first.kind == "crisis" and n <= index_of(first) < n + ramp, (first.kind, index_of(first) - n)
    assert first.drift is not None and first.drift["share"] == "negative"
    assert first.drift["share_now"] > first.drift["share_then"]
    since = datetime.fromisoformat(first.drift["since"])
    assert START + timedelta(minutes=5 * (n - 36)) <= since <= first.at


# ------------------------------------------------------------------------------------- ordinary traffic

ORDINARY = [
    Brand("Tessuti Bianchi", 0.3, {"it": 0.6, "en": 0.4}, {"it": (0.2, 0.45, 0.35), "en": (0.2, 0.45, 0.35)}),
    Brand("Nordwind Air", 2.0, {"de": 0.6, "en": 0.4}, {"de": (0.33, 0.42, 0.25), "en": (0.3, 0.45, 0.25)}),
    Brand("Lumen Bank", 8.0, {"es": 0.45, "pt": 0.35, "en": 0.2},
          {"es": (0.3, 0.45, 0.25), "pt": (0.3, 0.45, 0.25), "en": (0.3, 0.45, 0.25)}, reach_median=800.0),
    Brand("Velo Motors", 25.0, {"fr": 0.6, "en": 0.4}, {"fr": (0.25, 0.45, 0.3), "en": (0.25, 0.45, 0.3)}),
    # Its audience changes language with the hour: the model's per-language bias moves the share daily.
    Brand("Caffè Aurora", 60.0, {"en": 0.5, "de": 0.2, "it": 0.15, "es": 0.15},
          {"en": (0.2, 0.45, 0.35), "de": (0.3, 0.4, 0.3), "it": (0.2, 0.45, 0.35), "es": (0.25, 0.45, 0.3)},
          reach_median=1_000.0, mix_by_hour={"de": 8, "en": 20}),
]


@pytest.fixture(scope="module")
def ordinary_month(model_labels) -> dict[str, list]:
    rng = np.random.default_rng(30)
    return {brand.name: run(buckets_for(rng, brand, model_labels, 30 * PER_DAY), brand.name) for brand in ORDINARY}


def test_a_month_of_ordinary_traffic_opens_at_most_one_incident_per_brand(ordinary_month):
    for name, decisions in ordinary_month.items():
        incidents = [(d.kind, str(d.at)) for d in decisions if d.event == "opened" and d.kind != "watch"]
        assert len(incidents) <= 1, (name, incidents)


def test_a_month_of_ordinary_traffic_raises_a_few_watches_per_brand_and_week(ordinary_month):
    for name, decisions in ordinary_month.items():
        weeks = Counter(index_of(d) // (7 * PER_DAY) for d in decisions if d.event == "opened" and d.kind == "watch")
        assert max(weeks.values(), default=0) <= 3, (name, weeks)


# ----------------------------------------------------------------------------------------------- watch


def test_a_negative_post_from_a_large_account_opens_a_watch_before_volume_moves(model_labels):
    """Ten ordinary days, then one negative post reaching 500,000 people (the brand's mentions reach about
    800 each): a watch opens in that bucket and resolves after an hour of calm. The same stream without
    the post has no watch that day, and neither has anything else opening."""
    brand = ORDINARY[2]
    n = 10 * PER_DAY + 12 * 12

    def stream(post: bool) -> list:
        rng = np.random.default_rng(5)
        buckets = buckets_for(rng, brand, model_labels, n + 24)
        if post:
            b = buckets[n - 1]
            buckets[n - 1] = Bucket(b.start, b.count + 1, b.negative + 1, b.positive, b.reach + 500_000, 500_000.0)
        return run(buckets, brand.name)

    assert not [d for d in stream(post=False) if index_of(d) >= n - PER_DAY]
    decisions = stream(post=True)
    assert [(d.kind, d.event, index_of(d)) for d in decisions if index_of(d) >= n - PER_DAY] == [
        ("watch", "opened", n - 1), ("watch", "resolved", n - 1 + 12)]
    assert decisions[-2].severity > 2 and decisions[-2].reach >= 500_000


# ---------------------------------------------------------------------------------------------- launch

LAUNCH_STARTS = [datetime(2026, 12, 1, 6, 50, tzinfo=UTC) + timedelta(minutes=2 * k) for k in range(6)] + [
    datetime(2026, 12, 1, h, 10, tzinfo=UTC) for h in range(0, 24, 3)
]


# The model labels 24,000 distinct texts here (4-5 minutes on two cores): `make test-scale` runs it. It
# passes since the tone baseline learns an hour late (detector._learn_share): 10 of 14 starts before.
@pytest.mark.scale
def test_the_sample_launch_opens_an_opportunity_at_every_start(classifier):
    """The sample's viral launch (the model labels 51% of its posts positive against 37% usual, 8x volume)
    opens an opportunity at each of the 14 start times of benchmarks/sample_crisis_delay.py, 12 hours each,
    through the offline path; nothing else opens but the sample's crisis."""
    labels: dict[str, str] = {}
    missed, others = [], []
    for start in LAUNCH_STARTS:
        records = generate(start, hours=12)
        new = sorted({r["text"] for r in records} - labels.keys())
        labels.update(zip(new, (s.label for s in classifier.classify(new))))
        mentions = []
        for record in records:
            created = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
            mention = {**record, "reach": record["author"]["followers"], "sentiment": {"label": labels[record["text"]],
                                                                                      "score": 0.0}}
            mentions.append((mention, created.timestamp()))
        opened = [a for a in detect_mentions(mentions, CONFIG) if a.decision.event == "opened"]
        launch = next(b for b in bursts(start, hours=12) if b.brand == VIRAL_BRAND)
        if not any(a.brand == VIRAL_BRAND and a.decision.kind == "opportunity"
                   and launch.start <= a.decision.at <= launch.end for a in opened):
            missed.append(f"{start:%H:%M}")
        expected = {(VIRAL_BRAND, "opportunity"), (CRISIS_BRAND, "crisis")}
        others += [(f"{start:%H:%M}", a.brand, a.decision.kind) for a in opened
                   if (a.brand, a.decision.kind) not in expected]
    assert not missed, f"no opportunity at starts {missed}"
    assert not others, others
