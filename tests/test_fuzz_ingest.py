"""Property-based fuzzing of the pure ingest path: whatever bytes arrive, ingest answers with a normalised
mention or a precise rejection, never an exception, and what it forwards or dead-letters is bounded and valid.

Every field gets valid values, near misses and hostile values of every JSON type (huge and fractional
numbers, deep nesting, invisible and bidi characters, lone surrogates, non-http URLs); whole messages are
also arbitrary bytes. The integration twin (tests/integration/test_hostile.py) sends such messages through
the real broker and worker.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from streams import contracts
from streams.deadletter import deadletter_record
from streams.normalise import MAX_AUDIENCE, MAX_TEXT_CHARS, REASON_CODES, Mention, Rejection, parse_mention
from streams.text import ISO_639_1, brand_allow_list, brand_key, has_visible

NOW = datetime(2026, 5, 4, 14, 0, tzinfo=timezone.utc)
ALLOWED = brand_allow_list("Acme,Caffè Aurora,Lumen Bank")
BROKER_MESSAGE_LIMIT = 1024 * 1024

HOSTILE_CHARS = st.sampled_from(list("\u200b\u200c\u200d\u200e\u200f\u202a\u202e\u2066\u2069\ufeff\u00ad\u034f"
                                     "\u3164\u2800\ufe0f\x00\x1f\x7f\u0085\u2028 \t\n\ud800\udfff")
                                + ["e\u0301", "👩\u200d💻", "Acme", "ACME", "caffè", "Caffe\u0300"])
HOSTILE_TEXT = st.one_of(st.text(), st.lists(HOSTILE_CHARS).map("".join))
NUMBERS = st.one_of(
    st.integers(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70), st.floats(allow_nan=True),
    st.sampled_from([1e308, 1e30, 5.0, 5.5, -0.0, 2 ** 64, 10 ** 40, MAX_AUDIENCE, MAX_AUDIENCE + 1]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, HOSTILE_TEXT)
ANY_JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                        max_leaves=10)


def deep(depth: int):
    return st.integers(1, depth).map(lambda n: json.loads("[" * n + "]" * n))


HOSTILE = st.one_of(SCALARS, ANY_JSON, deep(300))


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


TIMES = st.one_of(
    st.datetimes(min_value=datetime(2026, 4, 28), max_value=datetime(2026, 5, 5), timezones=st.just(timezone.utc)).map(rfc3339),
    st.datetimes(timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])).map(
        lambda moment: moment.isoformat()),
    st.sampled_from(["9999-12-31T23:59:60Z", "0001-01-01T00:00:00+01:00", "2026-05-04T13:45:60Z", "2026-13-45T99:99:99Z",
                     "2026-05-04T13:45:00", "2026-05-04", "yesterday"]),
)
VALID_FIELDS = {
    "id": st.text(min_size=1, max_size=20),
    "brand": st.one_of(st.sampled_from(["Acme", " acme ", "ACME", "Caffe\u0300 Aurora", "Lumen\u200b Bank", "Unknown Co"]),
                       HOSTILE_TEXT),
    "source": st.sampled_from(["twitter", "Twitter ", "X", "reddit", "linkedin"]),
    "text": st.one_of(st.sampled_from(["Acme is great", "Acme broke again 😡"]), HOSTILE_TEXT,
                      st.text(min_size=MAX_TEXT_CHARS - 5, max_size=MAX_TEXT_CHARS + 20)),
    "created_at": TIMES,
    "author": st.fixed_dictionaries({"id": st.text(min_size=1, max_size=10)},
                                    optional={"handle": st.text(max_size=20), "followers": NUMBERS, "extra": ANY_JSON}),
    "url": st.sampled_from(["https://x.com/a/1", "javascript:alert(1)", " JAVASCRIPT:x", "data:,x", "http://",
                            "ftp://h/x", "HTTP://h/x"]),
    "lang": st.sampled_from(["it", "pt-BR", "zz", "und", "IW", "qme"]),
    "reach": NUMBERS,
    "unknown": ANY_JSON,
}
REQUIRED = ("id", "brand", "source", "text", "created_at", "author")


@st.composite
def mentions(draw) -> dict:
    """A plausible mention (every field drawn from its valid-ish values), then zero to three fields replaced by
    a hostile value of any type or dropped: every rejection path, and plenty of accepted mentions."""
    record = {name: draw(VALID_FIELDS[name]) for name in REQUIRED}
    record.update({name: draw(VALID_FIELDS[name]) for name in draw(st.sets(st.sampled_from(sorted(VALID_FIELDS))))})
    for name in draw(st.lists(st.sampled_from(sorted(VALID_FIELDS)), max_size=3)):
        if draw(st.integers(0, 4)) == 0:
            record.pop(name, None)
        elif name == "author" and draw(st.booleans()):
            record["author"] = {**draw(VALID_FIELDS["author"]), draw(st.sampled_from(["id", "handle", "followers"])): draw(HOSTILE)}
        else:
            record[name] = draw(HOSTILE)
    return record


MENTIONS = mentions()


def encoded(record: dict, ensure_ascii: bool) -> bytes:
    # The stdlib writes what orjson refuses (big integers, NaN, lone surrogates): hostile producers do too.
    return json.dumps(record, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


MESSAGES = st.one_of(
    st.builds(encoded, MENTIONS, st.booleans()),
    st.binary(max_size=200),
    st.sampled_from([b"", b"null", b"[]", b"1e999", b'{"id": NaN}', b'{"a":' * 2000 + b"1" + b"}" * 2000,
                     b'{"brand":"Acme","brand":"Globex"}']),
)


def check(value: bytes, allowed_brands=None) -> Mention | Rejection:
    result = parse_mention(value, now=NOW, max_future_s=3600, max_age_s=7 * 24 * 3600, allowed_brands=allowed_brands)
    event("accepted" if isinstance(result, Mention) else result.reason)  # --hypothesis-show-statistics
    if isinstance(result, Rejection):
        assert result.reason in REASON_CODES and result.detail
        record = deadletter_record(result, stage="ingest", topic="mentions.raw", partition=0, offset=1,
                                   key=value[:100] or None, original=value, now=NOW)
        assert contracts.validate("deadletter", record) == []
        assert len(orjson.dumps(record)) < BROKER_MESSAGE_LIMIT
        return result
    record = result.record
    assert contracts.validate("raw", record) == []
    assert len(orjson.dumps(record)) <= len(value) + 1000  # what ingest forwards is no bigger than what came in
    assert has_visible(record["text"]) and len(record["text"]) <= MAX_TEXT_CHARS
    assert record["brand"] and record["brand"] == record["brand"].strip() and has_visible(record["brand"])
    if allowed_brands is not None:
        assert allowed_brands[brand_key(record["brand"])] == record["brand"]
    for value_ in (record["author"].get("followers"), record.get("reach")):
        assert value_ is None or (type(value_) is int and 0 <= value_ <= MAX_AUDIENCE)
    if "url" in record:
        assert record["url"].lower().startswith(("http://", "https://"))
    assert record.get("lang", "it") in ISO_639_1
    assert result.language == "und" or result.language in ISO_639_1
    assert math.isfinite(result.language_confidence) and 0 <= result.language_confidence <= 1
    assert record["created_at"].endswith("Z")
    return result


FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(MESSAGES)
def test_any_message_is_accepted_normalised_or_rejected_with_a_reason(value):
    check(value)


@FUZZ
@given(MENTIONS)
def test_any_mention_under_an_allow_list_keeps_only_listed_brands_spelled_their_way(record):
    check(encoded(record, ensure_ascii=True), ALLOWED)


@settings(max_examples=300, deadline=None)
@given(HOSTILE_TEXT, HOSTILE_TEXT)
def test_valid_mentions_with_hostile_texts_and_brands(text, brand):
    base = {"id": "1", "source": "twitter", "created_at": "2026-05-04T13:00:00Z", "author": {"id": "a"}}
    check(encoded({**base, "brand": brand, "text": text}, ensure_ascii=False))
