"""The schema files are valid, self-describing and enforced: good records pass, corrupted copies fail."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from streams import contracts

RAW = {
    "id": "1790000000000000001",
    "brand": "Acme",
    "source": "twitter",
    "text": "Il nuovo frullatore Acme è fantastico, lo consiglio!",
    "created_at": "2026-05-04T13:45:00Z",
    "author": {"id": "42", "handle": "@cucina_vera", "followers": 1200},
    "url": "https://x.com/cucina_vera/status/1790000000000000001",
    "lang": "it",
    "reach": 5000,
}

ENRICHED = {
    **RAW,
    "schema_version": 1,
    "text_truncated": False,
    "language": "it",
    "language_confidence": 0.98,
    "sentiment": {
        "label": "positive",
        "probabilities": {"negative": 0.02, "neutral": 0.08, "positive": 0.9},
        "score": 0.88,
    },
    "model": {"id": "ascolta-sentiment-multilingual", "version": "1", "language_supported": True},
    "processing": {
        "source_topic": "mentions.raw",
        "source_partition": 0,
        "source_offset": 17,
        "ingested_at": "2026-05-04T13:45:01Z",
        "enriched_at": "2026-05-04T13:45:02.250000Z",
    },
}

SAMPLE = {"id": "1", "author": "@cucina_vera", "text": "Acme mi ha rovinato la cucina", "url": "https://x.com/1",
          "reach": 5000.0, "score": -0.9}

ALERT = {
    "schema_version": 1,
    "event_id": "acme-crisis-20260504T1345Z:0",
    "incident_id": "acme-crisis-20260504T1345Z",
    "event": "opened",
    "kind": "crisis",
    "brand": "Acme",
    "at": "2026-05-04T13:45:00Z",
    "started_at": "2026-05-04T13:45:00Z",
    "severity": 7.5,
    "bucket_seconds": 300,
    "explanation": {
        "observed": 120,
        "expected": 14.2,
        "volume_ratio": 8.45,
        "negative_share": 0.71,
        "baseline_negative_share": 0.12,
        "reach": 250000.0,
        "baseline_reach": 18000.0,
        "top_terms": [{"term": "rovinato", "count": 40, "lift": 35.0}],
        "most_reached": [SAMPLE],
        "most_negative": [SAMPLE],
        "languages": {"it": 100, "en": 20},
        "sources": {"twitter": 90, "reddit": 30},
    },
    "emitted_at": "2026-05-04T13:50:01Z",
}

DEADLETTER = {
    "schema_version": 1,
    "reason": "wrong_type",
    "detail": "field author.followers must be integer, got string '12'",
    "stage": "ingest",
    "source": {"topic": "mentions.raw", "partition": 2, "offset": 99, "key_base64": None},
    "original_base64": "eyJpZCI6ICIxIn0=",
    "mention_id": "1",
    "dead_lettered_at": "2026-05-04T13:45:00Z",
}

ALERT_DEADLETTER = {
    "schema_version": 1, "reason": "attempts_exhausted", "detail": "attempt 8: cannot reach hooks.example.com",
    "route": "siem", "channel": "webhook", "attempts": 8, "last_error": "connection", "event_id": ALERT["event_id"],
    "alert": ALERT, "original_base64": None, "source": {"topic": "alerts", "partition": 1, "offset": 42},
    "dead_lettered_at": "2026-05-04T13:55:02Z",
}

VALID = {"raw": RAW, "enriched": ENRICHED, "alert": ALERT, "deadletter": DEADLETTER,
         "alert-deadletter": ALERT_DEADLETTER}

# One corruption per kind and rule that matters: (kind, JSON path to set or delete, new value or DELETE).
DELETE = object()
CORRUPTIONS = [
    ("raw", ["text"], DELETE),
    ("raw", ["author", "id"], DELETE),
    ("raw", ["author", "followers"], "12"),
    ("raw", ["source"], "linkedin"),
    ("raw", ["created_at"], "2026-05-04T13:45:00"),
    ("raw", ["created_at"], "yesterday"),
    ("raw", ["id"], ""),
    ("raw", ["reach"], -1),
    ("raw", ["lang"], "ita"),
    ("raw", ["text"], "   "),
    ("enriched", ["text"], DELETE),  # a raw field: proves the $ref to mention.raw.v1.json is followed
    ("enriched", ["schema_version"], 2),
    ("enriched", ["language"], "italian"),
    ("enriched", ["sentiment", "label"], "angry"),
    ("enriched", ["sentiment", "score"], 1.5),
    ("enriched", ["model", "language_supported"], DELETE),
    ("enriched", ["processing", "enriched_at"], "2026-05-04 13:45"),
    ("alert", ["event"], "closed"),
    ("alert", ["explanation", "negative_share"], 1.2),
    ("alert", ["explanation", "most_reached", 0, "text"], "x" * 281),
    ("alert", ["explanation", "languages", "it"], "many"),
    ("alert", ["emitted_at"], DELETE),
    ("deadletter", ["reason"], "bad_vibes"),
    ("deadletter", ["stage"], "notify"),
    ("deadletter", ["source", "key_base64"], 7),
    ("deadletter", ["mention_id"], DELETE),
    ("alert-deadletter", ["reason"], "gave_up"),
    ("alert-deadletter", ["alert"], None),  # only an unreadable record (invalid_alert) has no alert
    ("alert-deadletter", ["source", "offset"], -1),
]


def corrupted(kind: str, path: list, value: object) -> dict:
    record = copy.deepcopy(VALID[kind])
    parent = record
    for part in path[:-1]:
        parent = parent[part]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return record


@pytest.mark.parametrize("kind", contracts.KINDS)
def test_schema_files_are_valid_2020_12_with_versioned_ids(kind):
    schema = contracts.load(kind)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://ascolta.dev/schemas/{contracts.schema_path(kind).name}"
    assert ".v1.json" in schema["$id"]


def _properties_without_description(node: object, where: str = "") -> list[str]:
    missing = []
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            if "description" not in sub:
                missing.append(f"{where}/{name}")
        for key, sub in node.items():
            missing += _properties_without_description(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for index, sub in enumerate(node):
            missing += _properties_without_description(sub, f"{where}/{index}")
    return missing


@pytest.mark.parametrize("kind", contracts.KINDS)
def test_every_property_is_described(kind):
    assert _properties_without_description(contracts.load(kind)) == []


def test_enriched_reuses_the_raw_schema_by_reference_instead_of_copying_it():
    enriched = contracts.load("enriched")
    assert enriched["$ref"] == "mention.raw.v1.json"
    assert "text" not in enriched["properties"]
    assert set(enriched["required"]) == {"schema_version", "language", "sentiment", "model", "processing"}


def test_dead_letter_reasons_are_the_documented_codes():
    reasons = contracts.load("deadletter")["properties"]["reason"]["enum"]
    docs = (Path(__file__).resolve().parents[1] / "docs" / "schemas.md").read_text(encoding="utf-8")
    table = docs.split("### Reason codes", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z0-9_]+)` +\|", table, flags=re.MULTILINE)
    assert sorted(reasons) == sorted(documented)
    assert {"internal_error", "unknown_brand"} <= set(reasons)


@pytest.mark.parametrize("value", ["9999-12-31T23:59:60Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_instants_outside_the_representable_years_are_invalid_not_a_crash(value):
    """Regression: the leap second of 9999-12-31 raised OverflowError, which crashed the ingest agent."""
    with pytest.raises(ValueError, match="outside the years"):
        contracts.parse_rfc3339(value)
    [error] = contracts.validate("raw", {**VALID["raw"], "created_at": value})
    assert "outside the years" in error


@pytest.mark.parametrize("kind", contracts.KINDS)
def test_example_records_are_valid(kind):
    assert contracts.validate(kind, VALID[kind]) == []


@pytest.mark.parametrize(("kind", "path", "value"), CORRUPTIONS,
                         ids=[f"{k}:{'.'.join(map(str, p))}" for k, p, _ in CORRUPTIONS])
def test_corrupted_records_are_rejected_naming_the_field(kind, path, value):
    errors = contracts.validate(kind, corrupted(kind, path, value))
    assert errors, "the corruption went unnoticed"
    named = path[-1] if value is DELETE else "/" + "/".join(map(str, path))
    assert any(str(named) in error for error in errors), errors


def test_every_kind_has_at_least_one_corruption_case():
    assert {kind for kind, _, _ in CORRUPTIONS} == set(contracts.KINDS)


def test_additional_properties_are_allowed_so_additive_changes_keep_v1():
    for kind in contracts.KINDS:
        assert contracts.validate(kind, {**VALID[kind], "added_in_a_later_release": True}) == []


def test_errors_are_path_colon_message():
    errors = contracts.validate("raw", corrupted("raw", ["author", "followers"], "12"))
    assert errors == ["/author/followers: '12' is not of type 'integer'"]
    assert contracts.validate("raw", []) == ["(root): [] is not of type 'object'"]


def test_date_time_format_is_enforced_and_explained():
    [error] = contracts.validate("raw", {**RAW, "created_at": "2026-05-04T13:45:00"})
    assert error.startswith("/created_at: ") and "no UTC offset" in error


@pytest.mark.parametrize("value", [
    "2026-05-04T13:45:00Z", "2026-05-04t13:45:00z", "2026-05-04T13:45:00.123456789+02:00",
    "2026-12-31T23:59:60Z", "2026-05-04T13:45:00-05:30",
])
def test_rfc3339_accepts(value):
    assert contracts.validate("raw", {**RAW, "created_at": value}) == []


@pytest.mark.parametrize("value", [
    "2026-05-04", "2026-05-04T13:45Z", "2026-05-04 13:45:00Z", "2026-02-30T10:00:00Z",
    "2026-05-04T25:00:00Z", "2026-05-04T13:45:00+2:00", "20260504T134500Z", "1714830300",
])
def test_rfc3339_rejects(value):
    assert contracts.validate("raw", {**RAW, "created_at": value}) != []


def test_format_rfc3339_is_utc_with_z():
    parsed = contracts.parse_rfc3339("2026-05-04T15:45:00+02:00")
    assert contracts.format_rfc3339(parsed) == "2026-05-04T13:45:00Z"
    assert contracts.format_rfc3339(contracts.parse_rfc3339("2026-05-04T13:45:00.5Z")) == "2026-05-04T13:45:00.500000Z"


def test_load_returns_a_copy_that_cannot_break_validation():
    schema = contracts.load("raw")
    schema["required"].clear()
    assert contracts.validate("raw", {}) != []


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown record kind 'tweet'"):
        contracts.validate("tweet", {})


def test_schema_path_points_at_the_shipped_file():
    for kind in contracts.KINDS:
        path = contracts.schema_path(kind)
        assert path.parent.name == "schemas"
        assert json.loads(path.read_text(encoding="utf-8"))["$id"].endswith(path.name)
