"""Replay against the real embedded broker: order, keys, raw pass-through, pacing, rebasing, cancellation."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams import contracts
from streams.tools import sample
from streams.tools.broker import EmbeddedBroker, free_port
from streams.tools.replay import messages, replay, run_replay

START = datetime(2026, 5, 4, 15, 0, tzinfo=timezone.utc)


async def _topic(broker: EmbeddedBroker) -> str:
    """A fresh single-partition topic, so arrival order is the total order."""
    name = f"replay-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    return name


async def _consume(
    broker: EmbeddedBroker, topic: str, expected: int, timeout: float = 30
) -> list[tuple[bytes | None, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        received: list[tuple[bytes | None, bytes]] = []
        deadline = time.monotonic() + timeout
        while len(received) < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                received += [(record.key, record.value) for record in batch]
        return received
    finally:
        await consumer.stop()


def _spaced(count: int, every: timedelta) -> list[dict]:
    base = sample.generate(START, 1)[:count]
    return [{**record, "created_at": contracts.format_rfc3339(START + i * every)} for i, record in enumerate(base)]


async def test_records_and_broken_lines_arrive_in_order_with_keys(broker: EmbeddedBroker, tmp_path: Path) -> None:
    records = sample.generate(START, 2)[:300]
    lines = [orjson.dumps(record) for record in records]
    lines.insert(100, b'{"id": "cut-off", "text": "half a rec')  # invalid JSON: goes out as is, no key
    lines.insert(200, b"[1, 2, 3]")  # valid JSON, not an object: no key either
    path = tmp_path / "mentions.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n\n")  # trailing blank line: skipped
    topic = await _topic(broker)

    sent = await replay(path, bootstrap=broker.url, topic=topic, speed=None, progress=False)

    assert sent == len(lines)
    received = await _consume(broker, topic, len(lines))
    assert [value for _, value in received] == lines
    expected_keys = [r["brand"].encode() for r in records]
    expected_keys.insert(100, None)
    expected_keys.insert(200, None)
    assert [key for key, _ in received] == expected_keys


async def test_speed_scales_the_original_timing(broker: EmbeddedBroker) -> None:
    """60 s of stream at speed 60 takes about a second; as fast as possible takes much less. Loose bounds."""
    records = _spaced(31, timedelta(seconds=2))
    topic = await _topic(broker)
    began = time.monotonic()
    assert await replay(records, bootstrap=broker.bootstrap, topic=topic, speed=60, progress=False) == 31
    paced = time.monotonic() - began
    assert paced >= 0.9  # never early: the last record is due 1 s after the first
    assert paced < 15
    received = await _consume(broker, topic, 31)
    assert [orjson.loads(value) for _, value in received] == records


def test_rebasing_moves_the_end_and_keeps_the_gaps() -> None:
    records = _spaced(5, timedelta(minutes=3))
    end = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
    shift = end - contracts.parse_rfc3339(records[-1]["created_at"])
    moved = list(messages(records, shift=shift))
    assert moved[-1].created_at == end
    assert [m.created_at - moved[0].created_at for m in moved] == [timedelta(minutes=3 * i) for i in range(5)]
    assert orjson.loads(moved[0].value) == {**records[0], "created_at": "2030-01-01T11:48:00Z"}


async def test_rebase_to_now_through_the_broker(broker: EmbeddedBroker) -> None:
    records = _spaced(10, timedelta(minutes=1))
    topic = await _topic(broker)
    end = datetime.now(timezone.utc).replace(microsecond=0)
    await replay(records, bootstrap=broker.bootstrap, topic=topic, speed=None, rebase_to=end, progress=False)
    received = [orjson.loads(value) for _, value in await _consume(broker, topic, 10)]
    assert contracts.parse_rfc3339(received[-1]["created_at"]) == end
    assert contracts.parse_rfc3339(received[0]["created_at"]) == end - timedelta(minutes=9)


async def test_cancellation_flushes_what_was_sent(broker: EmbeddedBroker) -> None:
    """Ctrl-C mid-stream: the producer stops cleanly and what went out is an in-order prefix."""
    records = _spaced(40, timedelta(seconds=10))  # 400 s of stream at 100x: 4 s, cancelled after ~1 s
    topic = await _topic(broker)
    task = asyncio.create_task(replay(records, bootstrap=broker.bootstrap, topic=topic, speed=100, progress=False))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    received = await _consume(broker, topic, len(records), timeout=3)
    assert 1 <= len(received) < len(records)
    assert [orjson.loads(value) for _, value in received] == records[: len(received)]


def test_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_replay(tmp_path / "nope.jsonl", "127.0.0.1:9", "mentions.raw") == 2
    assert "no such file" in capsys.readouterr().err


def test_run_replay_sends_a_file(broker: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.jsonl"
    sample.write_jsonl(sample.generate(START, 0.5), path)
    topic = asyncio.run(_topic(broker))
    assert run_replay(path, broker.url, topic, speed=0) == 0
    assert f"to {topic}" in capsys.readouterr().err


def test_unreachable_broker_is_a_runtime_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.jsonl"
    sample.write_jsonl(sample.generate(START, 0.2), path)
    assert run_replay(path, f"127.0.0.1:{free_port()}", "mentions.raw") == 1
    assert "failed" in capsys.readouterr().err
