"""Mention dead letters: the one place that builds and sends them, and the guard that makes every message count.

The principle: a raw message reaches ``mentions.enriched`` or ``mentions.deadletter`` with a reason. A record
the broker refuses would break it, so every part that comes from outside is bounded here (key, original
value, detail), keeping the record under the broker's default 1 MiB message limit whatever came in. And an
unexpected exception while handling one message must not skip it: :func:`guard` dead-letters that message
as ``internal_error`` and the agent goes on with the next one.

The record builders are pure (unit-tested without a broker); the senders import the Faust app lazily so that
importing this module does not create one.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any

import orjson

from .contracts import format_rfc3339
from .normalise import Rejection

log = logging.getLogger(__name__)

# Bounds on what a dead-letter record copies from outside; base64 grows bytes by a third, and the record
# (at most about 350 KiB + 6 KiB + 2 KiB) must fit under the broker's default 1 MiB message limit.
MAX_ORIGINAL_BYTES = 256 * 1024
MAX_KEY_BYTES = 4 * 1024
MAX_DETAIL_CHARS = 2000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def key_fields(key: bytes | None) -> dict[str, Any]:
    """A message key as the dead-letter record's ``source`` holds it: base64, cut to MAX_KEY_BYTES with the
    original size and SHA-256 when longer. The ingest stage forwards the same dict with a valid mention, so
    an enrich-stage dead letter names the raw key without carrying a huge one through ``mentions.valid``."""
    if key is None:
        return {"key_base64": None}
    fields: dict[str, Any] = {"key_base64": _b64(key[:MAX_KEY_BYTES])}
    if len(key) > MAX_KEY_BYTES:
        fields.update(key_truncated=True, key_size=len(key), key_sha256=hashlib.sha256(key).hexdigest())
    return fields


def message_key(fields: dict[str, Any]) -> bytes | None:
    """The dead-letter message's own Kafka key: the raw key, or 'sha256:<hex>' of it when it was cut."""
    if fields.get("key_base64") is None:
        return None
    if fields.get("key_truncated"):
        return f"sha256:{fields['key_sha256']}".encode()
    return base64.b64decode(fields["key_base64"])


def deadletter_record(
    rejection: Rejection,
    *,
    stage: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | dict[str, Any] | None,
    original: bytes,
    now: datetime,
) -> dict[str, Any]:
    """The dead-letter record (deadletter.v1.json) for a rejected message: enough to inspect and replay it.

    ``key`` is the raw key, or :func:`key_fields` of it already computed (enrich-stage dead letters).
    """
    source_key = key if isinstance(key, dict) else key_fields(key)
    detail = rejection.detail if len(rejection.detail) <= MAX_DETAIL_CHARS else rejection.detail[: MAX_DETAIL_CHARS - 1] + "…"
    record: dict[str, Any] = {
        "schema_version": 1,
        "reason": rejection.reason,
        "detail": detail,
        "stage": stage,
        "source": {"topic": topic, "partition": partition, "offset": offset, **source_key},
        "original_base64": _b64(original[:MAX_ORIGINAL_BYTES]),
        "mention_id": rejection.mention_id,
        "dead_lettered_at": format_rfc3339(now),
    }
    if len(original) > MAX_ORIGINAL_BYTES:
        record.update(original_truncated=True, original_size=len(original),
                      original_sha256=hashlib.sha256(original).hexdigest())
    return record


def internal_error(error: BaseException) -> Rejection:
    """The rejection for an exception no check anticipated: its type and message, so the bug can be found."""
    message = _safe_str(error)
    return Rejection("internal_error", f"{type(error).__name__}: {message}" if message else type(error).__name__)


async def send_to_deadletter(rejection: Rejection, *, stage: str, **origin: Any) -> None:
    """Dead-letter one message with its reason and origin (deadletter_record's topic, partition, offset, key,
    original); counted so that in = out + dead-lettered."""
    from . import metrics
    from .app import deadletter_topic

    record = deadletter_record(rejection, stage=stage, now=datetime.now(timezone.utc), **origin)
    await deadletter_topic.send(key=message_key(record["source"]), value=orjson.dumps(record))
    metrics.DEADLETTERED.labels(stage, rejection.reason).inc()
    source = record["source"]
    log.info("dead-lettered %s:%s@%s: %s (%s)", source["topic"], source["partition"], source["offset"],
             rejection.reason, record["detail"][:300])


def raw_origin(envelope: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """An enrich-stage dead letter's origin: the raw message the envelope came from, with the normalised
    mention as payload, so reconciling by raw offset still accounts for it."""
    def origin() -> dict[str, Any]:
        processing, key = envelope["processing"], envelope["raw_key"]
        if isinstance(key, str):  # an envelope written before keys were bounded: the key as latin-1 text
            key = key.encode("latin-1")
        return {"topic": processing["source_topic"], "partition": processing["source_partition"],
                "offset": processing["source_offset"], "key": key, "original": orjson.dumps(envelope["mention"])}
    return origin


def message_origin(message: Any, value: bytes) -> Callable[[], dict[str, Any]]:
    """The origin of a message that is its own source: where it was read, its key and its bytes."""
    def origin() -> dict[str, Any]:
        return {"topic": message.topic, "partition": message.partition, "offset": message.offset,
                "key": message.key, "original": value}
    return origin


def envelope_origin(message: Any, value: bytes) -> Callable[[], dict[str, Any]]:
    """The origin of a ``mentions.valid`` message: its raw message when the envelope can be read, else the
    message itself (something other than the ingest stage wrote to the topic)."""
    def origin() -> dict[str, Any]:
        try:
            return raw_origin(orjson.loads(value))()
        except Exception:
            return message_origin(message, value)()
    return origin


@contextlib.asynccontextmanager
async def guard(stage: str, origin: Callable[[], dict[str, Any]]) -> AsyncIterator[None]:
    """Handle one message; an unexpected exception dead-letters it as ``internal_error`` instead of crashing
    the agent (which Faust restarts 5 s later, past the message: lost, and the stream stalled).

    ``origin()`` gives send_to_deadletter's topic, partition, offset, key and original; it is called only
    on failure, so the happy path pays nothing. The failure is logged on
    one line with where it happened (the traceback at debug level) and counted in
    ``ascolta_internal_errors_total{stage,error}``.
    """
    try:
        yield
    except Exception as error:
        from . import metrics

        where = _innermost_frame(error)
        info = origin()
        log.error("%s: internal error on %s:%s@%s at %s, dead-lettered: %s: %s", stage, info["topic"],
                  info["partition"], info["offset"], where, type(error).__name__, _safe_str(error)[:300])
        log.debug("internal error details", exc_info=error)
        metrics.INTERNAL_ERRORS.labels(stage, type(error).__name__).inc()
        await send_to_deadletter(internal_error(error), stage=stage, **info)


def _safe_str(error: BaseException) -> str:
    """str(error), unless its __str__ itself fails: that must not hide the first failure."""
    try:
        return str(error)
    except Exception:
        return "(message unavailable)"


def _innermost_frame(error: BaseException) -> str:
    """'streams/detect.py:123 in close_buckets': where the exception was raised."""
    tb = error.__traceback__
    if tb is None:
        return "?"
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return f"{code.co_filename.rsplit('/streams/', 1)[-1]}:{tb.tb_lineno} in {code.co_name}"
