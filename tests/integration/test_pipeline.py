"""End to end on the real broker with the real default model: reconcile, restart, metrics."""
from __future__ import annotations

import asyncio
import base64
import collections
import re
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from streams.contracts import validate
from streams.normalise import dedup_key

from .mentions import invalid_messages, valid_mentions
from .workers import WorkerProcess, by_partition, consume_until, create_topics, group, produce, wait_until_ready

pytestmark = pytest.mark.integration

BUCKET_S = 300


def keyed(records: list[dict]) -> list[tuple[bytes, bytes]]:
    return [(r["id"].encode(), orjson.dumps(r)) for r in records]


def test_valid_and_invalid_mentions_reconcile(broker, worker):
    now = datetime.now(UTC)
    valid = valid_mentions(2500, start=now - timedelta(hours=6), seconds=6 * 3600)
    bad = invalid_messages(500, valid, now=now)
    duplicates = [(k, v, r) for k, v, r in bad if r == "duplicate"]
    others = [(k, v, r) for k, v, r in bad if r != "duplicate"]
    expected_reason = {k.decode(): r for k, v, r in bad}

    # Bad input interleaved with good input; duplicates only after their originals went through.
    stream = keyed(valid)
    for i, (key, value, _) in enumerate(others):
        stream.insert(i * 11, (key, value))
    worker.start().wait_web()
    asyncio.run(produce(broker.url, worker.topics["raw"], stream))
    topics = [worker.topics["enriched"], worker.topics["deadletter"]]
    valid_ids = {r["id"] for r in valid}

    def first_phase_done(got):
        return {r["id"] for r in got[worker.topics["enriched"]]} >= valid_ids

    asyncio.run(consume_until(broker.url, topics, first_phase_done, timeout=420, on_idle=worker.assert_alive))
    asyncio.run(produce(broker.url, worker.topics["raw"], [(k, v) for k, v, _ in duplicates]))

    def all_done(got):
        return first_phase_done(got) and len(got[worker.topics["deadletter"]]) >= len(bad)

    got = asyncio.run(consume_until(broker.url, topics, all_done, timeout=180, on_idle=worker.assert_alive))
    enriched, deadletters = got[worker.topics["enriched"]], got[worker.topics["deadletter"]]

    assert {r["id"] for r in enriched} == valid_ids
    for record in enriched:
        assert validate("enriched", record) == [], record
    reasons = {}
    for record in deadletters:
        assert validate("deadletter", record) == [], record
        reasons[base64.b64decode(record["source"]["key_base64"]).decode()] = record
    assert set(reasons) == set(expected_reason)
    wrong = {k: (reasons[k]["reason"], expected) for k, expected in expected_reason.items() if reasons[k]["reason"] != expected}
    assert not wrong, wrong
    for key, record in reasons.items():
        assert record["detail"], key
        assert record["source"]["topic"] == worker.topics["raw"]
    # in = out + dead-lettered, by raw offsets
    raw_in = len(valid) + len(bad)
    out = {(r["processing"]["source_partition"], r["processing"]["source_offset"]) for r in enriched}
    dead = {(r["source"]["partition"], r["source"]["offset"]) for r in deadletters}
    assert len(out) + len(dead) == raw_in and not out & dead
    # the model really classified: clear-cut texts mostly get the obvious label (the model is not perfect)
    by_id = {r["id"]: r for r in enriched}
    labels_of = collections.defaultdict(collections.Counter)
    for source in valid:
        template = "negative" if ("pessimo" in source["text"] or "useless" in source["text"]) else (
            "positive" if "Loving the new app" in source["text"] else None)
        if template:
            labels_of[template][by_id[source["id"]]["sentiment"]["label"]] += 1
    for label, counts in labels_of.items():
        assert counts[label] >= 0.7 * sum(counts.values()), (label, counts)

def scored_here(worker: WorkerProcess) -> float:
    """Texts this worker's enrich stage gave the model (the sum of its batch sizes)."""
    text = worker.get("/metrics").decode()
    return float(re.search(r"^ascolta_enrich_batch_size_mentions_sum (\S+)$", text, re.MULTILINE).group(1))


def test_one_brands_burst_is_scored_by_every_worker(broker, tmp_path):
    """Issue 18: a burst on one brand (one raw key, so one raw partition) lands on every partition of the
    mention-keyed mentions.valid and both workers score a share of it; all of it reaches mentions.enriched, on
    the brand's one partition."""
    brand = "Caffè Aurora"
    workers = group(broker.url, tmp_path, 2, "2")
    first, second = workers
    try:
        first.start()
        wait_until_ready(first)
        second.start()
        wait_until_ready(second)
        wait_until_ready(first, times=2)  # the partitions are shared out
        now = datetime.now(UTC)
        burst = [{**r, "brand": brand} for r in valid_mentions(300, start=now - timedelta(minutes=10), seconds=600,
                                                              seed=5)]
        asyncio.run(produce(broker.url, first.topics["raw"], [(brand.encode(), orjson.dumps(r)) for r in burst]))
        ids = {r["id"] for r in burst}
        enriched = first.topics["enriched"]
        got = asyncio.run(consume_until(broker.url, [enriched], lambda got: {r["id"] for r in got[enriched]} >= ids,
                                        timeout=180, on_idle=lambda: [w.assert_alive() for w in workers]))
        assert {r["id"] for r in got[enriched]} == ids
        valid = asyncio.run(by_partition(broker.url, first.topics["valid"], 2))
        assert all(valid.values()), {p: len(v) for p, v in valid.items()}
        scored = [scored_here(worker) for worker in workers]
        assert min(scored) > 0 and sum(scored) >= len(burst), scored
        on_enriched = asyncio.run(by_partition(broker.url, enriched, 2))
        assert sorted(len(values) for values in on_enriched.values())[0] == 0, "the brand's order needs one partition"
        # each mention's arrival, for the detect stage: on the brand's partition, in the raw order
        arrivals = asyncio.run(by_partition(broker.url, first.topics["arrivals"], 2))
        assert [orjson.loads(v) for v in arrivals[0] + arrivals[1]] == [
            {"brand": brand, "created_at": r["created_at"], "key": dedup_key(r)} for r in burst]
    finally:
        for worker in workers:
            worker.stop()


def true_counts(records: list[dict]) -> dict[str, dict[str, int]]:
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in records:
        moment = datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")).timestamp()
        counts[r["brand"]][str(int(moment // BUCKET_S) * BUCKET_S)] += 1
    return {brand: dict(c) for brand, c in counts.items()}


def worker_counts(worker: WorkerProcess) -> dict[str, dict[str, int]]:
    windows = orjson.loads(worker.get("/ascolta/windows"))
    return {brand: {**w["closed"], **w["open"]} for brand, w in windows.items()}


METRIC_FAMILIES = [
    "ascolta_mentions_received_total",
    "ascolta_mentions_total",
    "ascolta_deadlettered_total",
    "ascolta_enrich_batch_size_mentions",
    "ascolta_enrich_batch_duration_seconds",
    "ascolta_enrich_latency_seconds",
    "ascolta_detector_observed_mentions",
    "ascolta_detector_expected_mentions",
    "ascolta_detector_severity",
    "ascolta_consumer_lag_messages",
]


def test_metrics_endpoint_exposes_the_pipeline_families(broker, worker):
    now = datetime.now(UTC)
    valid = valid_mentions(300, start=now - timedelta(hours=2), seconds=2 * 3600, seed=3)
    worker.start().wait_web()
    asyncio.run(produce(broker.url, worker.topics["raw"], keyed(valid) + [(b"bad", b"{not json")]))
    asyncio.run(consume_until(broker.url, [worker.topics["enriched"]],
                              lambda got: len(got[worker.topics["enriched"]]) >= len(valid), timeout=240,
                              on_idle=worker.assert_alive))
    text = ""
    for _ in range(20):
        text = worker.get("/metrics").decode()
        if all(re.search(rf"^{family}(_bucket|_count)?{{", text, re.MULTILINE) for family in METRIC_FAMILIES):
            break
        time.sleep(1)
    missing = [f for f in METRIC_FAMILIES if not re.search(rf"^{f}(_bucket|_count)?{{", text, re.MULTILINE)]
    assert not missing, missing
    assert re.search(r'^ascolta_deadlettered_total\{reason="invalid_json",stage="ingest"\} 1\.0$', text, re.MULTILINE)
    received = sum(float(v) for v in re.findall(r"^ascolta_mentions_received_total\{[^}]*\} (\S+)$", text, re.MULTILINE))
    assert received == len(valid) + 1


@pytest.mark.parametrize("how", ["list", "pattern"])
def test_several_raw_topics_by_list_or_pattern(broker, worker, how):
    suffix = worker.topics["raw"]
    topics = [f"{suffix}.posts", f"{suffix}.reviews"]
    if how == "list":
        worker.env["ASCOLTA_RAW_TOPICS"] = ",".join(topics)
    else:
        worker.env["ASCOLTA_RAW_TOPIC_PATTERN"] = re.escape(suffix) + r"\..*"
        asyncio.run(create_topics(broker.url, topics))  # a pattern subscribes to topics that exist
    now = datetime.now(UTC)
    valid = valid_mentions(100, start=now - timedelta(hours=1), seconds=3600, seed=4)
    worker.start().wait_web()
    asyncio.run(produce(broker.url, topics[0], keyed(valid[:50])))
    asyncio.run(produce(broker.url, topics[1], keyed(valid[50:])))
    got = asyncio.run(consume_until(broker.url, [worker.topics["enriched"]],
                                    lambda got: len(got[worker.topics["enriched"]]) >= len(valid), timeout=180,
                                    on_idle=worker.assert_alive))
    enriched = got[worker.topics["enriched"]]
    assert {r["id"] for r in enriched} == {r["id"] for r in valid}
    assert {r["processing"]["source_topic"] for r in enriched} == set(topics)
