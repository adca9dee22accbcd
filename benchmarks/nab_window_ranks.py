"""How separable is each labelled NAB window from the unlabelled events of its own series?

Runs the product detector (default configuration) over each realTweets series and records, per bucket, the
evidence its volume path weighs: the best window surprise (-log10 p) and the burst against the brand's
routine budget (1.0 = as large as its largest burst of the last ``budget_memory_days``). Buckets with a
surprise of at least 4 form events (merged across gaps of up to three hours). For every labelled window it
prints its strongest event and how many unlabelled events of the same series (after NAB's warm-up) are
stronger on each measure: a window that several unlabelled events outrank cannot be caught by raising the
sensitivity without paying for those events as false positives.

    .venv/bin/python benchmarks/nab_window_ranks.py [--data DIR]

A diagnostic for work on the detector; exits 0 with a message when the data is absent.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.nab_realtweets import DEFAULT_DATA, window_rows  # noqa: E402
from streams.detection.detector import BrandDetector, Bucket, DetectorConfig  # noqa: E402

EVENT_SURPRISE = 4.0  # a bucket this surprising belongs to an event
MERGE_GAP = 36  # buckets (three hours): closer events are one


class EvidenceRecorder(BrandDetector):
    """The product detector, unchanged, keeping each bucket's volume evidence for this report."""

    def __init__(self, config: DetectorConfig, brand: str) -> None:
        super().__init__(config, brand=brand)
        self.trace: list[tuple[float, float]] = []  # per bucket after warm-up: (surprise, burst / budget)

    def _evidence(self, bucket: Bucket, spread):
        evidence = super()._evidence(bucket, spread)
        budgets = self._volume_thresholds()
        ratio = max(
            ((x - mu) / self._size(w)) / max(budgets[slot], 1e-9) for slot, (w, x, mu) in enumerate(spread.sums)
        )
        self.trace.append((evidence.volume, ratio))
        return evidence


def events(trace: list[tuple[float, float]], first: int) -> list[tuple[int, int, float, float]]:
    """(first row, last row, best surprise, best burst / budget) of each event from row ``first`` on."""
    found: list[list] = []
    for row in range(first, len(trace)):
        surprise, ratio = trace[row]
        if surprise < EVENT_SURPRISE:
            continue
        if found and row - found[-1][1] <= MERGE_GAP:
            event = found[-1]
            event[1], event[2], event[3] = row, max(event[2], surprise), max(event[3], ratio)
        else:
            found.append([row, row, surprise, ratio])
    return [tuple(e) for e in found]


def overlaps(event: tuple[int, int, float, float], window: tuple[int, int]) -> bool:
    return event[0] <= window[1] and event[1] >= window[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="NAB folder (default ../shared/data/nab)")
    args = parser.parse_args(argv)
    if not (args.data / "windows.json").exists():
        print(f"NAB data not found at {args.data}; skipping.")
        return 0
    config = DetectorConfig()
    labels = json.loads((args.data / "windows.json").read_text())
    print(f"setup: {args.data} | detector defaults | events: surprise >= {EVENT_SURPRISE}, merged within "
          f"{MERGE_GAP} buckets | 'outranked by': unlabelled events of the same series after the warm-up")
    for name in sorted(labels):
        with (args.data / name).open(newline="") as handle:
            rows = [row for row in list(csv.reader(handle))[1:] if row]
        detector = EvidenceRecorder(config, brand=name)
        trace: list[tuple[float, float]] = []
        for timestamp, value in rows:
            detector.trace.clear()
            detector.update(Bucket(datetime.fromisoformat(timestamp), round(float(value)), None, None))
            trace.append(detector.trace[-1] if detector.trace else (0.0, 0.0))
        windows = window_rows([row[0] for row in rows], labels[name])
        probation = min(math.floor(0.15 * len(rows)), 750)
        found = events(trace, probation)
        unlabelled = [e for e in found if not any(overlaps(e, w) for w in windows)]
        for k, (a, b) in enumerate(windows):
            inside = [e for e in found if overlaps(e, (a, b))]
            best_surprise = max((e[2] for e in inside), default=0.0)
            best_ratio = max((e[3] for e in inside), default=0.0)
            above_surprise = sum(e[2] > best_surprise for e in unlabelled)
            above_ratio = sum(e[3] > best_ratio for e in unlabelled)
            above_both = sum(e[2] > best_surprise and e[3] > best_ratio for e in unlabelled)
            print(
                f"{Path(name).stem:22s} window {k} (label {rows[(a + b) // 2][0][:16]}): best surprise "
                f"{best_surprise:5.1f}, burst/budget {best_ratio:4.2f}; outranked by {above_surprise:2d} on "
                f"surprise, {above_ratio:2d} on burst/budget, {above_both:2d} on both "
                f"(of {len(unlabelled)} unlabelled events)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
