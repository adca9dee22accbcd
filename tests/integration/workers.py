"""Real worker processes and real Kafka clients for the integration tests (no mocks)."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.tools.broker import free_port

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """``ascolta worker`` as a subprocess with its own topics, group and web port."""

    def __init__(self, broker_url: str, log_path: Path, **overrides: str) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.topics = {
            "raw": f"raw-{suffix}",
            "valid": f"valid-{suffix}",
            "arrivals": f"arrivals-{suffix}",
            "scored": f"scored-{suffix}",
            "enriched": f"enriched-{suffix}",
            "deadletter": f"deadletter-{suffix}",
            "alerts": f"alerts-{suffix}",
        }
        self.web_port = free_port()
        self.log_path = log_path
        self.env = {
            **os.environ,
            "ASCOLTA_BROKER": broker_url,
            "ASCOLTA_BROKER_COMPAT": "tansu",
            "ASCOLTA_APP_ID": f"ascolta-test-{suffix}",
            "ASCOLTA_RAW_TOPICS": self.topics["raw"],
            "ASCOLTA_VALID_TOPIC": self.topics["valid"],
            "ASCOLTA_ARRIVALS_TOPIC": self.topics["arrivals"],
            "ASCOLTA_SCORED_TOPIC": self.topics["scored"],
            "ASCOLTA_ENRICHED_TOPIC": self.topics["enriched"],
            "ASCOLTA_DEADLETTER_TOPIC": self.topics["deadletter"],
            "ASCOLTA_ALERTS_TOPIC": self.topics["alerts"],
            "ASCOLTA_WEB_PORT": str(self.web_port),
            "ASCOLTA_PARTITIONS": "2",
            **overrides,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        self.web_port = free_port()
        self.env["ASCOLTA_WEB_PORT"] = str(self.web_port)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "info"],
            env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def get(self, path: str, timeout: float = 5.0) -> bytes:
        with urllib.request.urlopen(self.url(path), timeout=timeout) as response:
            return response.read()

    def wait_web(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_alive()
            try:
                self.get("/metrics", timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"worker web server not up after {timeout} s; log: {self.log_tail()}")

    def assert_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}; log: {self.log_tail()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def group(broker_url: str, tmp_path: Path, size: int, partitions: str) -> list[WorkerProcess]:
    """``size`` workers sharing one app id, topics and partition count (each its own web port and log)."""
    first = WorkerProcess(broker_url, tmp_path / "worker-0.log", ASCOLTA_PARTITIONS=partitions)
    workers = [first]
    for i in range(1, size):
        other = WorkerProcess(broker_url, tmp_path / f"worker-{i}.log")
        other.env.update({k: v for k, v in first.env.items() if k != "ASCOLTA_WEB_PORT"})
        other.topics = first.topics
        workers.append(other)
    return workers


def wait_until_ready(worker: WorkerProcess, timeout: float = 300.0, times: int = 1) -> None:
    """Until the worker has joined the group and recovered its tables ``times`` times (Faust says so after each
    rebalance; its web server is up well before the first)."""
    deadline = time.monotonic() + timeout
    while worker.log_path.read_text(errors="replace").count("Worker ready") < times:
        worker.assert_alive()
        assert time.monotonic() < deadline, f"worker never ready; log: {worker.log_tail()}"
        time.sleep(0.5)


def bootstrap(broker_url: str) -> str:
    return broker_url.split("://", 1)[-1]


async def produce(broker_url: str, topic: str, messages: list[tuple[bytes | None, bytes]],
                  pause_every: int = 0, pause_s: float = 0.0) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap(broker_url), acks="all", linger_ms=5, max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        for i, (key, value) in enumerate(messages, 1):
            await producer.send(topic, value=value, key=key)
            if pause_every and i % pause_every == 0:
                await producer.flush()
                await asyncio.sleep(pause_s)
        await producer.flush()
    finally:
        await producer.stop()


async def create_topics(broker_url: str, names: list[str], partitions: int = 2) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(broker_url))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        await admin.close()


async def consume_until(broker_url: str, topics: list[str], done, timeout: float, on_idle=None) -> dict[str, list]:
    """Read ``topics`` from the start until ``done(records_by_topic)`` or the timeout; values decoded as JSON."""
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap(broker_url), auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None, metadata_max_age_ms=1000,
    )
    records: dict[str, list] = {t: [] for t in topics}
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done(records):
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, messages in batches.items():
                records[tp.topic].extend(orjson.loads(m.value) for m in messages)
            if on_idle is not None:
                on_idle()
    finally:
        await consumer.stop()
    return records


async def read_to_end(consumer: AIOKafkaConsumer, topic: str, partitions: int) -> tuple[dict, dict]:
    """Every message of ``topic`` up to its end offsets now, by partition, and those end offsets."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    found: dict[TopicPartition, list] = {tp: [] for tp in tps}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
        for tp, messages in (await consumer.getmany(timeout_ms=500, max_records=5000)).items():
            found[tp] += messages
    return found, ends


async def by_partition(broker_url: str, topic: str, partitions: int) -> dict[int, list[bytes]]:
    """Every message value of ``topic`` so far, by partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(broker_url), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        found, _ = await read_to_end(consumer, topic, partitions)
    finally:
        await consumer.stop()
    return {tp.partition: [m.value for m in messages] for tp, messages in found.items()}


async def where_are(broker_url: str, worker: WorkerProcess, ids: set[str]) -> str:
    """For a failed no-loss check: where each missing id is on raw/valid/dead-letter, and the committed offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap(broker_url), auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
    )
    await consumer.start()
    found: list[str] = []
    try:
        for stage in ("raw", "valid", "deadletter"):
            messages_by_tp, ends = await read_to_end(consumer, worker.topics[stage],
                                                     int(worker.env["ASCOLTA_PARTITIONS"]))
            for tp, messages in messages_by_tp.items():
                for m in messages:
                    text = m.value.decode(errors="replace")
                    hits = [i for i in ids if f'"{i}"' in text]
                    found += [f"{i} on {stage} {tp.partition}@{m.offset}" for i in hits]
            found.append(f"{stage} end offsets: {sorted((tp.partition, o) for tp, o in ends.items())}")
    finally:
        await consumer.stop()
    # OffsetFetch through a group consumer that never joins (Tansu rejects the admin client's request)
    group = AIOKafkaConsumer(bootstrap_servers=bootstrap(broker_url), group_id=worker.env["ASCOLTA_APP_ID"],
                             enable_auto_commit=False)
    await group.start()
    try:
        for stage in ("raw", "valid"):
            for partition in range(int(worker.env["ASCOLTA_PARTITIONS"])):
                tp = TopicPartition(worker.topics[stage], partition)
                found.append(f"committed {stage} {partition}: {await group.committed(tp)}")
    finally:
        await group.stop()
    return "\n".join(found)
