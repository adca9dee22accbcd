"""Workarounds for Tansu's Kafka-protocol gaps (docs/tansu.md lists every gap and what we do about it).

Only for the embedded Tansu broker: the caller switches these on (``Settings.on_tansu``); against a
real Kafka cluster nothing here is used.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables.recovery import Recovery

logger = logging.getLogger(__name__)

#: Faust settings a worker needs on Tansu (pass them to ``faust.App``). Why each one: docs/tansu.md.
FAUST_SETTINGS: Mapping[str, Any] = {
    # Tansu makes a joining member wait session_timeout / 2: 6 s gives a ~5 s start instead of ~30 s.
    "broker_session_timeout": 6,
    "broker_heartbeat_interval": 1,
    # InitProducerId fails on Tansu: no idempotent or transactional producer, so no exactly-once.
    "processing_guarantee": "at_least_once",
    # The embedded broker is a laptop setup: keep the worker's web view (and /metrics) off the network.
    "web_bind": "127.0.0.1",
}

_TP = TypeVar("_TP", bound=tuple)


async def end_offsets(
    bootstrap: str | list[str], tps: Iterable[_TP], *, timeout: float = 10.0
) -> dict[_TP, int]:
    """Log-end offset (offset of the next record) per partition, read from a Fetch response.

    Why: Tansu answers ListOffsets(latest) with the first offset of the newest batch + 1, not the log
    end, so aiokafka's ``end_offsets``/``seek_to_end`` and any lag built on them are wrong. The high
    watermark that Fetch responses carry is right, so a throwaway consumer fetches every partition
    once (from that almost-end position: little data) and reads it back. Keys are returned as given
    (faust ``TP`` or aiokafka ``TopicPartition``).
    """
    wanted = {TopicPartition(tp[0], tp[1]): tp for tp in tps}
    if not wanted:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        fetch_max_wait_ms=50,
        client_id="ascolta-end-offsets",
    )
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            highwaters = {tp: consumer.highwater(tp) for tp in wanted}
            missing = [tp for tp, highwater in highwaters.items() if highwater is None]
            if not missing:
                return {wanted[tp]: highwater for tp, highwater in highwaters.items()}
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no Fetch response within {timeout}s for {sorted(missing)}")
            await consumer.getmany(*missing, timeout_ms=100)
    finally:
        await consumer.stop()


def bootstrap_servers(app: faust.App) -> list[str]:
    """``host:port`` list of the app's consumer brokers, for a side-channel aiokafka client."""
    return [f"{url.host}:{url.port or 9092}" for url in app.conf.broker_consumer]


class _FetchHighwaters:
    """Stands in for the consumer in ``Recovery._build_highwaters``: the only method it calls."""

    def __init__(self, bootstrap: list[str]) -> None:
        self._bootstrap = bootstrap

    async def highwaters(self, *tps: Any) -> Mapping[Any, int]:
        return await end_offsets(self._bootstrap, tps)


class FetchHighwaterRecovery(Recovery):
    """Faust table recovery that takes changelog high-water marks from Fetch responses.

    Without this, recovery on Tansu stops at the start of each changelog's newest batch and the
    table restarts missing the updates in that batch.
    """

    async def _build_highwaters(self, consumer: Any, tps: Any, destination: Any, title: str) -> None:
        await super()._build_highwaters(_FetchHighwaters(bootstrap_servers(self.app)), tps, destination, title)


def apply_workarounds(app: faust.App) -> None:
    """Make a Faust app correct on Tansu. Call once, before the worker starts, only on Tansu."""
    if app.conf.processing_guarantee.value == "exactly_once":
        raise ValueError("Tansu cannot do exactly_once (InitProducerId fails): use processing_guarantee='at_least_once'")
    if app.conf.broker_session_timeout > 10:
        logger.warning(
            "broker_session_timeout=%ss: on Tansu a worker waits half of it to join its group; use %s",
            app.conf.broker_session_timeout,
            FAUST_SETTINGS["broker_session_timeout"],
        )
    tables = app.tables
    if isinstance(tables._recovery, FetchHighwaterRecovery):
        return
    if tables._recovery is not None:  # created when the worker started: too late to swap
        raise RuntimeError("apply_workarounds must run before the worker starts (table recovery already exists)")
    # TableManager builds a plain Recovery lazily from ``_recovery``; pre-seeding it is the hook.
    # No loop passed: like the TableManager itself, it binds to the worker's loop when started.
    tables._recovery = FetchHighwaterRecovery(app, tables, beacon=tables.beacon)
    logger.info("Tansu workarounds on: changelog recovery uses Fetch high watermarks")
