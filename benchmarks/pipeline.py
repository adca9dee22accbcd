"""End-to-end throughput of one worker: raw topic -> ingest -> enrich (default model) -> enriched topic.

Starts the embedded broker and one ``ascolta worker`` process, waits until the worker is up, produces N
mentions as fast as possible and measures the time until the last one is on ``mentions.enriched`` (and the
detect agent has counted them). Then, with the broker and worker gone, runs ``ascolta classify`` on the same
texts (as the enrich stage gives them to the model) and prints both rates and their ratio, the target being
95%. Prints the rates with their setup; asserts nothing.

    .venv/bin/python benchmarks/pipeline.py [--mentions 5000] [--batch-size 64]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.normalise import model_text  # noqa: E402
from streams.tools.broker import EmbeddedBroker, free_port  # noqa: E402
from tests.integration.mentions import valid_mentions  # noqa: E402
from tests.integration.workers import WorkerProcess, consume_until, produce  # noqa: E402

import orjson  # noqa: E402


def classify_command(texts: list[str], path: Path) -> float:
    """``ascolta classify FILE``'s own rate (after loading) on ``texts``, one per line."""
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    child = subprocess.run([sys.executable, "-m", "streams.cli", "classify", str(path)], cwd=ROOT,
                           capture_output=True, text=True, check=True)
    return float(re.search(r"classified \d+ texts in [\d.]+s \((\d+) texts/s\)", child.stderr).group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mentions", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--partitions", type=int, default=2)
    args = parser.parse_args()

    now = datetime.now(timezone.utc)
    records = valid_mentions(args.mentions, start=now - timedelta(hours=12), seconds=12 * 3600, seed=11)
    messages = [(r["id"].encode(), orjson.dumps(r)) for r in records]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=free_port(), log_path=Path(tmp) / "broker.log") as broker:
        broker.wait_ready(15)
        worker = WorkerProcess(broker.url, Path(tmp) / "worker.log", ASCOLTA_BATCH_SIZE=str(args.batch_size),
                               ASCOLTA_PARTITIONS=str(args.partitions))
        worker.start().wait_web()
        # Warm-up: the worker's first batch loads the model; time only the steady state after it.
        warm = valid_mentions(64, start=now - timedelta(hours=13), seconds=600, seed=12)
        asyncio.run(produce(broker.url, worker.topics["raw"], [(r["id"].encode(), orjson.dumps(r)) for r in warm]))
        asyncio.run(consume_until(broker.url, [worker.topics["enriched"]],
                                  lambda got: len(got[worker.topics["enriched"]]) >= len(warm), timeout=300))
        started = time.perf_counter()
        asyncio.run(produce(broker.url, worker.topics["raw"], messages))
        produced = time.perf_counter() - started
        target = len(warm) + len(records)
        asyncio.run(consume_until(broker.url, [worker.topics["enriched"]],
                                  lambda got: len(got[worker.topics["enriched"]]) >= target, timeout=1800,
                                  on_idle=worker.assert_alive))
        elapsed = time.perf_counter() - started
        worker.stop()
        classify_rate = classify_command([model_text(r["text"]) for r in records], Path(tmp) / "texts.txt")

    print(f"setup: {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
          f"one worker + embedded Tansu broker on loopback, default model (ONNX int8), "
          f"batch size {args.batch_size}, {args.partitions} partitions, {args.mentions} mentions of ~300 bytes")
    print(f"produce: {args.mentions / produced:,.0f} mentions/s ({produced:.1f} s)")
    print(f"end to end (raw -> enriched): {args.mentions / elapsed:,.0f} mentions/s ({elapsed:.1f} s)")
    print(f"ascolta classify on the same texts, after the worker stopped: {classify_rate:,.0f} texts/s; "
          f"pipeline / classify = {100 * args.mentions / elapsed / classify_rate:.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
