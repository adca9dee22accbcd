"""Fixes to faust-streaming 0.15.3 that exactness depends on, on any broker.

``ProducerBuffer.flush`` (called before every offset commit) gives up after 0.1 s without a message
leaving the buffer, and does not count a message that left the buffer but is not yet handed to the
Kafka producer. Under load the consumer then commits offsets whose table changelog records are still
in memory; a crash at that moment loses table updates (measured: windowed counts short by a few per
bucket after SIGKILL). The patched flush waits until the buffer is empty and nothing is in flight.
"""
from __future__ import annotations

import asyncio

from faust.transport.producer import ProducerBuffer

_original_send_pending = ProducerBuffer._send_pending


async def _send_pending_counted(self: ProducerBuffer, fut) -> None:
    self._ascolta_in_flight = getattr(self, "_ascolta_in_flight", 0) + 1
    try:
        await _original_send_pending(self, fut)
    finally:
        self._ascolta_in_flight -= 1


async def _flush_until_drained(self: ProducerBuffer) -> None:
    """Return only when every buffered message has been handed to the Kafka producer."""
    while self.size or getattr(self, "_ascolta_in_flight", 0):
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
