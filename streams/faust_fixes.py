"""Fixes to faust-streaming 0.15.3 that exactness depends on, on any broker.

``ProducerBuffer.flush`` (called before every offset commit) gives up after 0.1 s without a message
leaving the buffer, and does not count a message that left the buffer but is not yet handed to the
Kafka producer. Under load the consumer then commits offsets whose table changelog records are still
in memory; a crash at that moment loses table updates (measured: windowed counts short by a few per
bucket after SIGKILL). The patched flush waits until the buffer is empty and nothing is in flight.
"""
from __future__ import annotations

import asyncio
import logging
import time

from faust.transport.producer import ProducerBuffer

log = logging.getLogger(__name__)

# A commit waits this long at most for the buffer to drain; past it the commit goes ahead as Faust's own
# flush would (and says so), rather than stalling the consumer behind a send that never completes.
FLUSH_PATIENCE_S = 30.0

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
        self.message_sent.clear()
        try:
            await asyncio.wait_for(self.message_sent.wait(), timeout=1.0)
        except asyncio.TimeoutError:
            continue  # re-check: the event may have fired between the test and clear()


def apply() -> None:
    ProducerBuffer._send_pending = _send_pending_counted
    ProducerBuffer.flush = _flush_until_drained
