"""Offline detection over a file: the same BrandDetector the stream uses, fed from a CSV or JSON lines.

Two inputs are understood:

* a volume CSV with header ``timestamp,value`` (one row = one bucket of one brand, named after the file
  stem), e.g. the NAB realTweets series; sentiment is unknown there, so only the volume path decides;
* mention JSON lines (raw or enriched): bucketed by ``created_at`` into ``config.bucket_seconds`` buckets per
  brand; negative/positive from ``sentiment.label`` when present, reach from ``reach`` or
  ``author.followers``.

Output is one JSON object per alert event, written as soon as the bucket that triggers it is complete, so
the output for a prefix of the input is a prefix of the output (for JSON lines: prefixes that end on a
bucket boundary; the last, possibly partial, bucket is flushed at end of file).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from streams.detector import BrandDetector, Bucket, Decision, DetectorConfig


class InputError(ValueError):
    """The input file cannot be read as a volume CSV or mention JSON lines."""


def run_detect(path: Path, out: TextIO, config: DetectorConfig) -> int:
    """Detect over FILE and write alert events as JSON lines to ``out``; returns a process exit code."""
    path = Path(path)
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:  # -sig: spreadsheets add a BOM
            first = handle.readline()
            handle.seek(0)
            if first.strip().lower().replace(" ", "").startswith("timestamp,value"):
                _detect_csv(handle, path.stem, out, config)
            else:
                _detect_jsonl(handle, out, config)
    except BrokenPipeError:
        raise  # the reader of ``out`` went away (| head): not an input problem, the CLI decides
    except (OSError, UnicodeDecodeError, InputError) as exc:
        print(f"ascolta detect: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    return 0


def decision_record(decision: Decision, brand: str, bucket_seconds: int, at: str, started_at: str) -> dict:
    """The JSON object written per event (the alert's core fields, without the explanation)."""
    return {
        "event": decision.event,
        "at": at,
        "started_at": started_at,
        "severity": decision.severity,
        "kind": decision.kind,
        "incident_id": decision.incident_id,
        "seq": decision.seq,
        "brand": brand,
        "bucket_seconds": bucket_seconds,
        "observed": decision.observed,
        "expected": decision.expected,
        "volume_ratio": decision.volume_ratio,
        "negative_share": decision.negative_share,
        "baseline_negative_share": decision.baseline_negative_share,
        "reach": decision.reach,
        "baseline_reach": decision.baseline_reach,
        "confidence": decision.confidence,
    }


# ----------------------------------------------------------------------------------------------- CSV


def _parse_csv_time(text: str, line: int) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"line {line}: timestamp {text!r} is not ISO 8601") from None


def _detect_csv(handle: TextIO, brand: str, out: TextIO, config: DetectorConfig) -> None:
    """One row per bucket; 'at' is echoed exactly as written in the input so results join back to it."""
    detector = BrandDetector(config, brand=brand)
    written: dict[datetime, str] = {}  # bucket start -> its text in the input, for echoing it back
    reader = csv.reader(handle)
    next(reader, None)
    for line, row in enumerate(reader, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise InputError(f"line {line}: expected 'timestamp,value', got {row!r}")
        start = _parse_csv_time(row[0], line)
        try:
            value = float(row[1])
        except ValueError:
            raise InputError(f"line {line}: value {row[1]!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise InputError(f"line {line}: value {row[1]!r} must be a count >= 0")
        written[start] = row[0]
        for decision in detector.update(Bucket(start, round(value), None, None, 0.0)):
            _write(out, decision, brand, config, written)
        if len(written) > 10_000:  # only recent buckets can still be cited by an event
            for key in list(written)[:5_000]:
                del written[key]


def _write(out: TextIO, decision: Decision, brand: str, config: DetectorConfig, written: dict) -> None:
    at = written.get(decision.at) or decision.at.isoformat()
    started = written.get(decision.started_at) or decision.started_at.isoformat()
    out.write(json.dumps(decision_record(decision, brand, config.bucket_seconds, at, started)) + "\n")


# ---------------------------------------------------------------------------------------- JSON lines


@dataclass
class _Accumulator:
    count: int = 0
    negative: int = 0
    positive: int = 0
    labelled: int = 0
    reach: float = 0.0

    def bucket(self, start: datetime) -> Bucket:
        if self.labelled == 0:
            return Bucket(start, self.count, None, None, self.reach)
        return Bucket(start, self.count, self.negative, self.positive, self.reach)


@dataclass
class _Bucketer:
    """Per-brand buckets closed by a global watermark: a bucket is judged once a later mention arrives."""

    config: DetectorConfig
    out: TextIO
    detectors: dict[str, BrandDetector] = field(default_factory=dict)
    open: dict[str, _Accumulator] = field(default_factory=dict)
    index: int | None = None

    def add(self, brand: str, created_at: datetime, label: str | None, reach: float) -> None:
        index = math.floor(created_at.timestamp() / self.config.bucket_seconds)
        if self.index is None:
            self.index = index
        if index > self.index:
            self.flush()
            self.index = index
        # A late mention counts in the bucket still open: the judged past is never rewritten.
        acc = self.open.setdefault(brand, _Accumulator())
        acc.count += 1
        acc.reach += reach
        if label is not None:
            acc.labelled += 1
            acc.negative += label == "negative"
            acc.positive += label == "positive"
        if brand not in self.detectors:
            self.detectors[brand] = BrandDetector(self.config, brand=brand)

    def flush(self) -> None:
        if self.index is None:
            return
        start = datetime.fromtimestamp(self.index * self.config.bucket_seconds, tz=UTC)
        for brand, detector in sorted(self.detectors.items()):
            acc = self.open.pop(brand, _Accumulator())
            for decision in detector.update(acc.bucket(start)):
                self.out.write(
                    json.dumps(
                        decision_record(
                            decision,
                            brand,
                            self.config.bucket_seconds,
                            _rfc3339(decision.at),
                            _rfc3339(decision.started_at),
                        )
                    )
                    + "\n"
                )


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _mention_fields(record: object, line: int) -> tuple[str, datetime, str | None, float]:
    """(brand, created_at, sentiment label or None, reach) of one mention line."""
    if not isinstance(record, dict):
        raise InputError(f"line {line}: expected a JSON object")
    brand, created = record.get("brand"), record.get("created_at")
    if not isinstance(brand, str) or not brand:
        raise InputError(f"line {line}: 'brand' must be a non-empty string")
    if not isinstance(created, str):
        raise InputError(f"line {line}: 'created_at' must be an RFC 3339 string")
    try:
        created_at = datetime.fromisoformat(created.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError(f"line {line}: created_at {created!r} is not RFC 3339") from None
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    sentiment = record.get("sentiment")
    label = sentiment.get("label") if isinstance(sentiment, dict) else None
    label = label if label in {"negative", "neutral", "positive"} else None
    reach = record.get("reach")
    if not isinstance(reach, (int, float)) or isinstance(reach, bool):
        author = record.get("author")
        reach = author.get("followers") if isinstance(author, dict) else None
        reach = reach if isinstance(reach, (int, float)) and not isinstance(reach, bool) else 0
    return brand, created_at, label, max(0.0, float(reach))


def _detect_jsonl(lines: Iterable[str], out: TextIO, config: DetectorConfig) -> None:
    bucketer = _Bucketer(config, out)
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"line {line_no}: not JSON ({exc.msg}); expected a volume CSV 'timestamp,value' or mention JSON lines"
            ) from None
        bucketer.add(*_mention_fields(record, line_no))
    bucketer.flush()
