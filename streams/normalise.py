"""Ingest logic without a broker: parse, check and normalise one raw mention, or say precisely why not.

Everything here is a pure function of its arguments (``now`` is passed in), so the stream agents stay thin
and every rejection path is testable. Structural checks go through ``contracts`` so the JSON Schema stays
the source of truth; this module only turns schema errors into the dead-letter reason codes.
"""
from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import orjson
import pycld2
from jsonschema import ValidationError

from streams import contracts
from streams.text import ISO_639_1, brand_key, has_visible, normalise_brand

MAX_BYTES = 512 * 1024
MAX_TEXT_CHARS = 5000
# Deepest nesting accepted anywhere in a message: known fields nest two levels (author.followers); beyond
# this a value is hostile, and describing it (jsonschema's messages use repr) would exhaust the stack.
MAX_NESTING = 64
# Cap on followers and reach: more than anyone's audience, small enough that sums over any number of
# mentions stay finite and exact, so no value a producer sends can make a brand's reach infinite.
MAX_AUDIENCE = 10_000_000_000
AUDIENCE_FIELDS = (("author", "followers"), ("reach",))
MAX_URL_CHARS = 4096
URL_SCHEMES = frozenset({"http", "https"})
# Confidence reported when the language comes from the platform's label rather than from the text.
HINT_CONFIDENCE = 0.5

REASON_CODES: tuple[str, ...] = tuple(contracts.load("deadletter")["properties"]["reason"]["enum"])
_RAW_SCHEMA = contracts.load("raw")
_RAW_FIELDS = frozenset(_RAW_SCHEMA["properties"])
_AUTHOR_FIELDS = frozenset(_RAW_SCHEMA["properties"]["author"]["properties"])

# Line boundaries as str.splitlines() knows them; a whitespace run containing one becomes a newline.
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_WHITESPACE_RUN = re.compile(r"\s+")
# Invisible characters that are not whitespace but make "empty" texts look non-empty.
_INVISIBLE = {ord("\u200b"): None, ord("\ufeff"): None}
_ZWJ = "\u200d"
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@\w+(?:@[\w.-]*\w)?")
# Withdrawn or non-standard codes that cld2 and some platforms still use, and their ISO 639-1 successors.
_DEPRECATED_CODES = {"iw": "he", "jw": "jv", "in": "id", "ji": "yi", "mo": "ro"}
_JSON_TYPES = {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string",
               list: "array", dict: "object"}
# Among several schema errors the most specific explains the record best; the first code wins.
_PRIORITY = ("missing_field", "wrong_type", "unknown_source", "empty_text", "invalid_timestamp", "invalid_value")


@dataclass(frozen=True)
class Mention:
    """A raw mention that passed ingest: ``record`` is valid per mention.raw.v1.json and normalised."""

    record: dict[str, Any]
    created_at: datetime
    text_truncated: bool
    language: str
    language_confidence: float


@dataclass(frozen=True)
class Rejection:
    """Why a message was not accepted; ``reason`` is a dead-letter reason code."""

    reason: str
    detail: str
    mention_id: str | None = None

    def __post_init__(self) -> None:
        if self.reason not in REASON_CODES:
            raise ValueError(f"unknown reason code {self.reason!r}; expected one of {', '.join(REASON_CODES)}")


def normalise_text(text: str) -> str:
    """NFC, control characters removed, whitespace runs collapsed, ends stripped; '' when nothing visible
    is left (only zero-width, bidi-control or other invisible characters), so such a text is empty_text.

    Collapsing makes the same post typed or scraped differently compare and tokenise the same; a run that
    contains a line break becomes one newline so paragraphs survive, any other run one space.
    """
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    # Control characters that are whitespace (tab, CR, form feed...) are left for the collapse to turn into
    # a space or a newline, so they still separate words.
    text = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) != "Cc")
    text = _WHITESPACE_RUN.sub(lambda run: "\n" if _LINE_BREAKS.intersection(run.group()) else " ", text)
    return text.strip() if has_visible(text) else ""


def _attaches_to_previous(ch: str) -> bool:
    """Accents, joiners, variation selectors, skin tones, tag characters: cutting before one splits a
    user-perceived character."""
    return (unicodedata.combining(ch) != 0 or ch == _ZWJ or "\ufe00" <= ch <= "\ufe0f"
            or "\U0001f3fb" <= ch <= "\U0001f3ff" or "\U000e0020" <= ch <= "\U000e007f")


def truncate_text(text: str, max_chars: int) -> tuple[str, bool]:
    """Cut to at most ``max_chars`` without separating a character from its accents, emoji modifiers or
    joiners, so the stored text never ends in half a character. Returns (text, truncated)."""
    if len(text) <= max_chars:
        return text, False
    cut = max_chars
    while cut > 0 and (_attaches_to_previous(text[cut]) or text[cut - 1] == _ZWJ):
        cut -= 1
    return text[:cut].rstrip(), True


def model_text(text: str) -> str:
    """The text as the sentiment model was trained to see it: @handles as '@user', URLs as 'http'.

    Kept out of the stored text, which must stay what the author wrote.
    """
    return _HANDLE.sub("@user", _URL.sub("http", text))


def _iso639_1(tag: str) -> str | None:
    """'PT-br' -> 'pt', 'iw' -> 'he'; None for labels that are no ISO 639-1 code ('und', 'qme', cld2's 'un'
    and 'xx-Latn'). Used for platform hints too: a placeholder label is no reason to lose a mention."""
    primary = re.split(r"[-_]", tag.strip().lower(), maxsplit=1)[0]
    primary = _DEPRECATED_CODES.get(primary, primary)
    return primary if primary in ISO_639_1 else None


def detect_language(text: str, hint: str | None = None) -> tuple[str, float]:
    """(ISO 639-1 code or 'und', confidence 0..1) from the text with cld2's bundled model.

    The hint (the platform's label) is used only when cld2 is unsure, and then with HINT_CONFIDENCE:
    platform labels are often wrong for mixed or short texts, where cld2 is more often right.
    """
    cleaned = "".join(ch for ch in _HANDLE.sub(" ", _URL.sub(" ", text)) if unicodedata.category(ch) not in {"Cc", "Cs"})
    try:
        reliable, _, details = pycld2.detect(cleaned, isPlainText=True)
    except pycld2.error:
        reliable, details = False, ()
    if reliable and details:
        _, code, percent, _ = details[0]
        language = _iso639_1(code)
        if language is not None:
            return language, min(max(percent / 100.0, 0.0), 1.0)
    hinted = _iso639_1(hint) if hint else None
    return (hinted, HINT_CONFIDENCE) if hinted else ("und", 0.0)


def dedup_key(record: dict[str, Any]) -> str:
    """brand, source and id joined by the ASCII unit separator, a control character real values lack.

    Per brand on purpose: one post that matches two tracked brands is one mention for each brand.
    """
    return f"{brand_key(record['brand'])}\x1f{record['source']}\x1f{record['id']}"


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _field(path: Any) -> str:
    """'author.followers', 'items[2]': how a person would name a field."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(record)"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _classify(error: ValidationError, original: dict[str, Any]) -> tuple[str, str]:
    """Map one schema error to (reason code, detail naming the field)."""
    path = list(error.absolute_path)
    field = _field(path)
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        names = ", ".join(_field([*path, name]) for name in missing)
        return "missing_field", f"missing required field{'s' if len(missing) > 1 else ''} {names}"
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, str) else " or ".join(error.validator_value)
        return "wrong_type", f"field {field} must be {expected}, got {_json_type(error.instance)} {_short(error.instance)}"
    if path == ["source"] and error.validator == "enum":
        return "unknown_source", f"source {error.instance!r} is not one of: {', '.join(error.validator_value)}"
    if path == ["text"] and error.validator in {"minLength", "pattern"}:
        what = "empty" if original.get("text") == "" else "only whitespace, control or invisible characters"
        return "empty_text", f"field text is {what}"
    if path == ["brand"] and error.validator == "minLength":
        return "invalid_value", "field brand: empty after normalisation (only whitespace or invisible characters)"
    if path == ["created_at"] and error.validator == "format":
        return "invalid_timestamp", f"field created_at {error.instance!r}: {error.cause or error.message}"
    message = error.message if len(error.message) <= 200 else (
        f"{_short(error.instance)} does not satisfy {error.validator}={_short(error.validator_value)}")
    return "invalid_value", f"field {field}: {message}"


def _reject_invalid(errors: list[ValidationError], original: dict[str, Any], mention_id: str | None) -> Rejection:
    classified = [_classify(error, original) for error in errors]
    reason = min((code for code, _ in classified), key=_PRIORITY.index)
    # One error per missing field, or two rules failing on one text, would otherwise repeat a detail.
    primary = list(dict.fromkeys(detail for code, detail in classified if code == reason))
    others = list(dict.fromkeys(detail for code, detail in classified if code != reason))
    detail = "; ".join(primary)
    if others:
        detail += f" (also: {'; '.join(others[:3])}{'; …' if len(others) > 3 else ''})"
    return Rejection(reason, detail, mention_id)


def _readable_id(obj: dict[str, Any]) -> str | None:
    value = obj.get("id")
    if isinstance(value, str) and value:
        return value[:256]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _too_deep(obj: Any) -> str | None:
    """The field where ``obj`` nests deeper than MAX_NESTING, else None (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, list[Any]]] = [(obj, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_NESTING:
            return _field(path[:3]) + "…"
        if isinstance(value, dict):
            stack.extend((item, [*path, key]) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, [*path, index]) for index, item in enumerate(value))
    return None


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def _duplicate_key(decoded: str) -> str | None:
    """A key that appears twice in one object: parsers disagree on which value wins, so a reader of the raw
    topic could see a different brand or text than Ascolta. orjson keeps the last silently; this second
    parse (the message is known to be valid JSON nested at most MAX_NESTING deep) finds it."""
    try:
        json.loads(decoded, object_pairs_hook=_unique_keys)
    except _DuplicateKey as duplicate:
        return str(duplicate)
    except ValueError:  # numbers the stdlib parses differently (over 4300 digits): orjson's reading stands
        return None
    return None


def _http_url(url: str) -> str | None:
    """The URL when it is an http(s) link with a host, else None: a 'javascript:' or 'data:' URL must never
    reach an alert's samples, where a consumer might render it as a link."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in URL_SCHEMES and parts.netloc and len(url) <= MAX_URL_CHARS else None


def _clamp_audience(record: dict[str, Any]) -> None:
    """Followers and reach as exact integers (5.0 -> 5, 1e30 -> MAX_AUDIENCE), at most MAX_AUDIENCE.

    The schema has already accepted them as integers, which JSON Schema allows in float form ("1e308").
    """
    for path in AUDIENCE_FIELDS:
        parent = record
        for name in path[:-1]:
            parent = parent[name]
        value = parent.get(path[-1])
        if value is not None:
            parent[path[-1]] = MAX_AUDIENCE if not math.isfinite(value) or value > MAX_AUDIENCE else int(value)


def _normalised_copy(obj: dict[str, Any], max_text_chars: int) -> tuple[dict[str, Any], bool]:
    """Known fields only, in canonical form; values of the wrong type are left for the schema to report."""
    record = {key: value for key, value in obj.items() if key in _RAW_FIELDS}
    if isinstance(record.get("author"), dict):
        record["author"] = {key: value for key, value in record["author"].items() if key in _AUTHOR_FIELDS}
    if isinstance(record.get("brand"), str):
        record["brand"] = normalise_brand(record["brand"])
    if isinstance(record.get("source"), str):
        record["source"] = record["source"].strip().lower()
    # Optional hints: an unusable one is dropped rather than rejecting the mention.
    for name, usable in (("url", _http_url), ("lang", _iso639_1)):
        if isinstance(record.get(name), str):
            value = usable(record[name])
            if value is None:
                del record[name]
            else:
                record[name] = value
    truncated = False
    if isinstance(record.get("text"), str):
        record["text"], truncated = truncate_text(normalise_text(record["text"]), max_text_chars)
    return record, truncated


def parse_mention(
    value: bytes,
    *,
    now: datetime,
    max_future_s: float | None,
    max_age_s: float | None,
    max_bytes: int = MAX_BYTES,
    max_text_chars: int = MAX_TEXT_CHARS,
    allowed_brands: Mapping[str, str] | None = None,
) -> Mention | Rejection:
    """Turn one raw Kafka message value into a normalised Mention, or a Rejection with a reason code.

    Checks run cheapest and most fundamental first (size, UTF-8, JSON, object, nesting, duplicate keys,
    schema, brand allow-list, time window), so the reason is the first thing wrong. ``now`` must be
    timezone-aware; a None window bound disables it. ``allowed_brands`` ({brand key: display name}, see
    ``text.brand_allow_list``) rejects other brands as ``unknown_brand``; None accepts every brand.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if len(value) > max_bytes:
        return Rejection("message_too_large", f"message is {len(value)} bytes; the limit is {max_bytes}")
    try:
        decoded = value.decode("utf-8", errors="strict")
    except UnicodeDecodeError as error:
        return Rejection("invalid_utf8", f"invalid UTF-8 at byte {error.start}: {error.reason}")
    try:
        obj = orjson.loads(decoded)
    except orjson.JSONDecodeError as error:
        return Rejection("invalid_json", f"invalid JSON: {error}")
    if not isinstance(obj, dict):
        return Rejection("not_an_object", f"expected a JSON object, got {_json_type(obj)}")
    mention_id = _readable_id(obj)
    deep = _too_deep(obj)
    if deep is not None:
        return Rejection("invalid_value", f"field {deep} is nested more than {MAX_NESTING} levels deep", mention_id)
    duplicate = _duplicate_key(decoded)
    if duplicate is not None:
        return Rejection("invalid_json", f"duplicate key {_short(duplicate)} in one object: which value holds is "
                         "ambiguous", mention_id)

    record, truncated = _normalised_copy(obj, max_text_chars)
    errors = contracts.validation_errors("raw", record)
    if errors:
        return _reject_invalid(errors, obj, mention_id)
    _clamp_audience(record)
    if allowed_brands is not None:
        display = allowed_brands.get(brand_key(record["brand"]))
        if display is None:
            return Rejection("unknown_brand", f"brand {_short(record['brand'])} is not in ASCOLTA_BRANDS", mention_id)
        record["brand"] = display

    created_at = contracts.parse_rfc3339(record["created_at"])
    ahead = (created_at - now).total_seconds()
    if max_future_s is not None and ahead > max_future_s:
        return Rejection("timestamp_in_future",
                         f"field created_at {record['created_at']!r} is {ahead:.0f}s ahead of now; the limit is {max_future_s:.0f}s",
                         mention_id)
    if max_age_s is not None and -ahead > max_age_s:
        return Rejection("timestamp_too_old",
                         f"field created_at {record['created_at']!r} is {-ahead:.0f}s old; the limit is {max_age_s:.0f}s",
                         mention_id)
    created_at = created_at.astimezone(timezone.utc)
    record["created_at"] = contracts.format_rfc3339(created_at)
    language, confidence = detect_language(record["text"], record.get("lang"))
    return Mention(record, created_at, truncated, language, confidence)

