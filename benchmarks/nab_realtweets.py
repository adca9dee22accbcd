"""NAB realTweets benchmark for the crisis detector (scoring rule implemented here, per ../shared/data/README.md).

Runs ``offline.run_detect`` (the product path) on every Twitter_volume_*.csv in
../shared/data/nab/realTweets relative to the project root, counts each "opened" event as a detection and
scores it with NAB's standard, low-FP and low-FN profiles. One detector configuration for every series.
Prints per-file results, the detection delay per labelled window and the throughput.

    .venv/bin/python benchmarks/nab_realtweets.py [--data DIR] [--json OUT]

Exits 0 with a message when the data is absent: the product never needs it.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.detection.detector import BrandDetector, Bucket, DetectorConfig
from streams.detection.offline import run_detect

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "nab"
PROFILES = {"standard": (1.0, 1.0, 0.11), "low_fp": (1.0, 1.0, 0.22), "low_fn": (1.0, 2.0, 0.11)}


def sigmoid(x: float) -> float:
    """NAB's scaled sigmoid: +1 far left, 0 at x = 0, -1 for x > 3."""
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def window_rows(timestamps: list[str], windows: list[list[str]]) -> list[tuple[int, int]]:
    """Each window as inclusive row indices (a, b) into the file."""
    parsed = [datetime.fromisoformat(t) for t in timestamps]
    rows = []
    for start, end in windows:
        lo, hi = datetime.fromisoformat(start), datetime.fromisoformat(end)
        inside = [i for i, t in enumerate(parsed) if lo <= t <= hi]
        rows.append((inside[0], inside[-1]))
    return rows


def score_file(
    detections: list[int], windows: list[tuple[int, int]], n_rows: int, weights: tuple[float, float, float]
) -> dict:
    """Raw NAB score of one file plus its counts; detections are row indices in time order."""
    tp_w, fn_w, fp_w = weights
    probation = min(math.floor(0.15 * n_rows), 750)
    scored = sorted(i for i in detections if i >= probation)
    raw = 0.0
    hit = [None] * len(windows)
    fps = 0
    for i in scored:
        inside = next((k for k, (a, b) in enumerate(windows) if a <= i <= b), None)
        if inside is not None:
            if hit[inside] is None:
                a, b = windows[inside]
                hit[inside] = i
                raw += tp_w * sigmoid(-(b - i + 1) / (b - a + 1)) / sigmoid(-1.0)
            continue
        fps += 1
        previous = [w for w in windows if w[1] < i]
        if not previous:
            raw -= fp_w
        else:
            a_prev, b_prev = previous[-1]
            raw += fp_w * sigmoid((i - b_prev) / (b_prev - a_prev))
    misses = sum(h is None for h in hit)
    raw -= fn_w * misses
    return {"raw": raw, "hits": hit, "fp": fps, "fn": misses, "windows": len(windows)}


def normalised(total_raw: float, n_windows: int, weights: tuple[float, float, float]) -> float:
    tp_w, fn_w, _ = weights
    null, perfect = -fn_w * n_windows, tp_w * n_windows
    return 100.0 * (total_raw - null) / (perfect - null)


def detections_of(path: Path, config: DetectorConfig) -> tuple[list[int], float, list[str]]:
    """Row indices of 'opened' events from the product's run_detect, its wall time, and the timestamps."""
    with path.open(newline="") as handle:
        timestamps = [row[0] for row in list(csv.reader(handle))[1:] if row]
    out = io.StringIO()
    began = time.perf_counter()
    code = run_detect(path, out, config)
    elapsed = time.perf_counter() - began
    if code != 0:
        raise SystemExit(f"run_detect failed on {path} (exit {code})")
    row_of = {t: i for i, t in enumerate(timestamps)}
    opened = [
        row_of[json.loads(line)["at"]] for line in out.getvalue().splitlines() if json.loads(line)["event"] == "opened"
    ]
    return opened, elapsed, timestamps


def evaluate(data: Path, config: DetectorConfig, files: list[str] | None = None) -> dict:
    """Scores (all profiles), per-file details and timing for one configuration."""
    labels = json.loads((data / "windows.json").read_text())
    files = files or sorted(labels)
    per_file, totals = {}, {p: 0.0 for p in PROFILES}
    n_windows, rows_total, seconds_total = 0, 0, 0.0
    for name in files:
        path = data / name
        detections, elapsed, timestamps = detections_of(path, config)
        windows = window_rows(timestamps, labels[name])
        n_windows += len(windows)
        rows_total += len(timestamps)
        seconds_total += elapsed
        results = {p: score_file(detections, windows, len(timestamps), w) for p, w in PROFILES.items()}
        for p in PROFILES:
            totals[p] += results[p]["raw"]
        std = results["standard"]
        delays = []
        for (a, b), hit in zip(windows, std["hits"]):
            delays.append(
                None
                if hit is None
                else {
                    "rows": hit - a,
                    "minutes": (hit - a) * config.bucket_seconds / 60,
                    "fraction_of_window": round((hit - a) / (b - a + 1), 3),
                    # Windows are centred on the labelled anomaly: the delay a reader feels.
                    "rows_after_label": hit - (a + b) // 2,
                }
            )
        per_file[name] = {
            "rows": len(timestamps),
            "detections": len(detections),
            "fp": std["fp"],
            "fn": std["fn"],
            "windows": len(windows),
            "raw_standard": round(std["raw"], 3),
            "delays": delays,
            "seconds": round(elapsed, 3),
        }
    scores = {p: round(normalised(totals[p], n_windows, w), 2) for p, w in PROFILES.items()}
    return {
        "scores": scores,
        "files": per_file,
        "rows": rows_total,
        "seconds": seconds_total,
        "updates_per_s": rows_total / seconds_total if seconds_total else float("inf"),
    }


# The knobs that matter most; math.inf switches the sustained-shift test off, so the held-out folds also say
# whether that test earns its place.
LOSO_GRID = {
    "budget_memory_days": [14, 21, 28],
    "volume_only_surprise": [8.0, 10.0, 12.0],
    "shift_threshold": [40.0, 60.0, 80.0, math.inf],
}


def readable(value: float) -> float | str:
    """A knob's value for printing and JSON: 'off' for math.inf (JSON has no infinity)."""
    return value if math.isfinite(value) else "off"


def update_rate(path: Path, config: DetectorConfig) -> float:
    """BrandDetector.update calls per second on one series, parsing excluded: the stream's own cost."""
    with path.open(newline="") as handle:
        rows = [row for row in list(csv.reader(handle))[1:] if row]
    buckets = [Bucket(datetime.fromisoformat(t), round(float(v)), None, None) for t, v in rows]
    detector = BrandDetector(config, brand=path.stem)
    began = time.perf_counter()
    for bucket in buckets:
        detector.update(bucket)
    return len(buckets) / (time.perf_counter() - began)


def leave_one_series_out(data: Path, base: DetectorConfig) -> list[dict]:
    """Honesty check for the knobs in LOSO_GRID: for each series, choose them on the other series
    (standard profile) and score the choice on the held-out one."""
    labels = json.loads((data / "windows.json").read_text())
    names = sorted(labels)
    grid = [replace(base, **dict(zip(LOSO_GRID, values))) for values in itertools.product(*LOSO_GRID.values())]
    raw = {}  # (config index, file) -> {profile: raw}
    for k, config in enumerate(grid):
        for name in names:
            detections, _, timestamps = detections_of(data / name, config)
            windows = window_rows(timestamps, labels[name])
            raw[k, name] = {p: score_file(detections, windows, len(timestamps), w)["raw"] for p, w in PROFILES.items()}
    n_windows = {name: len(labels[name]) for name in names}

    def score(k: int, files: list[str], profile: str) -> float:
        return normalised(sum(raw[k, f][profile] for f in files), sum(n_windows[f] for f in files), PROFILES[profile])

    # The base configuration's own held-out score, next to the choice: where a choice loses, by how much.
    base_k = next((k for k, config in enumerate(grid) if config == base), None)
    folds = []
    for held in names:
        rest = [n for n in names if n != held]
        best = max(range(len(grid)), key=lambda k: score(k, rest, "standard"))
        chosen = {knob: readable(getattr(grid[best], knob)) for knob in LOSO_GRID}
        held_out_raw = {p: round(raw[best, held][p], 3) for p in PROFILES}
        fold = {"held_out": held, "chosen": chosen, "held_out_raw": held_out_raw,
                "margin_on_the_rest": round(score(best, rest, "standard") - score(base_k, rest, "standard"), 2)
                if base_k is not None else None,
                "base_held_out_raw": round(raw[base_k, held]["standard"], 3) if base_k is not None else None}
        folds.append(fold)
    pooled = {
        p: round(normalised(sum(f["held_out_raw"][p] for f in folds), sum(n_windows.values()), w), 2)
        for p, w in PROFILES.items()
    }
    return folds, pooled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="NAB folder (default ../shared/data/nab)")
    parser.add_argument("--json", type=Path, help="also write the full results here")
    parser.add_argument(
        "--loso", action="store_true", help="leave-one-series-out check of the knobs in LOSO_GRID (a few minutes)"
    )
    args = parser.parse_args(argv)
    if not (args.data / "windows.json").exists():
        print(f"NAB data not found at {args.data}; skipping the benchmark.")
        return 0
    config = DetectorConfig()
    print(f"setup: {args.data} | one configuration for every series: {config}")
    print("scoring: NAB rule, detections = 'opened' events, warm-up = first 15% (<= 750 rows) ignored")
    print("delays: from the window start (rows of 5 min), and in brackets from the labelled point (window centre)")
    result = evaluate(args.data, config)
    for name, info in result["files"].items():
        delays = ", ".join(
            "miss" if d is None else f"+{d['rows']} rows/{d['minutes']:.0f} min (label{d['rows_after_label']:+d})"
            for d in info["delays"]
        )
        print(
            f"{Path(name).stem:22s} rows={info['rows']} opened={info['detections']:3d} fp={info['fp']:2d} "
            f"fn={info['fn']} raw={info['raw_standard']:+.3f} {info['seconds']:.2f}s  delays: {delays}"
        )
    s = result["scores"]
    print(f"NAB scores: standard {s['standard']:.1f}  low-FP {s['low_fp']:.1f}  low-FN {s['low_fn']:.1f}")
    print(
        f"throughput: {result['rows']} buckets in {result['seconds']:.2f}s = {result['updates_per_s']:,.0f} updates/s "
        f"(run_detect end to end, CSV parsing included)"
    )
    first = args.data / min(json.loads((args.data / "windows.json").read_text()))
    print(f"detector alone: {update_rate(first, config):,.0f} BrandDetector.update calls/s ({first.stem})")
    if args.loso:
        folds, pooled = leave_one_series_out(args.data, config)
        for fold in folds:
            chosen = " ".join(f"{knob}={value}" for knob, value in fold["chosen"].items())
            print(f"LOSO held out {Path(fold['held_out']).stem:22s} chose {chosen} -> raw {fold['held_out_raw']}")
            if fold["base_held_out_raw"] is not None:
                print(f"    the default configuration: {fold['margin_on_the_rest']:.2f} points lower on the other four "
                      f"series (standard), raw {fold['base_held_out_raw']:+.3f} on this one")
        print(
            f"LOSO pooled held-out scores: standard {pooled['standard']:.1f}  low-FP {pooled['low_fp']:.1f}  "
            f"low-FN {pooled['low_fn']:.1f}"
        )
        grid = {knob: [readable(v) for v in values] for knob, values in LOSO_GRID.items()}
        result["loso"] = {"folds": folds, "pooled": pooled, "grid": grid}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
