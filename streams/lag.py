"""How far behind each stage is, in mentions and in seconds of event time, and how late an alert opened.

Plain bookkeeping, no Faust: :mod:`streams.metrics` records every message a stage has finished (Faust calls it
after the agent's loop body, or after a whole ``take_events`` batch, is done with the message) and reads the lag
on its timer. Why not the consumer's position: Faust fetches ahead into its buffers (thousands of messages per
partition), so "high watermark minus position" stays small while a backlog waits in the worker's memory.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import orjson

from .contracts import parse_rfc3339


REPLAY_MARGIN_S = 3600.0


def alert_latency(event: dict, bucket_s: float, lateness_s: float) -> float | None:
    """Seconds from the start of the bucket that opened an incident to its ``opened`` event being published
    (``emitted_at`` minus ``at``); None for other events and for replays of history: a live bucket is judged
    within bucket + lateness of its start, and an hour more (``REPLAY_MARGIN_S``) is still a backlog worth
    seeing, anything older is history replayed."""
    if event["event"] != "opened":
        return None
    latency = (parse_rfc3339(event["emitted_at"]) - parse_rfc3339(event["at"])).total_seconds()
    return latency if latency <= bucket_s + lateness_s + REPLAY_MARGIN_S else None


def raw_created_at(value: bytes) -> str:
    """``created_at`` of a raw mention (``mentions.raw``)."""
    return orjson.loads(value)["created_at"]


def envelope_created_at(value: bytes) -> str:
    """``created_at`` of a validated mention's envelope (``mentions.valid``)."""
    return orjson.loads(value)["mention"]["created_at"]


def enriched_created_at(value: bytes) -> str:
    """``created_at`` of an enriched or scored mention (``mentions.enriched``, ``mentions.scored``)."""
    return orjson.loads(value)["created_at"]


@dataclass(frozen=True)
class StageInput:
    """One stage's input topic and how to read a mention's ``created_at`` from one of its messages."""

    stage: str
    created_at: Callable[[bytes], str]


@dataclass
class _Progress:
    offset: int  # of the last message the stage finished
    value: bytes | None  # that message, parsed only when the lag is read (a few times a minute, not per message)
    finished_at: float  # wall clock when it was finished
    event_time: float | None = None  # created_at of the last mention finished that had a readable one
    event_finished_at: float = 0.0  # when that mention was finished


@dataclass(frozen=True)
class StageLag:
    """Lag of one stage on one partition number (summed over the stage's input topics)."""

    stage: str
    partition: int
    mentions: int
    seconds: float | None  # None until the stage has finished a mention with a readable created_at


class StageLags:
    """Per stage input topic and partition: the last message finished and the event time of the last mention."""

    def __init__(self, inputs: Mapping[str, StageInput]) -> None:
        self.inputs = dict(inputs)
        self._progress: dict[tuple[str, int], _Progress] = {}

    def finished(self, topic: str, partition: int, offset: int, value: bytes | None, now: float) -> None:
        """A stage is done with message ``offset`` of ``topic``/``partition``; other topics are ignored."""
        if topic not in self.inputs:
            return
        progress = self._progress.get((topic, partition))
        if progress is None:
            self._progress[(topic, partition)] = _Progress(offset, value, now)
        elif offset >= progress.offset:  # redelivered older messages do not move the stage back
            progress.offset, progress.value, progress.finished_at = offset, value, now

    def unfinished(self, topic: str, partition: int, log_end: int) -> int | None:
        """Messages of ``topic``/``partition`` before ``log_end`` the stage has not finished (fetched or not);
        None before it has finished any."""
        progress = self._progress.get((topic, partition))
        return None if progress is None else max(0, log_end - progress.offset - 1)

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Partitions this worker no longer owns: their lag is another worker's to report."""
        for key in partitions:
            self._progress.pop(key, None)

    def lags(self, log_ends: Mapping[tuple[str, int], int], positions: Mapping[tuple[str, int], int],
             now: float) -> list[StageLag]:
        """The lag of every stage input partition in ``log_ends`` (offset of the next record to be written).

        In mentions: the log end minus the offset after the last message finished; a partition with nothing
        finished yet falls back to the consumer's ``positions`` (what was fetched). In seconds: the wall clock
        minus the last finished mention's ``created_at`` while mentions wait; once the partition is caught up,
        how late that mention was when it was finished, so a quiet partition does not look ever later.
        """
        totals: dict[tuple[str, int], list] = {}
        for (topic, partition), log_end in log_ends.items():
            source = self.inputs.get(topic)
            if source is None:
                continue
            progress = self._progress.get((topic, partition))
            if progress is not None:
                waiting = max(0, log_end - progress.offset - 1)
            elif (topic, partition) in positions:
                waiting = max(0, log_end - positions[(topic, partition)])
            else:
                continue
            total = totals.setdefault((source.stage, partition), [0, None])
            total[0] += waiting
            seconds = self._seconds(progress, source, waiting, now) if progress is not None else None
            if seconds is not None and (total[1] is None or seconds > total[1]):
                total[1] = seconds
        return [StageLag(stage, partition, mentions, seconds)
                for (stage, partition), (mentions, seconds) in sorted(totals.items())]

    @staticmethod
    def _seconds(progress: _Progress, source: StageInput, waiting: int, now: float) -> float | None:
        if progress.value is not None:
            try:
                event_time = parse_rfc3339(source.created_at(progress.value)).timestamp()
            except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
                pass  # not a mention (a rejected raw message): the previous mention's time stands
            else:
                progress.event_time, progress.event_finished_at = event_time, progress.finished_at
            progress.value = None
        if progress.event_time is None:
            return None
        return max(0.0, (now if waiting else progress.event_finished_at) - progress.event_time)
