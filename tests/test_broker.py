"""The embedded Tansu broker and the Faust workarounds, against the real binary (no fakes)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.tools.broker import BrokerError, EmbeddedBroker, free_port, metadata_brokers
from streams.tansu import FetchHighwaterRecovery, apply_workarounds, end_offsets

REPO = Path(__file__).resolve().parents[1]


def _unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _port_accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


async def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def _produce_batches(bootstrap: str, topic: str, batches: list[list[tuple[int, bytes, bytes]]]) -> None:
    """Each inner list goes out as one produce batch: Tansu's offset gap only shows with multi-record batches."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=100, acks="all")
    await producer.start()
    try:
        for batch in batches:
            sent = [await producer.send(topic, value, key=key, partition=partition) for partition, key, value in batch]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


def test_start_stop_and_port_reuse(tmp_path: Path) -> None:
    port = free_port()
    broker = EmbeddedBroker(port=port, log_path=tmp_path / "tansu.log")
    started = time.monotonic()
    broker.start()
    broker.wait_ready(timeout=10)
    assert time.monotonic() - started < 5
    assert broker.url == f"kafka://127.0.0.1:{port}"
    assert [(host, p) for _, host, p in metadata_brokers("127.0.0.1", port)] == [("127.0.0.1", port)]

    broker.stop()
    assert not broker.running() and not _port_accepts(port)
    with EmbeddedBroker(port=port, log_path=tmp_path / "tansu.log") as again:  # same port, right after stop
        assert again.running()
    assert "listening on: tcp://127.0.0.1" in (tmp_path / "tansu.log").read_text()


def test_refuses_a_busy_port(broker: EmbeddedBroker) -> None:
    with pytest.raises(BrokerError, match="already in use"):
        EmbeddedBroker(port=broker.port).start()


def test_wait_ready_reports_a_broker_that_exited(tmp_path: Path) -> None:
    broker = EmbeddedBroker(port=free_port(), storage="bogus://nowhere/", log_path=tmp_path / "tansu.log")
    broker.start()
    try:
        with pytest.raises(BrokerError, match=r"(?s)exited.*UnsupportedStorageUrl"):
            broker.wait_ready(timeout=10)
    finally:
        broker.stop()


def test_refuses_wildcard_without_advertised_host() -> None:
    with pytest.raises(BrokerError, match="advertised_host"):
        EmbeddedBroker(host="0.0.0.0")


def test_foreground_broker_stops_cleanly_on_sigterm() -> None:
    port = free_port()
    code = f"import sys; from streams.tools.broker import run_broker_foreground; sys.exit(run_broker_foreground('127.0.0.1', {port}))"
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not _port_accepts(port):
            assert time.monotonic() < deadline and process.poll() is None, "foreground broker did not come up"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert not _port_accepts(port)


async def test_produce_consume_roundtrip(broker: EmbeddedBroker) -> None:
    topic = _unique("roundtrip")
    await _create_topic(broker.bootstrap, topic, partitions=2)
    sent = [(i % 2, f"k{i}".encode(), f"v{i}".encode()) for i in range(20)]
    await _produce_batches(broker.bootstrap, topic, [sent])

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=_unique("g"),
        auto_offset_reset="earliest",
        session_timeout_ms=6000,  # Tansu holds a join for half of it (gap a)
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        received: list[tuple[int, bytes, bytes]] = []
        deadline = time.monotonic() + 30
        while len(received) < len(sent) and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                received += [(tp.partition, r.key, r.value) for r in records]
    finally:
        await consumer.stop()
    assert sorted(received) == sorted(sent)


async def test_end_offsets_are_log_ends_after_several_batches(broker: EmbeddedBroker) -> None:
    topic = _unique("ends")
    await _create_topic(broker.bootstrap, topic, partitions=3)
    batches = [[(0, None, b"a%d" % i) for i in range(7)] for _ in range(3)] + [[(1, None, b"b")]]
    await _produce_batches(broker.bootstrap, topic, batches)
    tps = [TopicPartition(topic, p) for p in range(3)]

    assert await end_offsets(broker.bootstrap, tps) == {tps[0]: 21, tps[1]: 1, tps[2]: 0}

    # Gap (b) of docs/tansu.md, still there: ListOffsets(latest) = newest batch start + 1. If this fails,
    # Tansu fixed it and FetchHighwaterRecovery / end_offsets can go.
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
    await consumer.start()
    try:
        assert (await consumer.end_offsets(tps))[tps[0]] == 15
    finally:
        await consumer.stop()


def test_apply_workarounds_installs_fetch_highwater_recovery() -> None:
    app = faust.App(_unique("wa"), broker="kafka://127.0.0.1:1", store="memory://")
    app.Table("t", default=int)
    apply_workarounds(app)
    apply_workarounds(app)  # idempotent
    assert isinstance(app.tables.recovery, FetchHighwaterRecovery)


def test_apply_workarounds_refuses_exactly_once() -> None:
    app = faust.App(_unique("eos"), broker="kafka://127.0.0.1:1", processing_guarantee="exactly_once")
    with pytest.raises(ValueError, match="at_least_once"):
        apply_workarounds(app)


# -- Faust table recovery after a SIGKILL ------------------------------------------------------------

KEYS = ("ciao", "hello", "hola")


def _start_counter_worker(broker: EmbeddedBroker, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "tansu_counter_app.py"), "worker", "-l", "info"],
            cwd=env["COUNTER_DATADIR"],
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def _wait_for_counts(out: Path, expected: dict[str, int], worker: subprocess.Popen[bytes], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    counts: dict = {}
    while time.monotonic() < deadline:
        assert worker.poll() is None, "counter worker died (see its log in the test's tmp dir)"
        if out.exists():
            counts = json.loads(out.read_text())["counts"]
            if counts == expected:
                return counts
        time.sleep(0.2)
    return counts


async def test_table_is_complete_after_worker_sigkill_and_restart(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """Table state restored from the changelog must include every update, not stop a batch short."""
    topic = _unique("words")
    out = tmp_path / "counts.json"
    env = {
        "COUNTER_BROKER": broker.url,
        "COUNTER_APP_ID": _unique("counter"),
        "COUNTER_TOPIC": topic,
        "COUNTER_OUT": str(out),
        "COUNTER_DATADIR": str(tmp_path),
        "COUNTER_WORKAROUNDS": os.environ.get("COUNTER_WORKAROUNDS", "1"),
    }
    await _create_topic(broker.bootstrap, topic, partitions=2)
    per_key_first, per_key_second = 150, 40

    def burst(per_key: int) -> list[list[tuple[int | None, bytes, bytes]]]:
        records = [(None, key.encode(), json.dumps(key).encode()) for _ in range(per_key) for key in KEYS]
        return [records[i : i + 50] for i in range(0, len(records), 50)]

    worker = _start_counter_worker(broker, env, tmp_path / "worker1.log")
    try:
        await _produce_batches(broker.bootstrap, topic, burst(per_key_first))
        first = dict.fromkeys(KEYS, per_key_first)
        assert _wait_for_counts(out, first, worker, timeout=40) == first
        await asyncio.sleep(1.5)  # > broker_commit_interval: source offsets committed, changelog flushed
    finally:
        worker.send_signal(signal.SIGKILL)  # no clean shutdown: state must come back from the changelog
        worker.wait()

    out.unlink()
    worker = _start_counter_worker(broker, env, tmp_path / "worker2.log")
    try:
        await _produce_batches(broker.bootstrap, topic, burst(per_key_second))
        total = dict.fromkeys(KEYS, per_key_first + per_key_second)
        assert _wait_for_counts(out, total, worker, timeout=40) == total
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
