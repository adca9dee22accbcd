"""Dead-letter records without a broker: valid per schema, carrying the original, bounded whatever came in."""
from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone

import orjson
import pytest

from streams import contracts
from streams.deadletter import (
    MAX_KEY_BYTES,
    deadletter_record,
    internal_error,
    key_fields,
    message_key,
    raw_origin,
)
from streams.normalise import Rejection, parse_mention

NOW = datetime(2026, 5, 4, 14, 0, tzinfo=timezone.utc)
GOOD = {"id": "t-1", "brand": "Acme", "source": "twitter", "text": "Acme blender broke after two days",
        "created_at": "2026-05-04T13:45:00Z", "author": {"id": "42"}}
BROKER_MESSAGE_LIMIT = 1024 * 1024


def parse(value: bytes):
    return parse_mention(value, now=NOW, max_future_s=3600, max_age_s=7 * 24 * 3600)


def record_for(value: bytes, key: bytes | None, **source) -> dict:
    return deadletter_record(parse(value), stage="ingest", topic="mentions.raw", partition=source.get("partition", 3),
                             offset=source.get("offset", 41), key=key, original=value, now=NOW)


@pytest.mark.parametrize("value", [b"\xff", b"[]", orjson.dumps({**GOOD, "text": None}), orjson.dumps({**GOOD, "id": ""})])
def test_deadletter_record_is_valid_and_carries_the_original(value):
    rejection = parse(value)
    record = record_for(value, b"Acme")
    assert contracts.validate("deadletter", record) == []
    assert base64.b64decode(record["original_base64"]) == value
    assert base64.b64decode(record["source"]["key_base64"]) == b"Acme"
    assert "key_truncated" not in record["source"] and "original_truncated" not in record
    assert record["reason"] == rejection.reason and record["mention_id"] == rejection.mention_id
    assert record["dead_lettered_at"] == "2026-05-04T14:00:00Z"
    assert message_key(record["source"]) == b"Acme"


def test_deadletter_record_without_key_and_with_an_oversized_original():
    value = orjson.dumps({**GOOD, "text": "a" * 1024 * 1024})
    record = record_for(value, None)
    assert contracts.validate("deadletter", record) == []
    assert record["source"]["key_base64"] is None and message_key(record["source"]) is None
    assert record["original_truncated"] is True and record["original_size"] == len(value)
    assert record["original_sha256"] == hashlib.sha256(value).hexdigest()
    assert len(record["original_base64"]) < 400 * 1024


def test_a_700_kb_key_is_cut_with_its_size_and_hash_and_the_record_fits_the_broker():
    """Regression: a 700 KB key with an invalid value made a 1.6 MB dead letter the producer refused."""
    key = b"k" * 700_000
    value = b"x" * 600_000  # the worst case: an oversized value too
    record = record_for(value, key)
    assert record["reason"] == "message_too_large"
    assert contracts.validate("deadletter", record) == []
    source = record["source"]
    assert base64.b64decode(source["key_base64"]) == key[:MAX_KEY_BYTES]
    assert source["key_truncated"] is True and source["key_size"] == len(key)
    assert source["key_sha256"] == hashlib.sha256(key).hexdigest()
    assert message_key(source) == f"sha256:{source['key_sha256']}".encode()
    assert len(orjson.dumps(record)) + len(message_key(source)) < BROKER_MESSAGE_LIMIT // 2


def test_a_300_kb_key_with_a_valid_value_travels_bounded_in_the_envelope():
    """Regression: the envelope to mentions.valid carried a 300 KB key as JSON escapes (about 1.8 MB)."""
    key = b"\x00" * 300_000
    fields = key_fields(key)
    assert len(orjson.dumps(fields)) < 2 * MAX_KEY_BYTES
    envelope = {"mention": GOOD, "raw_key": fields,
                "processing": {"source_topic": "mentions.raw", "source_partition": 0, "source_offset": 7}}
    origin = raw_origin(orjson.loads(orjson.dumps(envelope)))()
    record = deadletter_record(Rejection("duplicate", "seen"), stage="enrich", now=NOW, **origin)
    assert contracts.validate("deadletter", record) == []
    assert record["source"]["key_size"] == len(key) and record["source"]["offset"] == 7
    assert orjson.loads(base64.b64decode(record["original_base64"])) == GOOD


def test_an_envelope_from_before_bounded_keys_still_names_its_raw_key():
    envelope = {"mention": GOOD, "raw_key": "Acme\xff",
                "processing": {"source_topic": "mentions.raw", "source_partition": 0, "source_offset": 7}}
    assert raw_origin(envelope)()["key"] == b"Acme\xff"


def test_a_long_detail_is_cut():
    record = deadletter_record(Rejection("invalid_value", "x" * 10_000), stage="ingest", topic="t", partition=0,
                               offset=0, key=None, original=b"{}", now=NOW)
    assert len(record["detail"]) == 2000 and record["detail"].endswith("…")
    assert contracts.validate("deadletter", record) == []


def test_internal_error_names_the_exception_type():
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no")

    assert internal_error(KeyError("processing")).detail == "KeyError: 'processing'"
    assert internal_error(Unprintable()).detail == "Unprintable: (message unavailable)"
    assert internal_error(RecursionError()).reason == "internal_error"
