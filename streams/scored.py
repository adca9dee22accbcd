"""The ``mentions.scored`` record: an enriched mention before its story, with what the story stage needs.

The enrich stage scores mentions wherever their (mention-keyed) partition lands; stories are per brand, so a
brand-keyed stage assigns them (:mod:`streams.storied`). Between the two travels the enriched record without
``story``, plus the raw key (for a dead letter that names the raw message) and the sentence embedding as the
exact float32 bytes in base64: story assignment compares the incoming embedding itself (only centroids are
quantised), so any rounding here could move a mention across the similarity threshold and change its story id.
"""
from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson

EMBEDDING_DTYPE = np.dtype("<f4")


def scored_record(enriched: dict[str, Any], raw_key: dict[str, Any], embedding: np.ndarray | None) -> bytes:
    """The message value: ``enriched`` (no ``story``) with ``raw_key`` and ``embedding`` (base64, or null)."""
    encoded = None
    if embedding is not None:
        encoded = base64.b64encode(np.ascontiguousarray(embedding, EMBEDDING_DTYPE).tobytes()).decode("ascii")
    return orjson.dumps({**enriched, "raw_key": raw_key, "embedding": encoded})


def read_scored(value: bytes) -> tuple[dict[str, Any], dict[str, Any], np.ndarray | None]:
    """The enriched record (``raw_key`` and ``embedding`` taken out), the raw key and the embedding."""
    record = orjson.loads(value)
    raw_key = record.pop("raw_key")
    encoded = record.pop("embedding")
    embedding = None if encoded is None else np.frombuffer(base64.b64decode(encoded), EMBEDDING_DTYPE)
    return record, raw_key, embedding
