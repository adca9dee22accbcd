"""Shared fixtures. The broker fixture is a real Tansu broker: tests talk the Kafka protocol to it."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.broker import EmbeddedBroker, free_port


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One in-memory Tansu broker on a free loopback port for the whole session (log in the tmp dir)."""
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(port=free_port(), log_path=log_path) as embedded:
        yield embedded
