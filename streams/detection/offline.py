"""Offline detection over a file (``ascolta detect``): the stream's detector and bucketing, fed from a file.

Two inputs are understood:

* a volume CSV with header ``timestamp,value`` (one row = one bucket of one brand, named after the file
  stem), e.g. the NAB realTweets series; sentiment is unknown there, so only the volume path decides;
* mention JSON lines (raw or enriched): counted and closed by the stream's own
  :class:`~streams.detection.buckets.BucketBook` (one partition, the line number as offset, no allowed
  lateness: a bucket closes when a later one starts, and a mention for a closed bucket is late);
  negative/positive from ``sentiment.label`` when present, reach from ``reach`` or ``author.followers``.

Output is one JSON object per alert event, written as soon as the bucket that triggers it is complete, so
the output for a prefix of the input is a prefix of the output (for JSON lines: prefixes that end on a
bucket boundary; the last, possibly partial, bucket is flushed at end of file).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from .alert import Alert, decision_record
from .buckets import BucketBook
from .detector import BrandDetector, Bucket, Decision, DetectorConfig


class InputError(ValueError):
    """The input file cannot be read as a volume CSV or mention JSON lines."""


def run_detect(path: Path, out: TextIO, config: DetectorConfig, horizon_s: int | None = None) -> int:
    """Detect over FILE and write alert events as JSON lines to ``out``; returns a process exit code.
    ``horizon_s``: mention lines only, as the stream's brand state horizon (None keeps every brand)."""
    path = Path(path)
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:  # -sig: spreadsheets add a BOM
            first = handle.readline()
            handle.seek(0)
            if first.strip().lower().replace(" ", "").startswith("timestamp,value"):
                _detect_csv(handle, path.stem, out, config)
            else:
                _detect_jsonl(handle, out, config, horizon_s)
    except BrokenPipeError:
        raise  # the reader of ``out`` went away (| head): not an input problem, the CLI decides
    except (OSError, UnicodeDecodeError, InputError) as exc:
        print(f"ascolta detect: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    return 0


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


def _mention(record: object, line: int) -> tuple[dict, float]:
    """One mention line as the bucket digest reads it (malformed optional fields made harmless), and its
    event time in epoch seconds."""
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
    mention = {**record, "id": str(record.get("id", f"line-{line}")), "reach": _reach(record)}
    if not isinstance(mention.get("text"), str):
        mention["text"] = ""
    sentiment = record.get("sentiment")
    label = sentiment.get("label") if isinstance(sentiment, dict) else None
    if label in {"negative", "neutral", "positive"}:
        score = sentiment.get("score")
        valid = isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score)
        mention["sentiment"] = {"label": label, "score": float(score) if valid else 0.0}
    else:
        mention.pop("sentiment", None)
    return mention, created_at.timestamp()


def _reach(record: dict) -> float:
    reach = record.get("reach")
    if not isinstance(reach, (int, float)) or isinstance(reach, bool):
        author = record.get("author")
        reach = author.get("followers") if isinstance(author, dict) else None
        reach = reach if isinstance(reach, (int, float)) and not isinstance(reach, bool) else 0
    return max(0.0, float(reach))


def detect_mentions(mentions: Iterable[tuple[dict, float]], config: DetectorConfig,
                    horizon_s: int | None = None) -> Iterator[Alert]:
    """Alerts for ``(mention, event time)`` pairs in arrival order, as the stream would raise them on one
    partition with no allowed lateness (an extreme burst opening before its bucket closes, as there); the last
    bucket is judged at the end."""
    book = BucketBook(config, 0, horizon_s=horizon_s)
    step = config.bucket_seconds
    closed_until: int | None = None
    for offset, (mention, event_time) in enumerate(mentions):
        book.count(mention, event_time, 0, offset)
        watermark, _ = book.due(mention["brand"], event_time, 0)
        if closed_until is None:
            closed_until = book.bucket_start(event_time)
        yield from _close_all(book, closed_until, book.bucket_start(watermark))
        closed_until = max(closed_until, book.bucket_start(watermark))
        opening = book.open_early(mention["brand"], event_time)  # an extreme burst need not wait
        yield from opening.alerts
        opening.commit()
    if closed_until is not None:
        yield from _close_all(book, closed_until, book.bucket_start(book.clock.watermarks[0]) + step)


def _close_all(book: BucketBook, start: int, until: int) -> Iterator[Alert]:
    """Judge every brand's buckets before ``until``, bucket by bucket, brands in key order (only the bucket
    ends where a brand has something to judge: a quiet brand's empty buckets are caught up later)."""
    end = book.next_boundary(0, start)
    while end is not None and end <= until:
        for brand in sorted(book.due_before(0, end)):
            closing = book.close_until(brand, end)
            for closed in closing.buckets:
                yield from closed.alerts
            closing.commit()
        end = book.next_boundary(0, end)


def _parsed_lines(lines: Iterable[str]) -> Iterator[tuple[dict, float]]:
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"line {line_no}: not JSON ({exc.msg}); expected a volume CSV 'timestamp,value' or mention JSON lines"
            ) from None
        yield _mention(record, line_no)


def _detect_jsonl(lines: Iterable[str], out: TextIO, config: DetectorConfig, horizon_s: int | None) -> None:
    for alert in detect_mentions(_parsed_lines(lines), config, horizon_s):
        out.write(json.dumps(decision_record(alert.decision, alert.brand, config.bucket_seconds)) + "\n")
