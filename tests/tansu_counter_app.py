"""A minimal Faust worker for tests/test_broker.py: counts messages per key into a Table.

Run as ``python tests/tansu_counter_app.py worker``; configured by COUNTER_* environment variables.
Every 0.3 s it writes the table to COUNTER_OUT (JSON, atomically) so the test can read its state.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: make ``streams`` importable

import faust  # noqa: E402

from streams import tansu  # noqa: E402

OUT = Path(os.environ["COUNTER_OUT"])

app = faust.App(
    os.environ["COUNTER_APP_ID"],
    broker=os.environ["COUNTER_BROKER"],
    store="memory://",
    datadir=os.environ["COUNTER_DATADIR"],
    topic_partitions=2,
    web_enabled=False,
    broker_commit_interval=0.5,
    producer_linger=0.2,  # batch changelog writes, as under load: Tansu's offset gap hides in multi-record batches
    **tansu.FAUST_SETTINGS,
)
words = app.topic(os.environ["COUNTER_TOPIC"], key_type=str, value_type=str, partitions=2)
counts = app.Table("counts", default=int, partitions=2)

if os.environ.get("COUNTER_WORKAROUNDS", "1") == "1":
    tansu.apply_workarounds(app)


@app.agent(words)
async def count(stream: faust.StreamT) -> None:
    async for word in stream:
        counts[word] += 1


@app.timer(0.3)
async def dump() -> None:
    partial = OUT.with_suffix(".tmp")
    partial.write_text(json.dumps({"in_recovery": app.in_recovery, "counts": dict(counts.items())}))
    partial.replace(OUT)


if __name__ == "__main__":
    app.main()
