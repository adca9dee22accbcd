"""How many buckets the sample's crisis takes to open, with the real default model, at many start times.

Generates the bundled sample stream (``streams.tools.sample``) for each start time, labels every mention with the
default sentiment model, and runs ``ascolta detect``'s code (``offline.run_detect``) over the enriched JSON
lines: the same detector and the same bucketing the stream uses. Where the crisis falls against the
5-minute buckets and the brands' daily rhythm changes what the detector sees, so one start proves little.
Prints, per start, the bucket the crisis opened in (1 = its first bucket) and every other brand's opened
events; then the worst case. Asserts nothing.

    ASCOLTA_DATA_DIR=.ascolta .venv/bin/python benchmarks/sample_crisis_delay.py [--hours 12]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.detection.detector import DetectorConfig  # noqa: E402
from streams.detection.offline import run_detect  # noqa: E402
from streams.tools.sample import CRISIS_BRAND, bursts, generate  # noqa: E402
from streams.sentiment.classify import load_classifier  # noqa: E402
from streams.settings import DEFAULT_DATA_DIR  # noqa: E402

DAY = datetime(2026, 12, 1, tzinfo=timezone.utc)
# Two minutes apart over ten minutes (bucket phase), then every three hours (time of day).
STARTS = [DAY + timedelta(hours=6, minutes=50 + 2 * k) for k in range(6)] + [
    DAY + timedelta(hours=h, minutes=10) for h in range(0, 24, 3)
]


def opened_events(start: datetime, hours: float, classifier, labels: dict[str, str], folder: Path) -> list[dict]:
    """The detector's 'opened' events over the sample from ``start``, every mention labelled by the model."""
    records = generate(start, hours=hours)
    new = sorted({r["text"] for r in records} - labels.keys())
    for text, sentiment in zip(new, classifier.classify(new)):
        labels[text] = sentiment.label
    path = folder / "enriched.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps({**record, "sentiment": {"label": labels[record["text"]]}}) + "\n")
    out = io.StringIO()
    if run_detect(path, out, DetectorConfig()) != 0:
        raise SystemExit("run_detect failed")
    return [e for e in map(json.loads, out.getvalue().splitlines()) if e["event"] == "opened"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=12.0, help="history per run, as in the restart test")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ASCOLTA_DATA_DIR", DEFAULT_DATA_DIR)))
    args = parser.parse_args(argv)
    classifier = load_classifier("default", data_dir=args.data_dir)
    print(f"setup: sample stream, {args.hours:g} h per run, default model from {args.data_dir}, "
          f"detector defaults, {len(STARTS)} start times (UTC)")
    labels: dict[str, str] = {}
    opening_buckets: list[int | None] = []
    with tempfile.TemporaryDirectory() as folder:
        for start in STARTS:
            crisis = next(b for b in bursts(start, hours=args.hours) if b.kind == "crisis")
            opened = opened_events(start, args.hours, classifier, labels, Path(folder))
            first = next((e for e in opened if e["brand"] == CRISIS_BRAND and e["kind"] == "crisis"), None)
            if first is None:
                bucket_no = None
            else:
                at = datetime.fromisoformat(first["at"].replace("Z", "+00:00"))
                bucket_no = int((at - crisis.start).total_seconds() // 300) + 1
            opening_buckets.append(bucket_no)
            others = ", ".join(
                f"{e['brand']} {e['kind']} at {e['at'][11:16]}" for e in opened if e["brand"] != CRISIS_BRAND
            )
            print(f"start {start:%H:%M}: crisis at {crisis.start:%H:%M} opened in bucket {bucket_no or 'never'}"
                  f"; other brands: {others or 'none'}", flush=True)
    worst = "never" if None in opening_buckets else max(opening_buckets)
    print(f"worst case: bucket {worst} of the crisis")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
