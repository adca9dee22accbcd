"""``ascolta stories FILE``: mention JSON lines in, the same mentions out in input order, each with its ``story``.

The enrich stage's code on a file: the same :class:`~.assign.StoryBook` and the same sentence embeddings
(the default sentiment model's pooled output, which also labels the mentions' sentiment there). With
``embedder=None`` only copies and quotes group (no model, much faster). A line that is not a mention object
becomes ``{"error": ..., "line": N}`` at its place, so output line N is always input line N.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import BinaryIO

import numpy as np
import orjson

from ..normalise import model_text
from .assign import StoryBook

log = logging.getLogger(__name__)

BATCH_LINES = 256
REQUIRED = ("id", "brand", "text", "created_at")


def _mention(line: str) -> dict | str:
    """The mention on one line, or why there is none."""
    try:
        mention = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        return f"not JSON: {error}"
    if not isinstance(mention, dict):
        return "not a JSON object"
    missing = [name for name in REQUIRED if not isinstance(mention.get(name), str)]
    if missing:
        return f"missing or not a string: {', '.join(missing)}"
    return mention


def assign_file(lines: Iterable[str], out: BinaryIO, embedder: Callable[[list[str]], np.ndarray] | None,
                progress: Callable[[int], None] = lambda done: None) -> tuple[int, int]:
    """Write every line's mention with its ``story`` (or an error object) to ``out``; returns (mentions, errors)."""
    book = StoryBook({})
    done = errors = 0
    batch: list[dict | str] = []

    def flush() -> None:
        nonlocal done, errors
        mentions = [m for m in batch if isinstance(m, dict)]
        vectors = embedder([model_text(m["text"]) for m in mentions]) if embedder and mentions else None
        row = 0
        for number, item in enumerate(batch, start=done + errors + 1):
            if isinstance(item, str):
                out.write(orjson.dumps({"error": item, "line": number}) + b"\n")
                errors += 1
                continue
            item["story"] = book.assign(item, None if vectors is None else vectors[row])
            row += 1
            out.write(orjson.dumps(item) + b"\n")
        done += len(mentions)
        batch.clear()
        out.flush()
        progress(done)

    for line in lines:
        batch.append(_mention(line.rstrip("\r\n")))
        if len(batch) >= BATCH_LINES:
            flush()
    if batch:
        flush()
    return done, errors


def reporter(every_s: float = 5.0) -> Callable[[int], None]:
    """Progress on the log (stderr) at most every ``every_s`` seconds."""
    started = last = time.monotonic()

    def report(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= every_s:
            last = now
            log.info("stories: %d mentions in %.0f s (%.0f/s)", done, now - started, done / max(now - started, 1e-9))

    return report
