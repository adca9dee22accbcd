"""Per-stage lag (streams/lag.py): mentions not yet finished and seconds of event time, from what each stage
finished, without a broker."""
from __future__ import annotations

from datetime import UTC, datetime

import orjson

from streams.lag import (REPLAY_MARGIN_S, StageInput, StageLags, alert_latency, enriched_created_at,
                         envelope_created_at, raw_created_at)

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC).timestamp()


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(T0 + seconds, UTC).isoformat().replace("+00:00", "Z")


def lags() -> StageLags:
    return StageLags({
        "raw-a": StageInput("ingest", raw_created_at),
        "raw-b": StageInput("ingest", raw_created_at),
        "valid": StageInput("enrich", envelope_created_at),
        "enriched": StageInput("detect", enriched_created_at),
    })


def by_stage(result) -> dict:
    return {(lag.stage, lag.partition): (lag.mentions, lag.seconds) for lag in result}


def test_a_backlog_fetched_into_the_worker_counts_and_its_age_grows_while_it_waits():
    book = lags()
    book.finished("valid", 0, 99, orjson.dumps({"mention": {"created_at": stamp(0)}}), now=T0 + 2)
    # the consumer has fetched up to offset 4,000: its position says 0 behind, the stage is 3,900 behind
    result = by_stage(book.lags({("valid", 0): 4000}, {("valid", 0): 4000}, now=T0 + 30))
    assert result == {("enrich", 0): (3900, 30.0)}
    result = by_stage(book.lags({("valid", 0): 4000}, {("valid", 0): 4000}, now=T0 + 90))
    assert result == {("enrich", 0): (3900, 90.0)}


def test_a_caught_up_partition_keeps_how_late_its_last_mention_was():
    book = lags()
    book.finished("enriched", 1, 9, orjson.dumps({"created_at": stamp(0)}), now=T0 + 1.5)
    assert by_stage(book.lags({("enriched", 1): 10}, {}, now=T0 + 600)) == {("detect", 1): (0, 1.5)}


def test_stage_inputs_sum_per_partition_and_the_oldest_time_wins():
    book = lags()
    book.finished("raw-a", 0, 4, orjson.dumps({"created_at": stamp(50)}), now=T0 + 60)
    book.finished("raw-b", 0, 7, orjson.dumps({"created_at": stamp(10)}), now=T0 + 60)
    result = by_stage(book.lags({("raw-a", 0): 10, ("raw-b", 0): 9, ("other", 0): 100}, {}, now=T0 + 60))
    assert result == {("ingest", 0): (5 + 1, 50.0)}


def test_a_rejected_raw_message_moves_the_offset_but_keeps_the_last_mention_time():
    book = lags()
    book.finished("raw-a", 0, 0, orjson.dumps({"created_at": stamp(0)}), now=T0 + 1)
    book.lags({("raw-a", 0): 5}, {}, now=T0 + 1)
    book.finished("raw-a", 0, 1, b"{not json", now=T0 + 2)
    assert by_stage(book.lags({("raw-a", 0): 5}, {}, now=T0 + 20)) == {("ingest", 0): (3, 20.0)}


def test_unfinished_partitions_fall_back_to_the_position_and_revoked_ones_are_forgotten():
    book = lags()
    book.finished("valid", 1, 5, orjson.dumps({"mention": {"created_at": stamp(0)}}), now=T0)
    book.finished("valid", 1, 3, orjson.dumps({"mention": {"created_at": stamp(-50)}}), now=T0)  # redelivered
    result = by_stage(book.lags({("valid", 0): 40, ("valid", 1): 6}, {("valid", 0): 25}, now=T0 + 5))
    assert result == {("enrich", 0): (15, None), ("enrich", 1): (0, 0.0)}
    book.forget([("valid", 1)])
    result = by_stage(book.lags({("valid", 1): 6}, {("valid", 1): 2}, now=T0 + 5))
    assert result == {("enrich", 1): (4, None)}


def opened(at: float, emitted: float, event: str = "opened") -> dict:
    return {"event": event, "kind": "crisis", "at": stamp(at), "emitted_at": stamp(emitted)}


def test_alert_latency_is_publishing_minus_the_opening_bucket_start_and_replays_are_left_out():
    assert alert_latency(opened(0, 372.5), bucket_s=300, lateness_s=60) == 372.5
    assert alert_latency(opened(0, 372.5, "updated"), bucket_s=300, lateness_s=60) is None
    assert alert_latency(opened(0, 300 + 60 + REPLAY_MARGIN_S), bucket_s=300, lateness_s=60) == 3960
    assert alert_latency(opened(0, 300 + 60 + REPLAY_MARGIN_S + 1), bucket_s=300, lateness_s=60) is None
    # a replay of yesterday opens an incident seconds after it is read: a day "late", not a slow alert
    assert alert_latency(opened(0, 86_400), bucket_s=300, lateness_s=60) is None


def test_unfinished_counts_what_the_stage_has_not_finished_whatever_was_fetched():
    lags = StageLags({"mentions.valid": StageInput("enrich", envelope_created_at)})
    assert lags.unfinished("mentions.valid", 0, 10) is None  # nothing finished yet: the caller asks the consumer
    lags.finished("mentions.valid", 0, 4, None, 0.0)
    assert lags.unfinished("mentions.valid", 0, 10) == 5 and lags.unfinished("mentions.valid", 0, 5) == 0
