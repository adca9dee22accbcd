"""Replay recorded mentions (JSON lines) into a Kafka topic, optionally keeping their original rhythm.

Why: the demo, load tests and incident rehearsals need yesterday's stream played back today, faster than
real time but with the same bursts. The replayer is deliberately dumb about content: a line that is not
valid JSON goes out as its raw bytes, because rejecting bad input is the pipeline's job (dead letters),
and rehearsing that path is part of the point.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ..contracts import format_rfc3339, parse_rfc3339

if TYPE_CHECKING:
    from ..settings import Settings

logger = logging.getLogger(__name__)

Source = str | Path | Iterable[dict | bytes | str]  # a JSON-lines file, or records / raw lines
PROGRESS_EVERY_RECORDS = 1000
PROGRESS_EVERY_SECONDS = 5.0
# Wait for delivery reports in chunks: errors surface early without a round trip per message.
DELIVERY_CHUNK = 500


@dataclass(frozen=True)
class Message:
    """One Kafka message to send; ``created_at`` is None for lines that carry no usable timestamp."""

    value: bytes
    key: bytes | None
    created_at: datetime | None


def _items(source: Source) -> Iterator[dict | bytes | str]:
    if isinstance(source, (str, Path)):
        with open(source, "rb") as lines:
            for line in lines:
                line = line.rstrip(b"\r\n")
                if line.strip():
                    yield line
    else:
        yield from source


def _created_at(record: Any) -> datetime | None:
    if not isinstance(record, dict) or not isinstance(record.get("created_at"), str):
        return None
    try:
        return parse_rfc3339(record["created_at"])
    except ValueError:
        return None


def _decode(item: dict | bytes | str) -> tuple[Any, bytes]:
    """(parsed JSON or None, original bytes)."""
    if isinstance(item, dict):
        return item, orjson.dumps(item)
    raw = item.encode("utf-8", "surrogateescape") if isinstance(item, str) else bytes(item)
    try:
        return orjson.loads(raw), raw
    except orjson.JSONDecodeError:
        return None, raw


def _latest(source: Source) -> datetime | None:
    """The stream's last created_at: rebasing needs it before the first message goes out."""
    latest = None
    for item in _items(source):
        moment = _created_at(_decode(item)[0])
        if moment is not None and (latest is None or moment > latest):
            latest = moment
    return latest


def messages(source: Source, *, key_field: str = "brand", shift: timedelta = timedelta(0)) -> Iterator[Message]:
    """Kafka messages for ``source``. Records keep their exact bytes unless ``shift`` moves created_at;
    undecodable lines and non-objects are passed through untouched, without a key."""
    for item in _items(source):
        record, raw = _decode(item)
        moment = _created_at(record)
        if moment is not None and shift:
            moment = moment + shift
            record = {**record, "created_at": format_rfc3339(moment)}
            raw = orjson.dumps(record)
        key = record.get(key_field) if isinstance(record, dict) else None
        key_bytes = str(key).encode("utf-8") if key is not None else None
        yield Message(raw, key_bytes, moment)


async def _paced(stream: Iterable[Message], speed: float | None) -> AsyncIterator[Message]:
    """Yield messages no earlier than their original offset from the first one, divided by ``speed``.
    Late or out-of-order messages go at once; speed None or 0 means no waiting at all."""
    loop = asyncio.get_running_loop()
    origin: tuple[float, datetime] | None = None
    for message in stream:
        if speed and message.created_at is not None:
            if origin is None:
                origin = (loop.time(), message.created_at)
            due = origin[0] + (message.created_at - origin[1]).total_seconds() / speed
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        yield message


class _Progress:
    """Periodic progress lines on stderr (via logging): count, rate and the stream's own clock."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = self.last_report = time.monotonic()
        self.last_count = 0
        self.simulated: datetime | None = None

    def tick(self, count: int, moment: datetime | None) -> None:
        if moment is not None:
            self.simulated = moment
        now = time.monotonic()
        if self.enabled and (count - self.last_count >= PROGRESS_EVERY_RECORDS
                             or now - self.last_report >= PROGRESS_EVERY_SECONDS):
            self.report(count, now)

    def report(self, count: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-9)
        simulated = format_rfc3339(self.simulated) if self.simulated else "-"
        logger.info("replayed %d mentions in %.1f s (%.0f/s), stream time %s", count, elapsed, count / elapsed,
                    simulated)
        self.last_report, self.last_count = now, count


def _bootstrap_servers(bootstrap: str) -> str:
    """Accept Faust-style ``kafka://host:port`` URLs (comma-separated) as well as plain host:port lists."""
    return ",".join(part.strip().split("://", 1)[-1] for part in bootstrap.split(",") if part.strip())


async def replay(
    records_or_path: Source,
    *,
    bootstrap: str,
    topic: str,
    speed: float | None = None,
    rebase_to: datetime | None = None,
    key_field: str = "brand",
    progress: bool = True,
    client_options: dict[str, Any] | None = None,
) -> int:
    """Produce mentions to ``topic`` and return how many the broker acknowledged.

    ``speed``: None or 0 sends as fast as possible; 60 plays an hour of stream in a minute.
    ``rebase_to``: shift every created_at by one offset so the stream ends at that instant (relative timing
    kept), e.g. now, so freshness checks downstream accept a recorded stream.
    ``key_field``: the record field used as message key (brand by default: per-brand order, per-brand
    partition). ``client_options``: extra AIOKafkaProducer arguments (security, SASL).
    Cancellation (Ctrl-C) stops sending, flushes what was already handed to the producer and closes it.
    """
    if speed is not None and speed < 0:
        raise ValueError(f"speed must be positive (or 0/None for as fast as possible), got {speed}")
    if rebase_to is not None and rebase_to.tzinfo is None:
        raise ValueError("rebase_to must be timezone-aware")
    shift = timedelta(0)
    if rebase_to is not None:
        if not isinstance(records_or_path, (str, Path)):
            records_or_path = list(records_or_path)  # read twice: once for the end, once to send
        latest = _latest(records_or_path)
        shift = rebase_to - latest if latest is not None else timedelta(0)
        logger.info("rebasing created_at by %s so the stream ends at %s", shift, format_rfc3339(rebase_to))

    options = {**(client_options or {}), "bootstrap_servers": _bootstrap_servers(bootstrap)}
    producer = AIOKafkaProducer(
        acks="all",
        linger_ms=20,
        # Tansu (the embedded broker) lacks InitProducerId; ordering holds anyway: one batch in flight
        # per partition.
        enable_idempotence=False,
        **options,
    )
    try:
        await producer.start()
    except BaseException:
        await producer.stop()  # releases the half-open client (broker down, bad credentials)
        raise
    sent = 0
    pending: list[asyncio.Future] = []
    meter = _Progress(progress)
    try:
        async for message in _paced(messages(records_or_path, key_field=key_field, shift=shift), speed):
            pending.append(await producer.send(topic, message.value, key=message.key))
            if len(pending) >= DELIVERY_CHUNK:
                sent += await _delivered(pending)
            meter.tick(sent + len(pending), message.created_at)
        await producer.flush()
        sent += await _delivered(pending)
    except asyncio.CancelledError:
        logger.warning("replay interrupted: flushing %d messages already queued", len(pending))
        await asyncio.shield(producer.flush())
        sent += await _delivered(pending)
        raise
    finally:
        await asyncio.shield(producer.stop())
        if progress:
            meter.report(sent)
    return sent


async def _delivered(pending: list[asyncio.Future]) -> int:
    """Wait for delivery reports, raise the first failure, and clear the list."""
    results = await asyncio.gather(*pending, return_exceptions=True)
    pending.clear()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return len(results)


def run_replay(
    path: str | Path,
    bootstrap: str | None = None,
    topic: str = "mentions.raw",
    speed: float | None = None,
    *,
    rebase_now: bool = False,
    settings: Settings | None = None,
    key_field: str = "brand",
) -> int:
    """CLI entry (``ascolta replay FILE --speed X``): exit 0 when all lines were sent, 2 for bad
    arguments (missing file, negative speed), 1 when the broker failed, 130 on Ctrl-C."""
    path = Path(path)
    if not path.is_file():
        print(f"ascolta replay: no such file: {path}", file=sys.stderr)
        return 2
    if speed is not None and speed < 0:
        print(f"ascolta replay: --speed must be positive (or 0 for as fast as possible), got {speed}",
              file=sys.stderr)
        return 2
    client_options: dict[str, Any] = {}
    if settings is not None:
        from ..kafka import client_options as settings_options

        client_options = settings_options(settings)
        bootstrap = bootstrap or client_options.pop("bootstrap_servers")
        client_options.pop("bootstrap_servers", None)
    if not bootstrap:
        print("ascolta replay: no broker given (--broker or ASCOLTA_BROKER)", file=sys.stderr)
        return 2
    rebase_to = datetime.now(timezone.utc) if rebase_now else None
    try:
        count = asyncio.run(replay(path, bootstrap=bootstrap, topic=topic, speed=speed, rebase_to=rebase_to,
                                   key_field=key_field, client_options=client_options))
    except KeyboardInterrupt:
        print("ascolta replay: interrupted", file=sys.stderr)
        return 130
    except (KafkaError, OSError) as error:
        print(f"ascolta replay: broker {bootstrap} failed: {error!r}", file=sys.stderr)
        return 1
    print(f"ascolta replay: sent {count} messages from {path} to {topic}", file=sys.stderr)
    return 0
