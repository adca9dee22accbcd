"""Shared fixtures. The broker fixture is a real Tansu broker: tests talk the Kafka protocol to it."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.tools.broker import EmbeddedBroker, free_port


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A fresh in-memory Tansu broker on a free loopback port per test module (log in the tmp dir).

    Per module rather than per session: it starts in milliseconds, and the modules' topics, groups and
    changelogs (tens of thousands of records) no longer pile up in one broker's memory.
    """
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(port=free_port(), log_path=log_path) as embedded:
        yield embedded
