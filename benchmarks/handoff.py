"""Rolling-restart handoff: how long a partition pauses when one of two workers is stopped with SIGTERM.

Starts the embedded broker and two ``ascolta worker`` processes in one consumer group (2 partitions), warms
both up, then SIGTERMs one and keeps producing a marker mention to every raw partition every 0.2 s. A
marker's latency is the time from its send to its arrival on ``mentions.enriched``; the handoff pause is the
largest marker latency after the SIGTERM, next to the median before it. Prints the numbers with their setup
and whether the stopped worker's log says it left the group; asserts nothing.

    .venv/bin/python benchmarks/handoff.py [--runs 1] [--seconds 40]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from streams.tools.broker import EmbeddedBroker, free_port  # noqa: E402
from tests.integration.mentions import valid_mentions  # noqa: E402
from tests.integration.workers import WorkerProcess, bootstrap, consume_until, produce  # noqa: E402

PARTITIONS = 2
MARK_EVERY_S = 0.2


def marker(partition: int, seq: int, phase: str) -> bytes:
    template = valid_mentions(1, start=datetime.now(timezone.utc) - timedelta(seconds=5), seconds=1, seed=seq)[0]
    return orjson.dumps({**template, "id": f"{phase}-{partition}-{seq}-{time.time():.6f}"})


async def measure(broker_url: str, raw: str, enriched: str, stop_worker, seconds: float) -> dict:
    """Markers for ``seconds / 2`` before ``stop_worker()`` and ``seconds`` after; latencies per phase."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(broker_url), linger_ms=0)
    consumer = AIOKafkaConsumer(enriched, bootstrap_servers=bootstrap(broker_url), auto_offset_reset="latest",
                                enable_auto_commit=False, group_id=None, metadata_max_age_ms=1000)
    await producer.start()
    await consumer.start()
    await asyncio.sleep(1.0)  # the consumer has its positions before the first marker
    latencies: dict[str, list[tuple[int, float, float]]] = {"before": [], "after": []}
    stopped_at: list[float] = []
    pending: dict[str, tuple[str, int, float]] = {}

    async def send_markers() -> None:
        seq = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds * 1.5:
            if not stopped_at and time.monotonic() - started >= seconds / 2:
                stopped_at.append(time.monotonic())
                stop_worker()
            phase = "after" if stopped_at else "before"
            for partition in range(PARTITIONS):
                value = marker(partition, seq, phase)
                pending[orjson.loads(value)["id"]] = (phase, partition, time.monotonic())
                await producer.send_and_wait(raw, value=value, partition=partition)
            seq += 1
            await asyncio.sleep(MARK_EVERY_S)

    async def receive() -> None:
        while True:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                for message in messages:
                    sent = pending.pop(orjson.loads(message.value)["id"], None)
                    if sent:
                        phase, partition, at = sent
                        latencies[phase].append((partition, at, time.monotonic() - at))

    receiver = asyncio.create_task(receive())
    try:
        await send_markers()
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        receiver.cancel()
        await producer.stop()
        await consumer.stop()
    first_after = {p: min((at + lat for q, at, lat in latencies["after"] if q == p), default=float("nan"))
                   - stopped_at[0] for p in range(PARTITIONS)}
    return {
        "median_before_s": statistics.median(lat for _, _, lat in latencies["before"]),
        "max_before_s": max(lat for _, _, lat in latencies["before"]),
        "max_after_s": max(lat for _, _, lat in latencies["after"]),
        "first_after_s": first_after,
        "lost": len(pending),
    }


TIMELINE = ("Signal received", "LeaveGroup", "Joined group", "Elected group leader", "Successfully synced group",
            "Setting newly assigned partitions", "Revoking", "Recovery", "Worker ready", "recovery", "Stopping",
            "Stopped")


def one_run(seconds: float, timeline: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=free_port(), log_path=Path(tmp) / "broker.log") as broker:
        broker.wait_ready(15)
        first = WorkerProcess(broker.url, Path(tmp) / "worker-1.log", ASCOLTA_PARTITIONS=str(PARTITIONS))
        second = WorkerProcess(broker.url, Path(tmp) / "worker-2.log", ASCOLTA_PARTITIONS=str(PARTITIONS))
        second.env.update({k: v for k, v in first.env.items() if k != "ASCOLTA_WEB_PORT"})
        second.topics = first.topics
        first.start().wait_web()
        second.start().wait_web()
        try:
            warm = valid_mentions(200, start=datetime.now(timezone.utc) - timedelta(hours=1), seconds=600, seed=3)
            asyncio.run(produce(broker.url, first.topics["raw"], [(r["id"].encode(), orjson.dumps(r)) for r in warm]))
            asyncio.run(consume_until(broker.url, [first.topics["enriched"]],
                                      lambda got: len(got[first.topics["enriched"]]) >= len(warm), timeout=300))
            time.sleep(3)
            stop = {}

            def sigterm_first() -> None:
                stop["at"], stop["wall"] = time.monotonic(), datetime.now()
                first.process.terminate()

            result = asyncio.run(measure(broker.url, first.topics["raw"], first.topics["enriched"], sigterm_first,
                                         seconds))
            first.process.wait(60)
            result["exit_s"] = time.monotonic() - stop["at"]  # upper bound: polled after the markers
            log = first.log_path.read_text(errors="replace")
            result["left_group"] = "LeaveGroup request succeeded" in log
            result["leave_failed"] = "LeaveGroup request failed" in log
            if timeline:
                print(f"SIGTERM at {stop['wall']:%H:%M:%S,%f}"[:-3])
                for worker in (first, second):
                    for line in worker.log_path.read_text(errors="replace").splitlines():
                        if any(word in line for word in TIMELINE) and line[1:20] >= f"{stop['wall']:%Y-%m-%d %H:%M:%S}":
                            print(f"  {worker.log_path.stem}: {line[:160]}")
            second.assert_alive()
        finally:
            first.stop()
            second.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=40.0, help="markers after the SIGTERM")
    parser.add_argument("--timeline", action="store_true", help="print both workers' group log lines after the SIGTERM")
    args = parser.parse_args()
    print(f"setup: {len(os.sched_getaffinity(0))} cores, embedded Tansu broker on loopback, two workers in one "
          f"group, {PARTITIONS} partitions, default model, a marker per raw partition every {MARK_EVERY_S} s; "
          f"SIGTERM to one worker", flush=True)
    for run in range(1, args.runs + 1):
        r = one_run(args.seconds, args.timeline)
        firsts = ", ".join(f"p{p} {s:.1f} s" for p, s in r["first_after_s"].items())
        print(f"run {run}: marker latency before {r['median_before_s']:.2f} s median ({r['max_before_s']:.2f} max); "
              f"handoff pause (max latency after SIGTERM) {r['max_after_s']:.1f} s; first marker sent after the "
              f"SIGTERM enriched at {firsts}; markers never enriched {r['lost']}; stopped worker's log: "
              f"LeaveGroup {'succeeded' if r['left_group'] else 'failed' if r['leave_failed'] else 'not sent'}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
