"""Fixes to faust-streaming 0.15.3 that exactness depends on, on any broker.

1. ``ProducerBuffer.flush`` (called before every offset commit) gives up after 0.1 s without a message
leaving the buffer, and does not count a message that left the buffer but is not yet handed to the
Kafka producer. Under load the consumer then commits offsets whose table changelog records are still
in memory; a crash at that moment loses table updates (measured: windowed counts short by a few per
bucket after SIGKILL). The patched flush waits until the buffer is empty and nothing is in flight.

2. After a rebalance or a restart, ``Recovery`` resumes the stream partitions, seeks them to the committed
offsets and only then calls ``flow_control.resume()``, which empties every stream's queue. Records fetched
while the seek was in progress are delivered into those queues and then thrown away, unacknowledged; the
seek has meanwhile reset the consumer's read offset, so the jump to the next delivered record looks like
a gap in the log, which Faust counts as processed and commits. Measured: a SIGKILL and restart lost the
records that followed the first enrich batch (149, then 22 mentions) in 2 of 5 runs. The patched recovery lets
the queues be emptied first and seeks while the stream partitions are still paused, then resumes them, so
the first record any stream sees is the committed one. A gap that still shows up is logged.

3. Faust fetches with its live set of active partitions; aiokafka reads an empty set as "every
partition", so records of paused partitions came back, were dropped by Faust, and their position was
lost. Each fetch now uses a snapshot of the set taken when it starts (see _fetch_records_of_a_snapshot).

4. Waiting for the producer buffer (the commit's flush of 1., and the back-pressure every stream message
waits on, ``wait_until_ebb``) woke at every message sent, each wake a ``wait_for`` with its own task and timer.
A boundary that writes tens of thousands of changelog records spent more CPU in those wakes than in the sends
(profiled at 10,000 brands, the detect stage: 95,000 resumes of the commit's flush and 110,000 back-pressure
waits for 137,000 records sent). Both now look at the buffer every ``DRAIN_POLL_S``, and back-pressure starts
at ``BUFFER_MAX_MESSAGES`` buffered records rather than 100.
"""
from __future__ import annotations

import asyncio
import logging
import time

from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.producer import ProducerBuffer

log = logging.getLogger(__name__)

# A commit waits this long at most for the buffer to drain; past it the commit goes ahead as Faust's own
# flush would (and says so), rather than stalling the consumer behind a send that never completes.
FLUSH_PATIENCE_S = 30.0
DRAIN_POLL_S = 0.005  # how often a waiting flush or a back-pressured stream looks at the producer buffer again
BUFFER_MAX_MESSAGES = 5_000  # buffered records from which a stream waits (Faust's 100 stalled it every few writes)
EBB_PATIENCE_S = 0.1  # a back-pressured stream goes on after this long without a record leaving (Faust's)

_original_send_pending = ProducerBuffer._send_pending


async def _send_pending_counted(self: ProducerBuffer, fut) -> None:
    self._ascolta_in_flight = getattr(self, "_ascolta_in_flight", 0) + 1
    try:
        await _original_send_pending(self, fut)
    finally:
        self._ascolta_in_flight -= 1


async def _flush_until_drained(self: ProducerBuffer) -> None:
    """Return when every buffered message has been handed to the Kafka producer (or after FLUSH_PATIENCE_S)."""
    deadline = time.monotonic() + FLUSH_PATIENCE_S
    while self.size or getattr(self, "_ascolta_in_flight", 0):
        if time.monotonic() > deadline:
            log.warning("producer buffer not drained after %.0f s (%d buffered, %d in flight): committing anyway",
                        FLUSH_PATIENCE_S, self.size, getattr(self, "_ascolta_in_flight", 0))
            return
        if self.state != "running":
            raise RuntimeError("Cannot flush: Producer not Running")
        await asyncio.sleep(DRAIN_POLL_S)


async def _wait_until_ebb_polling(self: ProducerBuffer) -> None:
    """Faust's back-pressure: past ``max_messages`` buffered records, wait until that many have left the buffer,
    or until none has left for ``EBB_PATIENCE_S``."""
    size = self.size
    if size <= self.max_messages:
        return
    target, progress_at = size - self.max_messages, time.monotonic()
    while size > target:
        await asyncio.sleep(DRAIN_POLL_S)
        now, previous, size = time.monotonic(), size, self.size
        if size < previous:
            progress_at = now
        elif now - progress_at > EBB_PATIENCE_S:
            return


_original_fetch_records = AIOKafkaConsumerThread._fetch_records
_original_resume_partitions = Consumer.resume_partitions
_original_perform_seek = Consumer.perform_seek
_original_add_gap = Consumer._add_gap


def _resume_partitions_unless_deferred(self: Consumer, tps) -> None:
    deferred = getattr(self, "_ascolta_deferred_resume", None)
    if deferred is None:
        _original_resume_partitions(self, tps)
    else:
        deferred.update(tps)


async def _perform_seek_unless_deferred(self: Consumer) -> None:
    if getattr(self, "_ascolta_deferred_resume", None) is None:
        await _original_perform_seek(self)


def _seek_streams_after_queues_cleared(resume_method):
    """Run Faust's resume step with the stream partitions kept paused, then seek them and resume them."""

    async def resume_then_seek(self: Recovery, generation_id: int = 0) -> None:
        consumer = self.app.consumer
        deferred: set = set()
        consumer._ascolta_deferred_resume = deferred
        try:
            await resume_method(self, generation_id=generation_id)
        finally:
            consumer._ascolta_deferred_resume = None
        if deferred and self.app.consumer_generation_id == generation_id:
            await _original_perform_seek(consumer)
            _original_resume_partitions(consumer, deferred)
            log.info("stream partitions sought to their committed offsets and resumed (%d)", len(deferred))
        elif deferred:
            log.info("not resuming %d stream partitions: generation %s is over, a new rebalance follows",
                     len(deferred), generation_id)

    return resume_then_seek


async def _fetch_records_of_a_snapshot(self, consumer, active_partitions, timeout=None, max_records=None):
    """Fetch for the partitions active when the fetch starts, never for "all of them".

    Faust passes its live set of active partitions, and aiokafka reads an empty set as "every partition".
    When the set empties during the wait (recovery pausing the changelogs), aiokafka returned records of
    paused partitions, Faust dropped them as not active, and their position had already moved on: after a
    restart a worker then never saw the alerts waiting for it (2 of 4 notify restart runs once fix 2 was in).
    """
    if active_partitions is not None:  # None: a client-only app, every assigned partition as Faust means it
        active_partitions = frozenset(active_partitions)
        if not active_partitions:
            return {}
    return await _original_fetch_records(self, consumer, active_partitions, timeout=timeout, max_records=max_records)


async def _add_gap_logged(self: Consumer, tp, offset_from: int, offset_to: int) -> None:
    log.warning("offsets %d..%d of %s[%d] were never delivered to a stream; Faust counts them as processed",
                offset_from, offset_to, tp.topic, tp.partition)
    await _original_add_gap(self, tp, offset_from, offset_to)


def apply() -> None:
    ProducerBuffer._send_pending = _send_pending_counted
    ProducerBuffer.flush = _flush_until_drained
    ProducerBuffer.wait_until_ebb = _wait_until_ebb_polling
    ProducerBuffer.max_messages = BUFFER_MAX_MESSAGES
    AIOKafkaConsumerThread._fetch_records = _fetch_records_of_a_snapshot
    Consumer.resume_partitions = _resume_partitions_unless_deferred
    Consumer.perform_seek = _perform_seek_unless_deferred
    Consumer._add_gap = _add_gap_logged
    Recovery._resume_streams = _seek_streams_after_queues_cleared(Recovery._resume_streams)
    Recovery.on_recovery_completed = _seek_streams_after_queues_cleared(Recovery.on_recovery_completed)
