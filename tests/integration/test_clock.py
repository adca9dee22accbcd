"""The detect stage's clock on the real broker: a quiet partition closes its buckets on the wall clock, so an
incident resolves on time after the last mention, and a mention dated hours ahead cannot move time."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone

import orjson
import pytest

from streams.detection.detector import DetectorConfig
from streams.detection.offline import detect_mentions

from .workers import consume_until, produce

pytestmark = pytest.mark.integration

BUCKET_S, LATENESS_S, CALM_S, TICK_S = 5, 1, 30, 1
BRAND = "Quiet Co"


def mention(i: int, ts: float, brand: str = BRAND) -> dict:
    """An enriched mention with no sentiment label: the detector's volume path decides alone."""
    return {"id": f"q{i}", "brand": brand, "source": "news", "text": f"an ordinary post {i}",
            "created_at": datetime.fromtimestamp(ts, timezone.utc).isoformat(), "language": "en"}


def keyed(records: list[dict]) -> list[tuple[bytes, bytes]]:
    return [(r["brand"].encode(), orjson.dumps(r)) for r in records]


def test_a_quiet_partitions_incident_resolves_on_the_wall_clock_and_a_future_mention_moves_nothing(broker, worker):
    worker.env.update(ASCOLTA_BUCKET_SECONDS=str(BUCKET_S), ASCOLTA_ALLOWED_LATENESS_SECONDS=str(LATENESS_S),
                      ASCOLTA_CALM_SECONDS=str(CALM_S), ASCOLTA_CLOCK_TICK_SECONDS=str(TICK_S),
                      ASCOLTA_MAX_FUTURE_SKEW_SECONDS="60")
    now = time.time()
    history = [mention(2 * k + j, now - 3600 + k * BUCKET_S + j) for k in range(700) for j in range(2)]
    future = mention(10_000, now + 20 * 3600)  # accepted by ingest (a day ahead), refused by the detect stage
    worker.start().wait_web()
    asyncio.run(produce(broker.url, worker.topics["enriched"], keyed(history[:700] + [future] + history[700:])))

    last_bucket = str(int((now - 3600 + 699 * BUCKET_S + 1) // BUCKET_S * BUCKET_S))

    def counted(records) -> bool:  # the history is in: the worker's windows reach its last bucket
        try:
            windows = json.loads(worker.get("/ascolta/windows", timeout=30)).get(BRAND, {})
        except OSError:  # a busy worker: ask again
            return False
        return last_bucket in {**windows.get("open", {}), **windows.get("closed", {})}

    asyncio.run(consume_until(broker.url, [worker.topics["deadletter"]], counted, timeout=240,
                              on_idle=worker.assert_alive))
    assert counted(None), worker.get("/ascolta/windows", timeout=30)[:2000]
    burst_at = time.time()
    burst = [mention(20_000 + j, burst_at) for j in range(60)]
    asyncio.run(produce(broker.url, worker.topics["enriched"], keyed(burst)))
    alerts_topic = worker.topics["alerts"]

    def resolved(records) -> bool:
        return any(a["event"] == "resolved" for a in records[alerts_topic])

    got = asyncio.run(consume_until(broker.url, [alerts_topic, worker.topics["deadletter"]], resolved,
                                    timeout=CALM_S + 120, on_idle=worker.assert_alive))
    deadletters = got[worker.topics["deadletter"]]
    assert [(d["reason"], d["stage"], d["mention_id"]) for d in deadletters] == [("timestamp_in_future", "detect", "q10000")]
    events = [(a["event"], datetime.fromisoformat(a["at"]).timestamp()) for a in got[alerts_topic]]
    # the same mentions offline (a later mention of another brand standing in for the wall clock)
    reference = [(a.decision.event, a.decision.at.timestamp()) for a in detect_mentions(
        ((m, datetime.fromisoformat(m["created_at"]).timestamp())
         for m in [*history, *burst, mention(30_000, burst_at + 600, "Other Co")]),
        DetectorConfig(bucket_seconds=BUCKET_S, calm_s=CALM_S))]
    # opened early, on the burst's partial bucket, then "updated" by that bucket's close (docs/detection.md)
    assert [e for e, _ in events] == ["opened", "updated", "resolved"] and events == reference, (events, reference)
    resolved_event = got[alerts_topic][-1]
    bucket_end = datetime.fromisoformat(resolved_event["at"]).timestamp() + BUCKET_S
    emitted = datetime.fromisoformat(resolved_event["emitted_at"]).timestamp()
    # judged within one bucket (plus the lateness and a tick) of wall-clock time after its bucket ended: no
    # mention came after the burst, only ticks. 10 s of slack for a loaded machine.
    assert emitted - bucket_end <= LATENESS_S + BUCKET_S + TICK_S + 10, (emitted - bucket_end, resolved_event)
    assert emitted - burst_at <= CALM_S + 4 * BUCKET_S + LATENESS_S + TICK_S + 10  # the calm time, plus the windows
