"""Scale-out on the real broker with the real model: three workers in one group, one joining mid-stream, one
SIGKILLed and one SIGTERMed, raise exactly the alerts one worker raises on the same input, with every mention
enriched, exact windows and one incident id per incident."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from streams.tools.sample import CRISIS_BRAND, generate

from .test_pipeline import true_counts, worker_counts
from .workers import WorkerProcess, consume_until, group, produce, wait_until_ready, where_are

# Until the story stage waited for announced mentions (streams/stories/order.py), this failed on the contents of the
# `updated` events: stories were assigned in scoring order, which the number of workers changes, and copies of one
# story weigh less in the detector's evidence. It passed 8 runs of 9 since (the one failure, in a clean-clone CI,
# differed in one sample's sentiment score at the 8th decimal, which an alert now quotes to 4 decimals:
# streams/detection/digest.py, make_sample).
pytestmark = pytest.mark.integration

# Six hours, the crisis 2 h 50 min in: enough for it to open (it may open a bucket or two later than with the
# twelve hours of test_hostile.py, which this test does not assert), and half the model time of twelve hours, which
# kept this test out of `make test` for CI time (5-6 minutes, 2026-12-04).
HOURS = 6.0
PARTITIONS = "4"  # so each of three workers owns something


def by_brand(records: list[dict]) -> list[tuple[bytes, bytes]]:
    return [(r["brand"].encode(), orjson.dumps(r)) for r in records]


def settled_alerts(broker_url: str, topic: str, quiet_s: float = 8.0, timeout: float = 120.0) -> list[dict]:
    """Every alert on ``topic`` once none has arrived for ``quiet_s``."""
    last: list[int] = [0, time.monotonic()]

    def quiet(got) -> bool:
        if len(got[topic]) != last[0]:
            last[:] = [len(got[topic]), time.monotonic()]
        return time.monotonic() - last[1] > quiet_s

    return asyncio.run(consume_until(broker_url, [topic], quiet, timeout=timeout))[topic]


def distinct_events(alerts: list[dict]) -> dict[str, dict]:
    """Alerts by event id (at-least-once: a crash may repeat one), without the wall-clock emission time."""
    return {a["event_id"]: {k: v for k, v in a.items() if k != "emitted_at"} for a in alerts}


def run_to_the_end(broker_url: str, live: WorkerProcess, records: list[dict]) -> None:
    ids = {r["id"] for r in records}
    enriched = live.topics["enriched"]
    got = asyncio.run(consume_until(broker_url, [enriched], lambda got: {r["id"] for r in got[enriched]} >= ids,
                                    timeout=600, on_idle=live.assert_alive))
    missing = ids - {r["id"] for r in got[enriched]}
    assert not missing, asyncio.run(where_are(broker_url, live, missing))
    expected = true_counts(records)
    for _ in range(120):  # the detect agent trails the enrich agent by a little
        if worker_counts(live) == expected:
            break
        time.sleep(1)
    assert worker_counts(live) == expected


def test_three_workers_joining_killed_and_stopped_raise_one_workers_alerts(broker, tmp_path):
    start = datetime.now(timezone.utc).replace(hour=6, minute=50, second=0, microsecond=0) - timedelta(days=1)
    records = generate(start, hours=HOURS)
    thirds = [records[: len(records) // 3], records[len(records) // 3 : 2 * len(records) // 3],
              records[2 * len(records) // 3 :]]

    (tmp_path / "single").mkdir()
    (single,) = group(broker.url, tmp_path / "single", 1, PARTITIONS)
    try:
        single.start().wait_web()
        asyncio.run(produce(broker.url, single.topics["raw"], by_brand(records)))
        run_to_the_end(broker.url, single, records)
        reference = distinct_events(settled_alerts(broker.url, single.topics["alerts"]))
    finally:
        single.stop()
    assert any(a["brand"] == CRISIS_BRAND and a["event"] == "opened" for a in reference.values()), reference

    (tmp_path / "three").mkdir()
    first, second, third = workers = group(broker.url, tmp_path / "three", 3, PARTITIONS)
    try:
        first.start().wait_web()
        asyncio.run(produce(broker.url, first.topics["raw"], by_brand(thirds[0])))
        second.start()
        wait_until_ready(second)  # joined mid-stream: the first third is still being processed
        asyncio.run(produce(broker.url, first.topics["raw"], by_brand(thirds[1])))
        third.start()
        wait_until_ready(third)
        first.kill()  # SIGKILL, mid-stream
        asyncio.run(produce(broker.url, first.topics["raw"], by_brand(thirds[2][: len(thirds[2]) // 2])))
        second.stop()  # SIGTERM
        assert second.process.returncode == 0, second.log_tail()
        assert "LeaveGroup request succeeded" in second.log_path.read_text(), second.log_tail()
        asyncio.run(produce(broker.url, first.topics["raw"], by_brand(thirds[2][len(thirds[2]) // 2 :])))
        run_to_the_end(broker.url, third, records)
        got = settled_alerts(broker.url, first.topics["alerts"])
    finally:
        for worker in workers:
            worker.stop()

    events = distinct_events(got)
    openings: dict[str, int] = {}
    for alert in events.values():
        openings[alert["incident_id"]] = openings.get(alert["incident_id"], 0) + (alert["event"] == "opened")
    assert set(openings.values()) == {1}, openings  # each incident opened once, every alert under its one id
    assert events == reference
