"""What one Faust worker can process at all on this machine: a do-nothing agent, with W table writes per message.

The detect stage's cost is mostly Faust's per-record path (a table write is a changelog record through the
producer buffer, one agent step per input record). This measures that path without any Ascolta logic: the
embedded broker, one worker with the detect stage's Faust settings and fixes (at least once, acks=all, memory
store, ``streams.faust_fixes``, the Tansu workarounds), one agent over a 2-partition topic that writes W values
of about 300 bytes per message into one changelogged table. For each W it produces ``--messages`` records, then
times the drain the way ``../shared/checks/brands_scale.py`` does (the group's committed offsets reach the log
end). The rates are a ceiling for any stage built on Faust here: the detect stage at 10,000 brands makes about
2 writes per mention and 5 per judged bucket.

    .venv/bin/python benchmarks/faust_floor.py [--messages 20000] [--writes 0 2 7]

Prints; asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.workers import create_topics, produce  # noqa: E402

PARTITIONS = 2
VALUE = {"digest": {"count": 3, "negative": 1, "positive": 1, "terms": {f"w{i:03d}": i for i in range(24)}}, "offset": 0}


def worker_main() -> None:
    """The worker side (``--worker``): configured by FLOOR_* variables."""
    import faust

    from streams import faust_fixes, tansu
    from streams.cli import run_worker

    faust_fixes.apply()
    env = os.environ
    writes = int(env["FLOOR_WRITES"])
    app = faust.App(env["FLOOR_APP"], broker=env["FLOOR_BROKER"], store="memory://", datadir=env["FLOOR_DATADIR"],
                    topic_partitions=PARTITIONS, web_enabled=False, key_serializer="raw", value_serializer="raw",
                    producer_acks=-1, producer_linger=0.05, producer_max_batch_size=256 * 1024, stream_wait_empty=True,
                    **tansu.FAUST_SETTINGS)
    source = app.topic(env["FLOOR_TOPIC"], partitions=PARTITIONS)
    state = app.Table("state", default=None, partitions=PARTITIONS,
                      schema=faust.Schema(key_serializer="json", value_serializer="json"))  # as streams/app.py
    tansu.apply_workarounds(app)

    @app.agent(source)
    async def write(stream):
        async for event in stream.events():
            key = event.key.decode()
            for i in range(writes):
                state[f"{key}|{i}"] = {**VALUE, "offset": event.message.offset}

    run_worker(app, "warn")


async def _lag(bootstrap: str, topic: str, group: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.tansu import end_offsets

    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    ends = await end_offsets(bootstrap, tps)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return sum([end - ((await consumer.committed(tp)) or 0) for tp, end in ends.items()])
    finally:
        await consumer.stop()


def _messages(count: int, first: int) -> list[tuple[bytes, bytes]]:
    return [(f"brand-{i % 1000}".encode(), b"{}") for i in range(first, first + count)]


def measure(broker, writes: int, messages: int, workdir: Path) -> float:
    """Drain rate (messages/s) of one fresh worker writing ``writes`` table values per message."""
    tag = f"floor{os.getpid()}w{writes}"
    env = {**os.environ, "FLOOR_WRITES": str(writes), "FLOOR_APP": tag, "FLOOR_BROKER": broker.url,
           "FLOOR_TOPIC": tag, "FLOOR_DATADIR": str(workdir / tag)}
    asyncio.run(create_topics(broker.url, [tag], PARTITIONS))
    asyncio.run(produce(broker.url, tag, _messages(100, 0)))  # the worker's warm-up
    log = open(workdir / f"{tag}.log", "wb")
    worker = subprocess.Popen([sys.executable, __file__, "--worker"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while asyncio.run(_lag(broker.bootstrap, tag, tag)) > 0:
            if time.monotonic() > deadline or worker.poll() is not None:
                tail = (workdir / f"{tag}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the worker did not start; its log ends:\n{tail}")
            time.sleep(0.5)
        asyncio.run(produce(broker.url, tag, _messages(messages, 100)))
        started = time.monotonic()
        while asyncio.run(_lag(broker.bootstrap, tag, tag)) > 0:
            time.sleep(0.2)
        return messages / (time.monotonic() - started)
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="messages per run (default 20000)")
    parser.add_argument("--writes", type=int, nargs="+", default=[0, 2, 7], help="table writes per message")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main()
        return
    from streams.tools.broker import EmbeddedBroker, free_port

    print(f"one Faust worker on the embedded broker, {PARTITIONS} partitions, {args.messages} messages produced "
          f"first, then drained (committed offsets reach the log end); {platform.python_version()}, "
          f"{os.cpu_count()} CPUs", flush=True)
    print("writes/message  messages/s  table writes/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=free_port(), log_path=Path(tmp) / "tansu.log") as broker:
        for writes in args.writes:
            rate = measure(broker, writes, args.messages, Path(tmp))
            print(f"{writes:>14}  {rate:>10.0f}  {rate * writes:>14.0f}", flush=True)
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
