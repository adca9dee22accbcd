"""How fast a sharp burst becomes an `opened` crisis on one live worker, whatever the backlog (issue 18).

The scenario: the embedded broker and one ``ascolta worker`` with the real default model; 48 hours of the sample's
ordinary traffic for its five brands (no bursts; ``--history-scale`` independent copies of it, so the live rate is
high enough to measure other brands' latency) replayed as fast as possible; then live traffic, the same generator
with wall-clock timestamps, each mention produced when it is due; then a negative burst on Caffè Aurora (the
sample's crisis texts) starting ``--phase`` seconds into a 5-minute bucket, at ``--rate`` mentions/s for
``--duration`` seconds. Raw messages are keyed by brand, as producers do; the brands sharing the burst's partition
are printed.

Printed with the setup, asserted nothing:
- burst start -> `opened` (the alert's ``emitted_at``), and when it was due: bucket end + lateness (+ up to one
  clock tick), what a bucket-based detector cannot beat;
- peak backlog (mentions produced and not yet on ``mentions.enriched``, counted here) and when it drained (every
  burst mention enriched); next to them the worker's own ``ascolta_stage_lag_messages`` and
  ``ascolta_stage_lag_seconds`` (scraped every second), so the metrics can be checked against the truth;
- the other brands' mention -> enriched latency (``processing.enriched_at`` minus ``created_at``) for their
  mentions created during the burst, split by partition (on the burst's partition or not), and any alert
  opened for them;
- the worker's ``ascolta_alert_latency_seconds`` histogram.

    ASCOLTA_DATA_DIR=.ascolta .venv/bin/python benchmarks/burst.py [--rate 600] [--duration 120] [--phase 250]
        [--history-scale 3] [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from aiokafka.partitioner import DefaultPartitioner  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from streams.tools import sample  # noqa: E402
from streams.tools.broker import EmbeddedBroker, free_port  # noqa: E402
from tests.integration.workers import WorkerProcess, produce  # noqa: E402

BUCKET_S, LATENESS_S, TICK_S = 300, 60, 30  # the worker's defaults (ASCOLTA_BUCKET_SECONDS, ...)
BURST_BRAND = sample.CRISIS_BRAND


def stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def ordinary_traffic(start: datetime, hours: float, scale: int) -> list[dict]:
    """``scale`` independent copies of the sample's everyday mentions (its bursts left out), in time order."""
    records = []
    for seed in range(scale):
        for mention in sample.generate_labelled(start, hours=hours, seed=100 + seed):
            if mention.burst is None:
                records.append({**mention.record, "id": f"s{seed}-{mention.record['id']}"})
    return sorted(records, key=lambda r: r["created_at"])


def burst_texts(count: int, seed: int = 1) -> list[dict]:
    """``count`` crisis mentions from the sample's writer (its own texts, reposts and authors); times set later."""
    writer = sample._Writer(random.Random(seed))
    brand = next(b for b in sample.BRANDS if b.name == BURST_BRAND)
    now = datetime.now(UTC)
    burst = sample.Burst(BURST_BRAND, "crisis", now, now + timedelta(hours=1), story=sample.CRISIS_STORY)
    for i in range(count):
        writer.burst(brand, burst, now + timedelta(milliseconds=i))
    return [{**m.record, "id": f"burst-{i}"} for i, m in enumerate(writer.mentions)]


def partition_of(brand: str, partitions: int) -> int:
    return DefaultPartitioner()(brand.encode(), list(range(partitions)), list(range(partitions)))


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def summed(metrics: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in metrics.items() if n == name and all((k, v2) in ls for k, v2 in labels.items()))


def maximum(metrics: dict, name: str, **labels: str) -> float:
    return max((v for (n, ls), v in metrics.items() if n == name and all((k, v2) in ls for k, v2 in labels.items())),
               default=0.0)


class Run:
    """The live phase: produces the live and burst traffic on time, counts what is enriched, reads alerts and
    scrapes the worker, all in one event loop."""

    def __init__(self, bootstrap: str, worker: WorkerProcess, args, live: list[dict], burst: list[dict],
                 burst_start: float) -> None:
        self.bootstrap, self.worker, self.args = bootstrap, worker, args
        self.live, self.burst, self.burst_start = live, burst, burst_start
        self.burst_end = burst_start + args.duration
        self.sent: set[str] = set()  # brand|id of every mention produced in the live phase
        self.enriched: dict[str, dict] = {}  # brand|id -> enriched record (redeliveries counted once)
        self.burst_enriched = 0
        self.alerts: list[dict] = []
        self.backlog: list[tuple[float, int]] = []  # (time, produced and not yet enriched)
        self.scraped: list[tuple[float, dict]] = []
        self.burst_enriched_at: float | None = None

    async def feed(self, producer: AIOKafkaProducer) -> None:
        """Live mentions when due (created_at = send time, they were generated for now) and the burst."""
        topic = self.worker.topics["raw"]
        live = iter(self.live)
        upcoming = next(live, None)
        sent_burst = 0
        while upcoming is not None or time.time() < self.burst_end + self.args.after:
            now = time.time()
            while upcoming is not None and epoch(upcoming["created_at"]) <= now:
                await self.send(producer, topic, upcoming)
                upcoming = next(live, None)
            if self.burst_start <= now:
                due = min(len(self.burst), int((min(now, self.burst_end) - self.burst_start) * self.args.rate))
                for record in self.burst[sent_burst:due]:
                    await self.send(producer, topic, {**record, "created_at": stamp(time.time())})
                sent_burst = max(sent_burst, due)
            await asyncio.sleep(0.05)
        await producer.flush()

    async def send(self, producer: AIOKafkaProducer, topic: str, record: dict) -> None:
        self.sent.add(f"{record['brand']}|{record['id']}")
        await producer.send(topic, key=record["brand"].encode(), value=orjson.dumps(record))

    async def read(self) -> None:
        consumer = AIOKafkaConsumer(self.worker.topics["enriched"], self.worker.topics["alerts"],
                                    bootstrap_servers=self.bootstrap, auto_offset_reset="latest", group_id=None,
                                    enable_auto_commit=False, metadata_max_age_ms=1000)
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
                for tp, messages in batches.items():
                    for message in messages:
                        record = orjson.loads(message.value)
                        if tp.topic == self.worker.topics["alerts"]:
                            self.alerts.append(record)
                            continue
                        key = f"{record['brand']}|{record['id']}"
                        if key in self.sent and key not in self.enriched:
                            self.enriched[key] = record
                            self.burst_enriched += record["id"].startswith("burst-")
                if (self.burst_enriched_at is None and time.time() > self.burst_end
                        and self.burst_enriched >= len(self.burst)):
                    self.burst_enriched_at = time.time()
        finally:
            await consumer.stop()

    async def watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = time.time()
            self.backlog.append((now, len(self.sent) - len(self.enriched)))
            try:
                metrics = await loop.run_in_executor(None, scrape, self.worker.url("/metrics"))
                self.scraped.append((now, metrics))
            except OSError:
                pass
            self.worker.assert_alive()
            await asyncio.sleep(1.0)

    def opened(self) -> dict | None:
        return next((a for a in self.alerts if a["brand"] == BURST_BRAND and a["event"] == "opened"
                     and a["kind"] == "crisis" and epoch(a["emitted_at"]) >= self.burst_start), None)

    async def run(self, settle: float) -> None:
        reader, watcher = asyncio.create_task(self.read()), asyncio.create_task(self.watch())
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            await self.feed(producer)
            deadline = time.time() + settle
            while time.time() < deadline and (self.opened() is None or self.burst_enriched_at is None):
                await asyncio.sleep(0.5)
            # once more: the last one-second scrape may predate the alert
            self.scraped.append((time.time(), await asyncio.get_running_loop().run_in_executor(
                None, scrape, self.worker.url("/metrics"))))
        finally:
            await producer.stop()
            for task in (reader, watcher):
                task.cancel()
            await asyncio.gather(reader, watcher, return_exceptions=True)


def wait_enriched(bootstrap: str, topic: str, count: int, worker: WorkerProcess, timeout: float) -> None:
    """Until ``count`` distinct mentions are on the enriched topic."""
    async def go() -> None:
        started = time.time()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        seen: set[str] = set()
        try:
            while len(seen) < count and time.time() - started < timeout:
                for messages in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                    seen.update(orjson.loads(m.value)["id"] for m in messages)
                worker.assert_alive()
        finally:
            await consumer.stop()
        if len(seen) < count:
            raise TimeoutError(f"{len(seen)} of {count} history mentions enriched after {timeout} s")
    asyncio.run(go())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=600.0, help="burst mentions per second")
    parser.add_argument("--duration", type=float, default=120.0, help="burst seconds")
    parser.add_argument("--phase", type=float, default=250.0, help="seconds into a 5-minute bucket the burst starts")
    parser.add_argument("--history-hours", type=float, default=48.0)
    parser.add_argument("--history-scale", type=int, default=3,
                        help="independent copies of the ordinary traffic (history and live)")
    parser.add_argument("--warm", type=float, default=120.0, help="at least this much live traffic before the burst")
    parser.add_argument("--after", type=float, default=60.0, help="live traffic after the burst ends")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help="history scale 1, 30 s of live traffic before the burst and after it")
    args = parser.parse_args()
    if args.quick:
        args.history_scale, args.warm, args.after = 1, 30.0, 30.0

    generated_at = datetime.now(UTC).replace(microsecond=0)
    history_start = generated_at - timedelta(hours=args.history_hours)
    live_hours = (args.history_hours * 3600 + 3600) / 3600  # an hour past now: enough for any run
    traffic = ordinary_traffic(history_start, live_hours, args.history_scale)
    cut = sample._rfc3339_ms(generated_at)
    history = [r for r in traffic if r["created_at"] < cut]
    live = [r for r in traffic if r["created_at"] >= cut]
    burst = burst_texts(int(args.rate * args.duration))
    partition = {name: partition_of(name, args.partitions) for name in sample.BRAND_NAMES}
    neighbours = sorted(name for name in sample.BRAND_NAMES if name != BURST_BRAND
                        and partition[name] == partition[BURST_BRAND])

    with tempfile.TemporaryDirectory() as tmp, \
            EmbeddedBroker(port=free_port(), log_path=Path(tmp) / "broker.log") as broker:
        broker.wait_ready(15)
        worker = WorkerProcess(broker.url, Path(tmp) / "worker.log", ASCOLTA_PARTITIONS=str(args.partitions))
        try:
            worker.start().wait_web()
            replay_started = time.time()
            asyncio.run(produce(broker.url, worker.topics["raw"],
                                [(r["brand"].encode(), orjson.dumps(r)) for r in history]))
            wait_enriched(broker.bootstrap, worker.topics["enriched"], len(history), worker, 3600)
            replay_s = time.time() - replay_started
            # the burst starts at the first bucket phase after the warm-up
            earliest = time.time() + args.warm
            burst_start = earliest - earliest % BUCKET_S + args.phase
            if burst_start < earliest:
                burst_start += BUCKET_S
            # live mentions dated while the history was replayed are left out (a short gap, not a late batch)
            live_from = time.time()
            live = [r for r in live if live_from <= epoch(r["created_at"]) <= burst_start + args.duration + args.after]
            due = burst_start - burst_start % BUCKET_S + BUCKET_S + LATENESS_S
            settle = max(600.0, due - burst_start + 300)
            run = Run(broker.bootstrap, worker, args, live, burst, burst_start)
            asyncio.run(run.run(settle))
        finally:
            worker.stop()

    opened = run.opened()
    peak_time, peak = max(run.backlog, key=lambda point: point[1], default=(0.0, 0))
    print(f"setup: {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores "
          f"(load average {os.getloadavg()[0]:.1f}), one worker + embedded Tansu on loopback, default model, "
          f"{args.partitions} partitions, buckets {BUCKET_S} s, lateness {LATENESS_S} s, clock tick {TICK_S} s")
    print(f"history: {len(history):,} ordinary mentions over {args.history_hours:g} h, five brands, "
          f"x{args.history_scale} ({len(history) / replay_s:,.0f} mentions/s end to end with the model's loading, "
          f"{replay_s:.0f} s); "
          f"live: {len(live):,} ordinary mentions at wall-clock time")
    print(f"burst: {BURST_BRAND}, {args.rate:g} mentions/s for {args.duration:g} s ({len(burst):,} mentions), "
          f"starting {args.phase:g} s into its bucket ({stamp(burst_start)}); partition {partition[BURST_BRAND]}, "
          f"shared with: {', '.join(neighbours) or 'no other brand'}")
    if opened:
        print(f"burst start -> opened: {epoch(opened['emitted_at']) - burst_start:.0f} s "
              f"(bucket at {opened['at']}, severity {opened['severity']})")
    else:
        print("burst start -> opened: not opened within the run")
    print(f"due (bucket end + lateness): {due - burst_start:.0f} s (+ up to {TICK_S} s for the clock tick)")
    print(f"peak backlog (produced, not yet enriched): {peak:,} at +{peak_time - burst_start:.0f} s")
    drained = run.burst_enriched_at
    print(f"backlog drained (every burst mention enriched): "
          + (f"{drained - burst_start:.0f} s after the burst start" if drained else "not within the run"))
    during = (burst_start, drained or time.time())
    burst_partition = f"partition {partition[BURST_BRAND]} (the burst's)"
    for label, on_partition in ((burst_partition, True), ("other partitions", False)):
        latencies = sorted(epoch(r["processing"]["enriched_at"]) - epoch(r["created_at"])
                           for r in run.enriched.values() if r["brand"] != BURST_BRAND
                           and (partition[r["brand"]] == partition[BURST_BRAND]) == on_partition
                           and during[0] <= epoch(r["created_at"]) <= during[1])
        if latencies:
            print(f"other brands on {label}: mention -> enriched during the burst: median "
                  f"{statistics.median(latencies):.1f} s, max {latencies[-1]:.1f} s ({len(latencies)} mentions)")
        else:
            print(f"other brands on {label}: no mention created during the burst")
    others = [(a["brand"], a["kind"], a["at"]) for a in run.alerts
              if a["brand"] != BURST_BRAND and a["event"] == "opened"]
    print(f"alerts opened for other brands: {others or 'none'}")
    # from the burst start until it drained: before it, a quiet partition still shows how late the replayed
    # history's last mention was when it was finished
    scraped = [m for t, m in run.scraped if during[0] <= t <= during[1]]
    if scraped:
        peak_metric = max(summed(m, "ascolta_stage_lag_messages") for m in scraped)
        peak_enrich = max(summed(m, "ascolta_stage_lag_messages", stage="enrich") for m in scraped)
        hot = str(partition[BURST_BRAND])
        seconds = {stage: max(maximum(m, "ascolta_stage_lag_seconds", stage=stage, partition=hot) for m in scraped)
                   for stage in ("ingest", "enrich", "detect")}
        fetched = max(summed(m, "ascolta_consumer_lag_messages") for m in scraped)
        print(f"worker metrics, scraped every second from the burst start until drained: peak "
              f"ascolta_stage_lag_messages {peak_metric:,.0f} "
              f"(enrich {peak_enrich:,.0f}); peak ascolta_stage_lag_seconds on the burst's partition "
              + ", ".join(f"{stage} {value:.0f} s" for stage, value in seconds.items())
              + f"; peak ascolta_consumer_lag_messages (fetch position) {fetched:,.0f}")
    if run.scraped:
        last = run.scraped[-1][1]
        count = summed(last, "ascolta_alert_latency_seconds_count")
        total = summed(last, "ascolta_alert_latency_seconds_sum")
        print(f"worker ascolta_alert_latency_seconds: {count:.0f} observed"
              + (f", mean {total / count:.0f} s" if count else "")
              + f"; skipped as replays: {summed(last, 'ascolta_alert_latency_skipped_total'):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
