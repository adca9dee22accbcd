"""Shared fixtures. The broker fixture is a real Tansu broker: tests talk the Kafka protocol to it."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from streams.sentiment.classify import load_classifier
from streams.settings import Settings
from streams.tools.broker import EmbeddedBroker, free_port

TEXTS = Path(__file__).parent / "data" / "umsab_texts.jsonl"
CLASSES = ("negative", "neutral", "positive")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A fresh in-memory Tansu broker on a free loopback port per test module (log in the tmp dir).

    Per module rather than per session: it starts in milliseconds, and the modules' topics, groups and
    changelogs (tens of thousands of records) no longer pile up in one broker's memory.
    """
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(port=free_port(), log_path=log_path) as embedded:
        yield embedded


@pytest.fixture(scope="session")
def classifier():
    """The default model, loaded once for every module that labels texts with it."""
    return load_classifier("default", data_dir=Settings.from_environ().data_dir)


@pytest.fixture(scope="session")
def model_labels(classifier) -> dict[tuple[str, str], np.ndarray]:
    """(language, true class) -> the model's labels of the UMSAB texts (tests/data/umsab_texts.jsonl), as class
    indexes (0 negative, 2 positive): labelled once per session."""
    rows = [json.loads(line) for line in TEXTS.read_text(encoding="utf-8").splitlines()]
    predicted = classifier.classify([row["text"] for row in rows])
    pool: dict[tuple[str, str], list[int]] = {}
    for row, result in zip(rows, predicted):
        pool.setdefault((row["language"], row["label"]), []).append(CLASSES.index(result.label))
    return {key: np.array(labels) for key, labels in pool.items()}
