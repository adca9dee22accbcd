"""Crisis detection in the stream, on the real broker with the real model: the sample's crisis opens one
incident, quiet brands raise nothing, and a worker killed mid-incident neither loses it nor opens a second."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from streams.tools.sample import CRISIS_BRAND, bursts, generate

from .workers import consume_until, produce

pytestmark = pytest.mark.integration

# Twelve hours of history. With only about five hours the detector's young-brand caution (a wide dispersion
# prior) delayed the opening by up to three buckets at some start times (measured with the real model).
HOURS = 12.0
# The history starts at 06:50 UTC yesterday, so every run sees the same mentions. Replayed offline (same
# detector, same model), starts 2 minutes apart from 06:50 to 07:00 and every three hours from 00:10 open the
# crisis in its first or second bucket. With a start at 00:10 this test cannot pass for another reason: the
# crisis falls at 09:00, the young brand's daily profile has not seen a morning yet, and the incident resolves
# only in the stream's last bucket, which a worker closes when later mentions arrive (there are none).


def by_brand(records: list[dict]) -> list[tuple[bytes, bytes]]:
    return [(r["brand"].encode(), orjson.dumps(r)) for r in records]


def test_restart_mid_incident_keeps_one_incident(broker, worker):
    start = datetime.now(timezone.utc).replace(hour=6, minute=50, second=0, microsecond=0) - timedelta(days=1)
    records = generate(start, hours=HOURS)
    crisis = next(b for b in bursts(start, hours=HOURS) if b.kind == "crisis")
    cut = crisis.start + timedelta(minutes=25)
    before = [r for r in records if r["created_at"] < cut.strftime("%Y-%m-%dT%H:%M:%S")]
    after = records[len(before):]
    alerts_topic = worker.topics["alerts"]

    def crisis_opened(got):
        return any(a["brand"] == CRISIS_BRAND and a["kind"] == "crisis" and a["event"] == "opened"
                   for a in got[alerts_topic])

    worker.start().wait_web()
    asyncio.run(produce(broker.url, worker.topics["raw"], by_brand(before)))
    got = asyncio.run(consume_until(broker.url, [alerts_topic], crisis_opened, timeout=300,
                                    on_idle=worker.assert_alive))
    assert crisis_opened(got), f"no crisis opened before the restart; alerts: {got[alerts_topic]}"
    worker.kill()

    worker.start().wait_web()
    asyncio.run(produce(broker.url, worker.topics["raw"], by_brand(after)))

    def crisis_resolved(got):
        return any(a["brand"] == CRISIS_BRAND and a["event"] == "resolved" for a in got[alerts_topic])

    got = asyncio.run(consume_until(broker.url, [alerts_topic], crisis_resolved, timeout=400,
                                    on_idle=worker.assert_alive))
    crisis_alerts = [a for a in got[alerts_topic] if a["brand"] == CRISIS_BRAND]
    opened_ids = {a["incident_id"] for a in crisis_alerts if a["event"] == "opened"}
    assert len(opened_ids) == 1, crisis_alerts
    (incident_id,) = opened_ids
    assert all(a["incident_id"] == incident_id for a in crisis_alerts), crisis_alerts
    lifecycle = [(a["event"], a["event_id"], a["at"], a["emitted_at"]) for a in crisis_alerts]
    assert lifecycle[-1][0] == "resolved", lifecycle
    opened = next(a for a in crisis_alerts if a["event"] == "opened")
    opened_at = datetime.fromisoformat(opened["at"])
    assert crisis.start <= opened_at <= crisis.start + timedelta(minutes=5), (opened["at"], crisis.start)
    assert opened["explanation"]["volume_ratio"] > 3
    assert opened["explanation"]["negative_share"] > opened["explanation"]["baseline_negative_share"]
    quiet = {a["brand"] for a in got[alerts_topic] if a["kind"] == "crisis"} - {CRISIS_BRAND}
    assert not quiet, f"crisis alerts for quiet brands: {quiet}"
