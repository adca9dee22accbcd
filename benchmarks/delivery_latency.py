"""Alert delivery latency: from an alert event produced on ``alerts`` to its signed webhook arriving.

Starts the embedded broker, one ``ascolta worker`` with the environment-only webhook route
(ASCOLTA_WEBHOOK_URL/SECRET), and the reference receiver (:mod:`streams.alerting.receiver`, which verifies every
signature) in this process. Produces alert events one at a time at a steady pace and measures, per event, the
time from handing it to the Kafka producer to the receiver accepting it. Prints p50/p95/max with its setup;
asserts nothing.

    .venv/bin/python benchmarks/delivery_latency.py [--events 100] [--interval 0.25]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from aiohttp import web  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402

from streams.tools.broker import EmbeddedBroker, free_port  # noqa: E402
from streams.alerting.receiver import make_app  # noqa: E402
from tests.integration.test_notify import alert_event  # noqa: E402
from tests.integration.workers import WorkerProcess, bootstrap  # noqa: E402

SECRET = "benchmark-secret"


class ReceiverThread:
    """The reference receiver on its own event loop, noting when each event id arrives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrived: dict[str, float] = {}
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    def _note(self, alert: dict) -> None:
        self.arrived[alert["event_id"]] = time.monotonic()

    async def _start(self) -> None:
        runner = web.AppRunner(make_app(SECRET, self._note), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()


async def produce_paced(broker_url: str, topic: str, alerts: list[dict], interval: float) -> dict[str, float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(broker_url), acks="all", linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    try:
        for alert in alerts:
            sent[alert["event_id"]] = time.monotonic()
            await producer.send_and_wait(topic, orjson.dumps(alert), key=alert["brand"].encode())
            await asyncio.sleep(interval)
    finally:
        await producer.stop()
    return sent


def wait_arrivals(receiver: ReceiverThread, ids: set[str], worker: WorkerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ids <= set(receiver.arrived):
        worker.assert_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(ids - set(receiver.arrived))} alerts never arrived; log: {worker.log_tail()}")
        time.sleep(0.1)


def mean_delivery_seconds(metrics_text: str) -> float:
    """Mean of ascolta_delivery_duration_seconds: the part spent inside the notifier (render, sign, POST)."""
    values = {}
    for line in metrics_text.splitlines():
        for name in ("sum", "count"):
            if line.startswith(f"ascolta_delivery_duration_seconds_{name}{{"):
                values[name] = values.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return values["sum"] / values["count"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between produced alert events")
    parser.add_argument("--partitions", type=int, default=2)
    args = parser.parse_args()

    receiver = ReceiverThread()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=free_port(), log_path=Path(tmp) / "broker.log") as broker:
        broker.wait_ready(15)
        worker = WorkerProcess(broker.url, Path(tmp) / "worker.log", ASCOLTA_PARTITIONS=str(args.partitions),
                               ASCOLTA_WEBHOOK_URL=f"http://127.0.0.1:{receiver.port}/alerts",
                               ASCOLTA_WEBHOOK_SECRET=SECRET)
        worker.start().wait_web()
        try:
            topic = worker.topics["alerts"]
            warm = [alert_event(f"warm-{i}", 0, "opened") for i in range(5)]  # connections, group join, first fetch
            asyncio.run(produce_paced(broker.url, topic, warm, 0.1))
            wait_arrivals(receiver, {a["event_id"] for a in warm}, worker, 120)
            brands = ["Caffè Aurora", "Nordwind Air", "Lumen Bank", "Velo Motors"]
            alerts = [alert_event(f"bench-{i // 5}", i % 5, brand=brands[i % 4]) for i in range(args.events)]
            sent = asyncio.run(produce_paced(broker.url, topic, alerts, args.interval))
            wait_arrivals(receiver, set(sent), worker, 120)
            in_notifier = mean_delivery_seconds(worker.get("/metrics").decode())
        finally:
            worker.stop()
    latencies = [receiver.arrived[event_id] - produced for event_id, produced in sent.items()]
    print("Alert delivery latency: alert event produced -> signed webhook verified by the receiver")
    print(f"  setup: one worker (ASCOLTA_PARTITIONS={args.partitions}), embedded Tansu broker, receiver on loopback,"
          f" {args.events} events one every {args.interval:g} s (webhook route rate limit 10/s)")
    print(f"  machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"  p50 {statistics.median(latencies) * 1000:.1f} ms   p95 {percentile(latencies, 0.95) * 1000:.1f} ms   "
          f"max {max(latencies) * 1000:.1f} ms   (n={len(latencies)})")
    print(f"  of which inside the notifier (render, sign, POST, receiver verifies): mean {in_notifier * 1000:.1f} ms;"
          " the rest is the broker hop and the worker's fetch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
