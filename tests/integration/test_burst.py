"""Issue 18 on the real broker with the real model: a live burst far above the model's rate opens its crisis while
the burst is still being scored, not once the backlog has drained (the order of events, not wall-clock timings)."""
from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from .mentions import SOURCES, TEXTS, rfc3339
from .workers import consume_until, produce

pytestmark = pytest.mark.integration

BRAND, OTHER = "Caffè Aurora", "Lumen Bank"
HISTORY_HOURS, PER_BUCKET, BURST = 3, 4, 1_500
RECALL = ["{b} recall: listeria found in the espresso pods, my kid got sick #{i}",
          "Richiamo {b}: listeria nelle capsule, vergogna, mio figlio sta male #{i}",
          "{b} retira sus cápsulas por listeria, qué asco y qué miedo #{i}",
          "Rückruf bei {b}: Listerien in den Kapseln, unfassbar und gefährlich #{i}"]


def mention(i: int, brand: str, text: str, at: datetime, rng: random.Random) -> dict:
    return {"id": f"b-{i}", "brand": brand, "source": rng.choice(SOURCES), "text": text, "created_at": rfc3339(at),
            "author": {"id": f"u{i}", "handle": f"user{i}", "followers": 100}, "url": f"https://example.org/b/{i}"}


def keyed(records: list[dict]) -> list[tuple[bytes, bytes]]:
    return [(r["brand"].encode(), orjson.dumps(r)) for r in records]


def test_a_burst_faster_than_the_model_opens_its_crisis_before_the_backlog_drains(broker, worker):
    rng = random.Random(18)
    now = datetime.now(UTC).replace(microsecond=0)
    ordinary = [text for texts in TEXTS.values() for text in texts]
    history = []
    for bucket in range(HISTORY_HOURS * 12):  # three hours of ordinary traffic, up to ten minutes ago
        for j, brand in enumerate([BRAND] * PER_BUCKET + [OTHER] * PER_BUCKET):
            at = now - timedelta(hours=HISTORY_HOURS, minutes=10) + timedelta(minutes=5 * bucket, seconds=30 * j)
            history.append(mention(len(history), brand, rng.choice(ordinary).format(b=brand) + f" #{len(history)}",
                                   at, rng))
    enriched_topic, alerts_topic = worker.topics["enriched"], worker.topics["alerts"]
    worker.start().wait_web()
    asyncio.run(produce(broker.url, worker.topics["raw"], keyed(history)))
    asyncio.run(consume_until(broker.url, [enriched_topic], lambda got: len(got[enriched_topic]) >= len(history),
                              timeout=300, on_idle=worker.assert_alive))

    # live: the burst's mentions dated over the last 30 seconds, all produced at once, many times what the
    # model scores in a second
    burst_at = datetime.now(UTC)
    burst = [mention(100_000 + i, BRAND, rng.choice(RECALL).format(b=BRAND, i=i),
                     burst_at - timedelta(seconds=30 * (1 - i / BURST)), rng) for i in range(BURST)]
    asyncio.run(produce(broker.url, worker.topics["raw"], keyed(burst)))
    burst_ids = {m["id"] for m in burst}

    def drained(got) -> bool:
        return burst_ids <= {r["id"] for r in got[enriched_topic]}

    got = asyncio.run(consume_until(broker.url, [enriched_topic, alerts_topic], drained, timeout=600,
                                    on_idle=worker.assert_alive))
    assert drained(got), f"{len(burst_ids - {r['id'] for r in got[enriched_topic]})} burst mentions never enriched"
    alerts = [a for a in got[alerts_topic] if a["brand"] == BRAND]
    opened = [a for a in alerts if a["event"] == "opened"]
    assert [a["kind"] for a in opened] == ["crisis"], alerts
    last_scored = max(datetime.fromisoformat(r["processing"]["enriched_at"]) for r in got[enriched_topic]
                      if r["id"] in burst_ids)
    opened_at = datetime.fromisoformat(opened[0]["emitted_at"])
    scored_before = sum(datetime.fromisoformat(r["processing"]["enriched_at"]) <= opened_at
                        for r in got[enriched_topic] if r["id"] in burst_ids)
    # opened while most of the burst still waited for the model
    assert opened_at < last_scored and scored_before < BURST // 2, (opened[0], scored_before, last_scored)
    assert opened[0]["explanation"]["observed"] > opened[0]["explanation"]["expected"] * 5
    assert not [a for a in got[alerts_topic] if a["brand"] == OTHER], "an alert for the brand without a burst"
