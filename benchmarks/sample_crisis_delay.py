"""How many buckets the sample's crisis takes to open, with the real default model, at many start times.

Generates the bundled sample stream (``streams.tools.sample``) for each start time, labels every mention with the
default sentiment model, and runs ``ascolta detect``'s code (``offline.run_detect``) over the enriched JSON
lines: the same detector and the same bucketing the stream uses. Where the crisis falls against the
5-minute buckets and the brands' daily rhythm changes what the detector sees, so one start proves little.
Prints, per start, the bucket the crisis opened in (1 = its first bucket), the bucket the viral launch's
opportunity opened in, and every other opened event; then the worst case of each. Asserts nothing.

    ASCOLTA_DATA_DIR=.ascolta .venv/bin/python benchmarks/sample_crisis_delay.py [--hours 12] [--labels FILE]

``--labels FILE`` keeps the model's labels (text -> label, JSON) between runs: labelling is most of the
run's time (4-5 minutes on two cores), and the detector alone takes seconds. The file is read when it
exists and written back with any texts it lacked; delete it when the model changes.
"""

from __future__ import annotations

import argparse
import functools
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
from streams.tools.sample import CRISIS_BRAND, VIRAL_BRAND, bursts, generate  # noqa: E402
from streams.sentiment.classify import load_classifier  # noqa: E402
from streams.settings import DEFAULT_DATA_DIR  # noqa: E402

DAY = datetime(2026, 12, 1, tzinfo=timezone.utc)
# Two minutes apart over ten minutes (bucket phase), then every three hours (time of day).
STARTS = [DAY + timedelta(hours=6, minutes=50 + 2 * k) for k in range(6)] + [
    DAY + timedelta(hours=h, minutes=10) for h in range(0, 24, 3)
]


def opened_events(start: datetime, hours: float, classifier, labels: dict[str, str], folder: Path) -> list[dict]:
    """The detector's 'opened' events over the sample from ``start``, every mention labelled by the model
    (``classifier`` loaded on first need: None while ``labels`` has every text)."""
    records = generate(start, hours=hours)
    new = sorted({r["text"] for r in records} - labels.keys())
    if new:
        for text, sentiment in zip(new, classifier().classify(new)):
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
    parser.add_argument("--labels", type=Path, default=None,
                        help="JSON cache of the model's labels (text -> label), read if present, written back")
    args = parser.parse_args(argv)
    classifier = functools.cache(lambda: load_classifier("default", data_dir=args.data_dir))
    labels: dict[str, str] = {}
    if args.labels is not None and args.labels.exists():
        labels = json.loads(args.labels.read_text(encoding="utf-8"))
    cached = len(labels)
    print(f"setup: sample stream, {args.hours:g} h per run, default model from {args.data_dir}"
          f"{f' (labels cached in {args.labels})' if args.labels else ''}, detector defaults, "
          f"{len(STARTS)} start times (UTC)")
    crisis_buckets: list[int | None] = []
    launch_buckets: list[int | None] = []
    with tempfile.TemporaryDirectory() as folder:
        for start in STARTS:
            windows = {b.kind: b for b in bursts(start, hours=args.hours)}
            opened = opened_events(start, args.hours, classifier, labels, Path(folder))
            crisis_no = _opening_bucket(opened, CRISIS_BRAND, "crisis", windows["crisis"])
            launch_no = _opening_bucket(opened, VIRAL_BRAND, "opportunity", windows["opportunity"])
            crisis_buckets.append(crisis_no)
            launch_buckets.append(launch_no)
            others = ", ".join(
                f"{e['brand']} {e['kind']} at {e['at'][11:16]}" for e in opened
                if (e["brand"], e["kind"]) not in {(CRISIS_BRAND, "crisis"), (VIRAL_BRAND, "opportunity")}
            )
            print(f"start {start:%H:%M}: crisis at {windows['crisis'].start:%H:%M} opened in bucket "
                  f"{crisis_no or 'never'}; launch at {windows['opportunity'].start:%H:%M} opened in bucket "
                  f"{launch_no or 'never'}; other events: {others or 'none'}", flush=True)
    if args.labels is not None and len(labels) > cached:
        args.labels.write_text(json.dumps(labels, ensure_ascii=False), encoding="utf-8")
    for name, buckets in (("crisis", crisis_buckets), ("launch", launch_buckets)):
        opened_at = [b for b in buckets if b is not None]
        worst = "never" if len(opened_at) < len(buckets) else max(opened_at)
        print(f"{name}: opened at {len(opened_at)} of {len(buckets)} starts; worst case: bucket {worst}")
    return 0


def _opening_bucket(opened: list[dict], brand: str, kind: str, burst) -> int | None:
    """The bucket of ``burst`` (1 = its first) in which ``brand``'s first ``kind`` opened during it; None: none did."""
    for event in opened:
        at = datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
        if event["brand"] == brand and event["kind"] == kind and burst.start <= at <= burst.end:
            return int((at - burst.start).total_seconds() // 300) + 1
    return None


if __name__ == "__main__":
    raise SystemExit(main())
