"""Stories through the real broker and a real worker with the default model: copies of one post share one
story id, a restarted worker keeps the ids (its story state comes back from the changelog), and the enriched
records carrying ``story`` validate against the schema."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from streams.contracts import validate

from .mentions import rfc3339
from .workers import consume_until, produce

pytestmark = pytest.mark.integration

ORIGINAL = "Caffè Aurora knew about the contamination in the oat milk and kept selling it for weeks? Disgusting."


def mention(i: int, text: str, at: datetime, author: str) -> dict:
    return {"id": f"s-{i}", "brand": "Caffè Aurora", "source": "twitter", "text": text, "created_at": rfc3339(at),
            "author": {"id": author, "handle": author, "followers": 100 + i}, "url": f"https://example.org/s/{i}"}


def enriched_by_id(broker, worker, ids: set[str]) -> dict[str, dict]:
    def done(got):
        return {r["id"] for r in got[worker.topics["enriched"]]} >= ids

    got = asyncio.run(consume_until(broker.url, [worker.topics["enriched"]], done, timeout=300,
                                    on_idle=worker.assert_alive))
    return {r["id"]: r for r in got[worker.topics["enriched"]] if r["id"] in ids}


def send(broker, worker, records: list[dict]) -> None:
    """Keyed by brand, as collectors key the raw topic."""
    asyncio.run(produce(broker.url, worker.topics["raw"], [(b"aurora", orjson.dumps(r)) for r in records]))


def test_copies_share_a_story_and_a_restart_keeps_the_ids(broker, worker):
    start = datetime.now(UTC) - timedelta(minutes=30)
    first = [
        mention(0, ORIGINAL, start, "anna"),
        mention(1, f"RT @anna: {ORIGINAL}", start + timedelta(minutes=1), "bot1"),
        mention(2, ORIGINAL[:70] + "…", start + timedelta(minutes=2), "bot2"),
        mention(3, f"{ORIGINAL} 😡😡 #boycott @CaffeAurora https://t.co/x1", start + timedelta(minutes=3), "bot3"),
        mention(4, "Caffè Aurora opens a new roastery in Turin with solar panels and a zero-waste kitchen.",
                start + timedelta(minutes=4), "news"),
    ]
    worker.start().wait_web()
    # The original is out before its copies: mentions.valid is keyed by mention, so copies sent at the same
    # moment may be scored on other partitions before it (they would share its story, another first_id).
    send(broker, worker, first[:1])
    enriched_by_id(broker, worker, {"s-0"})
    send(broker, worker, first[1:])
    got = enriched_by_id(broker, worker, {r["id"] for r in first})
    for record in got.values():
        assert validate("enriched", record) == [], record
    original = got["s-0"]["story"]
    assert original["is_copy"] is False
    for i in (1, 2, 3):
        story = got[f"s-{i}"]["story"]
        assert story["id"] == original["id"], (i, story)
        assert story["is_copy"] is True and story["copy_of"] == "s-0", (i, story)
    assert got["s-4"]["story"]["id"] != original["id"]
    assert got["s-4"]["story"]["is_copy"] is False

    worker.stop()
    worker.start().wait_web()
    later = [mention(5, f"RT @bot3: {ORIGINAL}", start + timedelta(minutes=6), "carla")]
    send(broker, worker, later)
    record = enriched_by_id(broker, worker, {"s-5"})["s-5"]
    assert validate("enriched", record) == [], record
    assert record["story"]["id"] == original["id"]
    assert record["story"]["copy_of"] == "s-0"
    assert record["story"]["mentions"] == 5  # the restored state counted the four before the restart
