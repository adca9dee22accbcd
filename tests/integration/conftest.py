"""Fixtures for the integration tests: a real worker process on the session's real broker."""
from __future__ import annotations

import pytest

from .workers import WorkerProcess


@pytest.fixture
def worker(broker, tmp_path):
    """A worker with its own topics and consumer group; start it with ``worker.start().wait_web()``."""
    process = WorkerProcess(broker.url, tmp_path / "worker.log")
    yield process
    process.stop()
