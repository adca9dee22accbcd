"""Fix 4 of ``streams/faust_fixes.py`` on Faust's own ``ProducerBuffer``: a stream's back-pressure and the
commit's flush poll the buffer, and still wait exactly as long as they must. The buffer here is Faust's class
with its real queue; a task stands in for the Kafka producer, taking records off the queue at a set pace."""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
from faust.transport.producer import ProducerBuffer

from streams import faust_fixes


@pytest.fixture(autouse=True)
def fixes_applied():
    faust_fixes.apply()


def buffer_holding(records: int) -> ProducerBuffer:
    buffer = ProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))
    for n in range(records):
        buffer.pending.put_nowait(n)
    return buffer


async def send_every(buffer: ProducerBuffer, seconds: float, records: int | None = None) -> None:
    """The sender's side: one record off the queue every ``seconds`` (``records`` of them, or all)."""
    sent = 0
    while not buffer.pending.empty() and (records is None or sent < records):
        await asyncio.sleep(seconds)
        buffer.pending.get_nowait()
        sent += 1


async def test_back_pressure_starts_at_the_raised_bound_and_waits_until_that_many_records_have_left():
    assert ProducerBuffer.max_messages == faust_fixes.BUFFER_MAX_MESSAGES
    calm = buffer_holding(faust_fixes.BUFFER_MAX_MESSAGES)
    waiting = calm.wait_until_ebb()
    with pytest.raises(StopIteration):  # at the bound, not past it: returns without suspending once
        waiting.send(None)

    full = buffer_holding(faust_fixes.BUFFER_MAX_MESSAGES + 50)
    full.max_messages = 20  # Faust's semantics at a small bound: wait until 20 records have left
    sender = asyncio.create_task(send_every(full, 0.001))
    await full.wait_until_ebb()
    sender.cancel()
    left = faust_fixes.BUFFER_MAX_MESSAGES + 50 - full.size
    assert 20 <= left < 20 + 40, left  # it went on once 20 had left (give or take a few polls)


async def test_back_pressure_gives_up_after_its_patience_when_nothing_leaves():
    stuck = buffer_holding(faust_fixes.BUFFER_MAX_MESSAGES + 1)
    started = time.monotonic()
    await stuck.wait_until_ebb()
    waited = time.monotonic() - started
    assert faust_fixes.EBB_PATIENCE_S <= waited < 5.0 and stuck.size == faust_fixes.BUFFER_MAX_MESSAGES + 1


async def test_the_commits_flush_waits_until_the_buffer_is_empty_and_nothing_is_in_flight():
    buffer = buffer_holding(30)
    buffer._started.set()  # the Service's state is "running", as while the producer runs (its sender is the task below)
    buffer._ascolta_in_flight = 1  # a record taken off the queue, not yet handed to the Kafka producer
    sender = asyncio.create_task(send_every(buffer, 0.002))

    async def hand_over_later():
        await sender
        await asyncio.sleep(0.05)
        buffer._ascolta_in_flight = 0

    handing = asyncio.create_task(hand_over_later())
    await buffer.flush()
    assert buffer.size == 0 and buffer._ascolta_in_flight == 0
    await handing
