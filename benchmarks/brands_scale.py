"""The detect stage at 100 to 100,000 brands: mentions/s, changelog bytes per bucket boundary, RSS, metric series.

Drives :class:`streams.detection.buckets.BucketBook` as ``streams/detect.py`` does per mention (count, due,
close, commit), with plain dicts standing in for the Faust tables; each write is serialised to JSON as Faust's
changelog would write it and its bytes (key + value; a deletion: the key) are counted. No broker, no model, no
metrics endpoint: the stage's own cost. The workload is the operator check's (``../shared/checks/brands_scale.py``):
one seed mention per brand, then ``--mentions`` valid enriched mentions over ``--hours`` simulated hours, brands
drawn uniformly, 2 input partitions, 5-minute buckets, 60 s allowed lateness. Each brand count runs in its own
process, so the peak RSS is that run's. Per-brand metric series are counted as the worker would export them:
seven gauges per labelled brand (every brand before issue 13; the bounded set of
:mod:`streams.detection.series` after, with the default top 50).

It also runs on the code before issue 13 (one book over two tables), to measure before and after with one
script:  .venv/bin/python benchmarks/brands_scale.py [--brands 100 1000 10000 100000]
Prints; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.detection import buckets  # noqa: E402
from streams.detection.detector import DetectorConfig  # noqa: E402

BUCKET_S, LATENESS_S, PARTITIONS = 300, 60, 2
GAUGES_PER_BRAND = 7  # observed, expected, negative share, severity x2 kinds, incidents open x2 kinds


class Changelog(dict):
    """A table that counts the bytes Faust would write to its changelog (key and value per write, serialised
    with orjson as Faust's JSON codec does when orjson is installed)."""

    written = 0

    def __setitem__(self, key, value):
        Changelog.written += len(orjson.dumps(key)) + len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
        super().__setitem__(key, value)

    def __delitem__(self, key):
        Changelog.written += len(orjson.dumps(key))
        super().__delitem__(key)

    def pop(self, key, *default):
        if key in self:
            Changelog.written += len(orjson.dumps(key))
        return super().pop(key, *default)


def enriched(i: int, brand: str, ts: float, rng: random.Random, words: list[str]) -> dict:
    label = rng.choices(["negative", "neutral", "positive"], [0.2, 0.5, 0.3])[0]
    return {"id": f"s{i}", "brand": brand, "source": "twitter", "text": " ".join(rng.choice(words) for _ in range(8)),
            "created_at": datetime.fromtimestamp(ts, timezone.utc).isoformat(), "language": "en",
            "author": {"id": f"u{i % 997}", "handle": f"@u{i % 997}", "followers": rng.randrange(10_000)},
            "sentiment": {"label": label, "score": {"negative": -0.7, "neutral": 0.0, "positive": 0.7}[label]}}


def make_book():
    config = DetectorConfig(bucket_seconds=BUCKET_S)
    if hasattr(buckets, "DetectTables"):  # after issue 13: six small tables
        tables = buckets.DetectTables(**{name: Changelog() for name in vars(buckets.DetectTables())})
        return buckets.BucketBook(config, LATENESS_S, tables, horizon_s=30 * 86_400)
    return buckets.BucketBook(config, LATENESS_S, Changelog(), Changelog(), horizon_s=30 * 86_400)


def run_one(n: int, mentions: int, hours: float) -> dict:
    rng = random.Random(1)
    words = [f"w{i:04d}" for i in range(3000)]
    book = make_book()
    series = None
    if hasattr(buckets, "DetectTables"):
        from streams.detection.series import BrandSeries
        series = BrandSeries(50)
    labelled: set[str] = set()
    t_start = (int(time.time() // BUCKET_S) - 30) * BUCKET_S
    brands = [f"Brand-{i:05d}" for i in range(n)]

    per_boundary: list[int] = []  # changelog bytes written from one boundary to the next (the first: the seed's)
    clock = {"boundary": 0, "mark": 0}

    def feed(records: list[dict], offsets: dict[int, int]) -> None:
        last_start = None
        for record in records:
            partition = zlib.crc32(record["brand"].encode()) % PARTITIONS
            offset = offsets[partition] = offsets.get(partition, -1) + 1
            event_time = datetime.fromisoformat(record["created_at"]).timestamp()
            book.count(record, event_time, partition, offset)
            watermark, due = book.due(record["brand"], event_time, partition)
            for brand in due:
                closing = book.close(brand, watermark)
                for closed in closing.buckets:
                    name = closed.timeline.brand
                    if series is None:
                        labelled.add(name)
                    else:
                        series.observe(name, closed.start, closed.digest.count,
                                       closed.timeline.detector.open_incident_kind is not None)
                        if series.label(name) == name:
                            labelled.add(name)
                closing.commit()
            boundary = book.bucket_start(watermark - LATENESS_S)
            if boundary > clock["boundary"]:
                if clock["boundary"]:
                    per_boundary.append(Changelog.written - clock["mark"])
                clock.update(boundary=boundary, mark=Changelog.written)
            start = book.bucket_start(watermark)
            if series is not None and due and start != last_start:
                last_start = start
                for name in series.refresh(start):
                    labelled.discard(name)

    offsets: dict[int, int] = {}
    seed_records = [enriched(i, b, t_start + 1, rng, words) for i, b in enumerate(brands)]
    t0 = time.perf_counter()
    feed(seed_records, offsets)
    seed_s = time.perf_counter() - t0
    times = sorted(t_start + 300 + rng.random() * hours * 3600 for _ in range(mentions))
    run = [enriched(n + i, rng.choice(brands), t, rng, words) for i, t in enumerate(times)]
    before = Changelog.written
    t0, cpu0 = time.perf_counter(), time.process_time()
    feed(run, offsets)
    run_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    boundaries = hours * 3600 / BUCKET_S
    return {"brands": n, "mentions": mentions, "seed_s": round(seed_s, 2), "run_s": round(run_s, 2),
            "first_boundary_bytes": per_boundary[0] if per_boundary else 0,
            "median_boundary_bytes": sorted(per_boundary[1:])[len(per_boundary[1:]) // 2] if per_boundary[1:] else 0,
            "rate": round(mentions / run_s), "cpu_rate": round(mentions / cpu_s), "changelog_per_boundary_bytes": round((Changelog.written - before) / boundaries),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "brand_series": len(labelled) * GAUGES_PER_BRAND}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brands", type=int, nargs="+", default=[100, 1000, 10_000, 100_000])
    parser.add_argument("--mentions", type=int, default=6000)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.mentions, args.hours)))
        return
    layout = "split tables, lazy quiet brands" if hasattr(buckets, "DetectTables") else "one state per brand"
    print(f"detect stage alone (BucketBook over dict tables, {layout}); {platform.python_version()}, "
          f"{platform.machine()}; {args.mentions} mentions over {args.hours} h after one seed mention per brand, "
          f"{PARTITIONS} partitions, {BUCKET_S} s buckets, {LATENESS_S} s lateness")
    print("mentions/s: wall clock (this machine is shared: see the load average) and per CPU second of the process")
    print("changelog per boundary: the mean over the run (24 boundaries), the first one (it judges every seeded brand)"
          " and the median of the others")
    print(f"{'brands':>8} {'mentions/s':>11} {'per CPU s':>10} {'changelog/boundary mean':>24} {'first':>9} "
          f"{'median':>9} {'peak RSS':>9} {'brand series':>13} {'seed':>8}")
    for n in args.brands:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--mentions", str(args.mentions),
                              "--hours", str(args.hours)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{n:>8} {r['rate']:>11,} {r['cpu_rate']:>10,} {r['changelog_per_boundary_bytes'] / 1e6:>21.3f} MB "
              f"{r['first_boundary_bytes'] / 1e6:>6.2f} MB {r['median_boundary_bytes'] / 1e6:>6.2f} MB "
              f"{r['peak_rss_mib']:>5} MiB "
              f"{r['brand_series']:>13,} {r['seed_s']:>7.1f}s", flush=True)
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
