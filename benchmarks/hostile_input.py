"""Hostile input on one worker: drain time of the fuzz mix and worker memory after it and after idling.

Starts the embedded broker and one ``ascolta worker``, then for each round produces the integration fuzz
test's mix (tests/integration/test_hostile.py: 2,400 hostile messages among 600 valid ones, a new seed per
round) and waits until every message is on ``mentions.enriched`` or ``mentions.deadletter``. Prints per
round: drain time, worker RSS right after, RSS after ``--idle`` seconds, the number of metric series and
the brands the detect stage holds. Several rounds tell growth that is bounded (a one-off: the model's
arena, allocator pools) from growth that is not (tables, metric series). Asserts nothing.

    .venv/bin/python benchmarks/hostile_input.py [--rounds 2] [--idle 60]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.tools.broker import EmbeddedBroker, free_port  # noqa: E402
from tests.integration.test_hostile import hostile_stream, produce_all, rss_mb  # noqa: E402
from tests.integration.workers import WorkerProcess, consume_until  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds idle before measuring again")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=free_port(), log_path=Path(tmp) / "broker.log") as broker:
        broker.wait_ready(15)
        worker = WorkerProcess(broker.url, Path(tmp) / "worker.log")
        worker.start().wait_web()
        print(f"worker up: RSS {rss_mb(worker):.0f} MB (model not loaded until the first valid mention)")
        topics = [worker.topics["enriched"], worker.topics["deadletter"]]
        total = 0
        try:
            for round_ in range(1, args.rounds + 1):
                stream = hostile_stream(datetime.now(timezone.utc), seed=round_)
                total += len(stream)
                started = time.monotonic()
                asyncio.run(produce_all(broker.url, worker.topics["raw"], [(k, v) for _, k, v in stream]))
                got = asyncio.run(consume_until(
                    broker.url, topics, lambda got: len(got[topics[0]]) + len(got[topics[1]]) >= total,
                    timeout=900, on_idle=worker.assert_alive))
                drained = time.monotonic() - started
                accounted = len(got[topics[0]]) + len(got[topics[1]])
                after = rss_mb(worker)
                time.sleep(args.idle)
                series = sum(1 for line in worker.get("/metrics").decode().splitlines() if line.startswith("ascolta_"))
                brands = len(json.loads(worker.get("/ascolta/windows")))
                print(f"round {round_}: {len(stream)} messages, {accounted}/{total} accounted for in {drained:.0f} s "
                      f"({len(stream) / drained:.0f} msg/s); RSS {after:.0f} MB after, {rss_mb(worker):.0f} MB after "
                      f"{args.idle:.0f} s idle; {series} ascolta_ metric samples; {brands} brands in detect state")
        finally:
            worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
