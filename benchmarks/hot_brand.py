"""A burst on one brand through N workers: how fast it is scored and enriched (issue 18, item 3).

Starts the embedded broker and N ``ascolta worker`` processes in one group (each with ASCOLTA_THREADS model
threads), waits until the group has shared out the partitions, warms the workers up with mentions of several
brands, then produces M mentions of one brand, keyed by the brand as collectors key the raw topic, as fast as
possible, and measures the time until the model has scored them all (the workers' metrics) and until the last
one is on ``mentions.enriched`` (after the story stage). With ``mentions.valid`` keyed by
brand the burst is scored by one worker whatever N is; keyed by mention, by all of them. Prints the rate with
its setup, and how many texts each worker scored; asserts nothing.

    .venv/bin/python benchmarks/hot_brand.py [--workers 2] [--mentions 3000] [--threads 1] [--partitions 4]
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
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.tools.broker import EmbeddedBroker, free_port  # noqa: E402
from tests.integration.mentions import valid_mentions  # noqa: E402
from tests.integration.workers import WorkerProcess, consume_until, produce  # noqa: E402

import orjson  # noqa: E402

BRAND = "Caffè Aurora"


def readiness(worker: WorkerProcess) -> int:
    """How many times the worker has finished a rebalance (Faust logs "Worker ready" after each)."""
    return worker.log_path.read_text(errors="replace").count("Worker ready")


def settled(workers: list[WorkerProcess], timeout: float = 300.0) -> None:
    """Until no worker has finished another rebalance for 10 s, and every one has finished at least one."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        for worker in workers:
            worker.assert_alive()
        now = [readiness(w) for w in workers]
        if now != last:
            last, since = now, time.monotonic()
        elif min(now) > 0 and time.monotonic() - since > 10:
            return
        time.sleep(0.5)
    raise TimeoutError("the group never settled")


def scored_by(worker: WorkerProcess) -> float:
    """Texts this worker's enrich stage gave the model."""
    text = worker.get("/metrics").decode()
    match = re.search(r"^ascolta_enrich_batch_size_mentions_sum (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mentions", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1, help="model threads per worker")
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    now = datetime.now(timezone.utc)
    burst = [{**r, "brand": BRAND} for r in valid_mentions(args.mentions, start=now - timedelta(minutes=30),
                                                          seconds=1800, seed=21)]
    warm = valid_mentions(64 * args.workers, start=now - timedelta(hours=2), seconds=600, seed=22)
    with tempfile.TemporaryDirectory() as tmp, \
            EmbeddedBroker(port=free_port(), log_path=Path(tmp) / "broker.log") as broker:
        broker.wait_ready(15)
        first = WorkerProcess(broker.url, Path(tmp) / "worker-0.log", ASCOLTA_PARTITIONS=str(args.partitions),
                              ASCOLTA_THREADS=str(args.threads))
        workers = [first]
        for i in range(1, args.workers):
            other = WorkerProcess(broker.url, Path(tmp) / f"worker-{i}.log")
            other.env.update({k: v for k, v in first.env.items() if k != "ASCOLTA_WEB_PORT"})
            other.topics = first.topics
            workers.append(other)
        try:
            for worker in workers:
                worker.start().wait_web()
            settled(workers)
            enriched = first.topics["enriched"]
            warm_messages = [(r["brand"].encode(), orjson.dumps(r)) for r in warm]
            asyncio.run(produce(broker.url, first.topics["raw"], warm_messages))
            asyncio.run(consume_until(broker.url, [enriched], lambda got: len(got[enriched]) >= len(warm), timeout=300))
            before = [scored_by(w) for w in workers]
            started = time.perf_counter()
            asyncio.run(produce(broker.url, first.topics["raw"], [(BRAND.encode(), orjson.dumps(r)) for r in burst]))
            produced = time.perf_counter() - started
            while sum(scored_by(w) for w in workers) - sum(before) < len(burst):
                for worker in workers:
                    worker.assert_alive()
                time.sleep(0.25)
            scored = time.perf_counter() - started
            target = len(warm) + len(burst)
            asyncio.run(consume_until(broker.url, [enriched], lambda got: len(got[enriched]) >= target, timeout=1800))
            elapsed = time.perf_counter() - started
            shares = [scored_by(w) - b for w, b in zip(workers, before)]
        finally:
            for worker in workers:
                worker.stop()

    print(f"setup: {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
          f"{args.workers} workers ({args.threads} model threads each) + embedded Tansu broker on loopback, default "
          f"model (ONNX int8), {args.partitions} partitions, a burst of {args.mentions} mentions of one brand")
    print(f"burst produced in {produced:.1f} s; all scored after {scored:.1f} s "
          f"({args.mentions / scored:,.0f} mentions/s); raw -> enriched: {args.mentions / elapsed:,.0f} mentions/s "
          f"({elapsed:.1f} s)")
    print("texts scored per worker during the burst: " + ", ".join(f"{share:,.0f}" for share in shares))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
