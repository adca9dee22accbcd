"""Event time from a sharp burst's start to its ``opened`` event, offline (``detection.offline.detect_mentions``).

One brand with 48 hours of ordinary traffic (about 12 mentions per 5 minutes with a daily rhythm, a quarter of
them negative), then a negative burst (80% negative) of RATE mentions per second for 120 s, starting at a
bucket boundary (phase 0) or 250 s into a 5-minute bucket; ordinary traffic goes on for an hour after. The
detector runs as ``ascolta detect`` runs it (one partition, no allowed lateness: a bucket closes when a later
mention arrives), so the bucket floor shows without the stream's 60 s lateness or any backlog. Prints, per
burst, seconds of event time from the burst's first mention to the mention whose processing raised
``opened``; and the number of ``opened`` events and incident ids.

``--nab``: the false alarms partial buckets could add, on NAB realTweets (../shared/data/nab, as
``benchmarks/nab_realtweets.py`` reads it). Each 5-minute count is judged by ``BrandDetector.early`` at 30, 60, 120,
180, 240 and 300 s before it is closed, the count so far drawn from it (uniform arrivals, or clumped: the elapsed
share of the bucket drawn from a Beta(2f, 2(1 - f))); every ``opened``, early or at a close, is a detection, scored
by NAB's rule as that benchmark scores the closes alone. Asserts nothing.

    .venv/bin/python benchmarks/early_open.py [--rates 150 600] [--phases 0 250] [--nab]
"""
from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import csv  # noqa: E402
import json  # noqa: E402
from datetime import datetime  # noqa: E402

import numpy as np  # noqa: E402
from nab_realtweets import DEFAULT_DATA, PROFILES, normalised, score_file, window_rows  # noqa: E402

from streams.detection.detector import BrandDetector, Bucket, DetectorConfig  # noqa: E402
from streams.detection.offline import detect_mentions  # noqa: E402

START = 1_764_547_200  # 2025-12-01 00:00 UTC, a bucket boundary
HISTORY_S = 48 * 3600
BURST_S = 120


def mentions(rate: float, phase: int, seed: int = 1) -> tuple[list[tuple[dict, float]], float]:
    """The stream in event-time order, and the burst's start."""
    rng = random.Random(seed)
    burst_start = START + HISTORY_S + phase
    out: list[tuple[float, dict]] = []
    t, n = float(START), 0
    end = burst_start + 3600
    while t < end:  # ordinary: Poisson arrivals, 12 per 5 minutes on average, busier in the afternoon
        hour = (t % 86_400) / 3600
        per_s = 12 / 300 * (1 + 0.6 * math.cos(2 * math.pi * (hour - 17) / 24))
        t += rng.expovariate(per_s)
        label = rng.choices(("negative", "neutral", "positive"), (0.25, 0.45, 0.30))[0]
        out.append((t, {"id": f"o{n}", "brand": "Caffè Aurora", "text": f"ordinary {n}",
                         "sentiment": {"label": label, "score": 0.0}}))
        n += 1
    for k in range(int(rate * BURST_S)):
        label = "negative" if rng.random() < 0.8 else "neutral"
        out.append((burst_start + k / rate, {"id": f"b{k}", "brand": "Caffè Aurora", "text": f"recall {k}",
                                             "sentiment": {"label": label, "score": 0.0}}))
    out.sort(key=lambda pair: pair[0])
    return [(m, at) for at, m in out if at < end], burst_start


def measure(rate: float, phase: int) -> tuple[float | None, int, int]:
    stream, burst_start = mentions(rate, phase)
    now = [0.0]

    def clocked():
        for m, at in stream:
            now[0] = at
            yield m, at

    first, opened, ids = None, 0, set()
    for alert in detect_mentions(clocked(), DetectorConfig()):
        if alert.decision.event == "opened" and alert.decision.at.timestamp() >= burst_start - 300:
            opened += 1
            ids.add(alert.decision.incident_id)
            first = now[0] - burst_start if first is None else first
    return first, opened, len(ids)


ELAPSED = (30, 60, 120, 180, 240, 300)


def nab_detections(counts: list[int], starts: list[datetime], config: DetectorConfig, clumped: bool | None,
                   rng: np.random.Generator) -> tuple[list[int], int]:
    """Rows of every ``opened`` (early ones at their bucket), and how many opened early; ``clumped`` None: closes
    only, as ``nab_realtweets.py`` runs the detector."""
    detector, rows, early = BrandDetector(config, brand="nab"), [], 0
    for row, (count, start) in enumerate(zip(counts, starts)):
        for elapsed in ELAPSED if clumped is not None else ():
            share = elapsed / config.bucket_seconds
            if clumped and share < 1:
                share = rng.beta(2 * share, 2 * (1 - share))
            partial = Bucket(start, int(rng.binomial(count, share)), None, None, 0.0)
            if detector.early(partial, elapsed) is not None:
                rows.append(row)
                early += 1
        rows += [row for d in detector.update(Bucket(start, count, None, None, 0.0)) if d.event == "opened"]
    return rows, early


def nab(data: Path, config: DetectorConfig) -> None:
    labels = json.loads((data / "windows.json").read_text())
    print(f"NAB realTweets ({data}): early judgements at {ELAPSED} s of every bucket")
    for clumped in (None, False, True):
        rng = np.random.default_rng(18)
        totals, n_windows, opened, early = {p: 0.0 for p in PROFILES}, 0, 0, 0
        for name in sorted(labels):
            with (data / name).open(newline="") as handle:
                rows = [row for row in list(csv.reader(handle))[1:] if row]
            timestamps = [row[0] for row in rows]
            counts, starts = [round(float(r[1])) for r in rows], [datetime.fromisoformat(t) for t in timestamps]
            detections, early_here = nab_detections(counts, starts, config, clumped, rng)
            windows = window_rows(timestamps, labels[name])
            n_windows += len(windows)
            opened, early = opened + len(detections), early + early_here
            for profile, weights in PROFILES.items():
                totals[profile] += score_file(detections, windows, len(timestamps), weights)["raw"]
        scores = "  ".join(f"{p} {normalised(totals[p], n_windows, w):.2f}" for p, w in PROFILES.items())
        what = "closes only" if clumped is None else "clumped arrivals" if clumped else "uniform arrivals"
        print(f"  {what:<17} opened {opened:>3} (early {early:>2})  NAB {scores}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[150.0, 600.0])
    parser.add_argument("--phases", type=int, nargs="+", default=[0, 250])
    parser.add_argument("--nab", action="store_true", help="also the partial buckets' false alarms on NAB")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    if args.nab:
        nab(args.data, DetectorConfig())
    print("offline, 5-minute buckets, no lateness; 48 h history of one brand (12 mentions / 5 min), burst 120 s")
    print(f"{'rate/s':>7} {'phase s':>7} {'start -> opened (s)':>20} {'opened events':>14} {'incident ids':>13}")
    for rate in args.rates:
        for phase in args.phases:
            delay, opened, ids = measure(rate, phase)
            shown = "none" if delay is None else f"{delay:.1f}"
            print(f"{rate:>7.0f} {phase:>7} {shown:>20} {opened:>14} {ids:>13}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
