"""How fast one brand's burst is scored by 1, 2, 3 ... workers (issue 18: a hot brand's scoring spreads).

The embedded broker and N ``ascolta worker`` processes in one consumer group (``ASCOLTA_THREADS`` each, default
1, so the model's threads do not fight over the cores), ``--partitions`` partitions. Once every worker is ready,
``--mentions`` mentions of one brand (one raw key: one raw partition, as producers key by brand) are produced at
once; the rate is the mentions over the time from the first to the last reaching ``mentions.enriched``. Also
printed: the share each worker scored (its ``ascolta_enrich_batch_size_mentions_sum``). With ``mentions.valid``
keyed by brand, every worker but one would score nothing.

    ASCOLTA_DATA_DIR=.ascolta .venv/bin/python benchmarks/hot_brand.py [--workers 1 2 3] [--mentions 3000]

Prints rates with their setup; asserts nothing. On a machine with fewer cores than workers x threads the rate
stops growing at the cores: say so when quoting it.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer  # noqa: E402

from streams.tools.broker import EmbeddedBroker, free_port  # noqa: E402
from tests.integration.mentions import valid_mentions  # noqa: E402
from tests.integration.workers import WorkerProcess, bootstrap, produce  # noqa: E402

BRAND = "Caffè Aurora"


def workers_of_one_group(broker_url: str, directory: Path, size: int, partitions: int, threads: int
                         ) -> list[WorkerProcess]:
    first = WorkerProcess(broker_url, directory / "worker-0.log", ASCOLTA_PARTITIONS=str(partitions),
                          ASCOLTA_THREADS=str(threads))
    workers = [first]
    for i in range(1, size):
        other = WorkerProcess(broker_url, directory / f"worker-{i}.log")
        other.env.update({k: v for k, v in first.env.items() if k != "ASCOLTA_WEB_PORT"})
        other.topics = first.topics
        workers.append(other)
    return workers


def ready(worker: WorkerProcess, times: int) -> bool:
    worker.assert_alive()
    return worker.log_path.read_text(errors="replace").count("Worker ready") >= times


def scored_by(worker: WorkerProcess) -> float:
    text = worker.get("/metrics").decode()
    found = re.search(r"^ascolta_enrich_batch_size_mentions_sum (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def enriched_times(broker_url: str, topic: str, ids: set[str], timeout: float) -> list[float]:
    """Arrival time (here) of each id's first enriched record."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap(broker_url), auto_offset_reset="earliest",
                                group_id=None, enable_auto_commit=False, metadata_max_age_ms=1000)
    await consumer.start()
    seen: dict[str, float] = {}
    try:
        deadline = time.monotonic() + timeout
        while len(seen) < len(ids) and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200, max_records=10_000)).values():
                now = time.monotonic()
                for message in messages:
                    seen.setdefault(orjson.loads(message.value)["id"], now)
    finally:
        await consumer.stop()
    return sorted(seen[i] for i in ids if i in seen)


def run(size: int, args, directory: Path) -> tuple[float, list[float]]:
    with EmbeddedBroker(port=free_port(), log_path=directory / "tansu.log") as broker:
        workers = workers_of_one_group(broker.url, directory, size, args.partitions, args.threads)
        try:
            for i, worker in enumerate(workers):
                worker.start()
                deadline = time.monotonic() + 300
                while not ready(worker, 1):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"worker {i} never ready:\n{worker.log_tail()}")
                    time.sleep(0.5)
            time.sleep(args.settle)  # the group's last rebalance
            print(f"  {size} worker(s) ready", file=sys.stderr)
            now = datetime.now(UTC)
            burst = [{**r, "brand": BRAND} for r in valid_mentions(args.mentions, start=now - timedelta(minutes=5),
                                                                  seconds=300, seed=7)]
            ids = {r["id"] for r in burst}
            asyncio.run(produce(broker.url, workers[0].topics["raw"],
                                [(BRAND.encode(), orjson.dumps(r)) for r in burst]))
            times = asyncio.run(enriched_times(broker.url, workers[0].topics["enriched"], ids, args.timeout))
            if len(times) < len(ids):
                raise TimeoutError(f"{len(times)} of {len(ids)} enriched within {args.timeout} s")
            rate = (len(times) - 1) / max(times[-1] - times[0], 1e-9)
            return rate, [scored_by(worker) for worker in workers]
        finally:
            for worker in workers:
                worker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--mentions", type=int, default=3000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1, help="ASCOLTA_THREADS per worker")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds after the last worker is ready")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    os.environ.setdefault("ASCOLTA_DATA_DIR", str(ROOT / ".ascolta"))
    print(f"setup: {platform.machine()}, {os.cpu_count()} cores, {args.partitions} partitions, {args.mentions} "
          f"mentions of one brand produced at once, ASCOLTA_THREADS={args.threads} per worker")
    base = None
    for size in args.workers:
        with tempfile.TemporaryDirectory(prefix="hot-brand-") as directory:
            rate, scored = run(size, args, Path(directory))
        base = base or rate
        shares = ", ".join(f"{s / max(sum(scored), 1):.0%}" for s in scored)
        print(f"{size} worker(s): {rate:6.1f} mentions/s scored and enriched ({rate / base:.2f}x one worker); "
              f"share scored by each: {shares}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
