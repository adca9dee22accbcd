"""The stream and ``ascolta detect`` share their bucketing and closing code: the same enriched mentions, fed to
a real worker's detect stage on the real broker and to :func:`streams.detection.offline.detect_mentions`,
give the same alert events (explanations included), brand by brand."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from streams.contracts import format_rfc3339
from streams.detection.alert import alert_event
from streams.detection.detector import DetectorConfig
from streams.detection.offline import detect_mentions
from streams.tools.sample import CRISIS_BRAND, generate_labelled

from .workers import consume_until, produce

pytestmark = pytest.mark.integration

HOURS = 12.0  # the sample's crisis opens within this much history (see CRISIS_HOURS in test_hostile.py)
BUCKET_S = 300


def enriched_mentions(start: datetime) -> list[dict]:
    """The sample stream as the enrich stage would publish it, with the generator's true sentiment (no model
    in the loop: the test is about what happens after enrichment), then one closing mention per brand an hour
    after the end, so every partition's watermark passes every real bucket."""
    mentions = []
    for labelled in generate_labelled(start, hours=HOURS):
        score = {"negative": -0.8, "neutral": 0.0, "positive": 0.8}[labelled.sentiment]
        mentions.append({**labelled.record, "language": labelled.record.get("lang", "und"),
                         "sentiment": {"label": labelled.sentiment, "score": score}})
    closing_time = start + timedelta(hours=HOURS + 1, seconds=120)  # 2 minutes into its bucket: past lateness
    for brand in sorted({m["brand"] for m in mentions}):
        mentions.append({"id": f"closing-{brand}", "brand": brand, "source": "news", "text": "fine",
                         "created_at": format_rfc3339(closing_time), "language": "en",
                         "sentiment": {"label": "neutral", "score": 0.0}})
    return mentions


def comparable(events: list[dict]) -> dict[str, list[dict]]:
    by_brand: dict[str, list[dict]] = {}
    for event in events:
        by_brand.setdefault(event["brand"], []).append({k: v for k, v in event.items() if k != "emitted_at"})
    return by_brand


def test_stream_and_offline_raise_the_same_alert_events(broker, worker):
    start = datetime.now(timezone.utc).replace(hour=6, minute=50, second=0, microsecond=0) - timedelta(days=1)
    mentions = enriched_mentions(start)
    closing_bucket = int(datetime.fromisoformat(mentions[-1]["created_at"]).timestamp()) // BUCKET_S * BUCKET_S

    now = datetime.now(timezone.utc)
    offline = [
        alert_event(alert, BUCKET_S, now)
        for alert in detect_mentions(
            ((m, datetime.fromisoformat(m["created_at"]).timestamp()) for m in mentions),
            DetectorConfig(bucket_seconds=BUCKET_S),
        )
        if alert.decision.at.timestamp() < closing_bucket  # offline also judges the last bucket at end of file
    ]
    assert any(a["brand"] == CRISIS_BRAND and a["event"] == "opened" for a in offline), offline

    worker.start().wait_web()
    alerts_topic = worker.topics["alerts"]
    asyncio.run(produce(broker.url, worker.topics["enriched"],
                        [(m["brand"].encode(), orjson.dumps(m)) for m in mentions]))
    got = asyncio.run(consume_until(broker.url, [alerts_topic], lambda got: len(got[alerts_topic]) >= len(offline),
                                    timeout=300, on_idle=worker.assert_alive))
    assert comparable(got[alerts_topic]) == comparable(offline)
