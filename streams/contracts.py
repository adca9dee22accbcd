"""Validation against the JSON Schemas in ``schemas/``, the single source of truth for every topic's records.

Code and tests validate through this module, never against a copy of a schema. Validators are built once
per kind and cached; ``$ref`` between schema files resolves through a local registry, so nothing is fetched.
"""
from __future__ import annotations

import copy
import functools
import json
import re
from datetime import datetime, timedelta, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from referencing import Registry, Resource

SCHEMA_FILES: dict[str, str] = {
    "raw": "mention.raw.v1.json",
    "enriched": "mention.enriched.v1.json",
    "alert": "alert.v1.json",
    "deadletter": "deadletter.v1.json",
    "alert-deadletter": "alert-deadletter.v1.json",
}
KINDS: tuple[str, ...] = tuple(SCHEMA_FILES)

_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})"
    r"(?:\.(?P<fraction>\d+))?(?P<offset>[Zz]|[+-]\d{2}:\d{2})"
)
_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 date-time into an aware datetime, or raise ValueError saying what is wrong.

    Stricter than ``datetime.fromisoformat``, which also takes dates without a time, times without seconds
    and naive times: a mention's instant must be unambiguous. Fractions beyond microseconds are cut and a
    leap second (:60) becomes the next second, as Python cannot represent either.
    """
    match = _RFC3339.fullmatch(value)
    if match is None:
        if _NAIVE.fullmatch(value):
            raise ValueError("no UTC offset (RFC 3339 needs 'Z' or ±HH:MM)")
        raise ValueError("not an RFC 3339 date-time (expected e.g. 2026-05-04T13:45:00Z)")
    second = int(match["second"])
    leap = second == 60
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    offset = match["offset"].upper()
    text = f"{match['date']}T{match['hour']}:{match['minute']}:{59 if leap else second:02d}.{fraction}"
    text += "+00:00" if offset == "Z" else offset
    try:
        parsed = datetime.fromisoformat(text)
        if leap:
            parsed += timedelta(seconds=1)
        parsed.astimezone(timezone.utc)  # every instant must have a UTC spelling
    except ValueError as error:
        raise ValueError(f"impossible date or time ({error})") from None
    except OverflowError:  # 9999-12-31T23:59:60Z, 0001-01-01T00:00:00+01:00
        raise ValueError("outside the years 1 to 9999 once in UTC") from None
    return parsed


def format_rfc3339(moment: datetime) -> str:
    """UTC RFC 3339 with a 'Z' suffix, microseconds only when present: one spelling per instant."""
    if moment.tzinfo is None:
        raise ValueError("refusing to format a naive datetime: its instant is ambiguous")
    utc = moment.astimezone(timezone.utc)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds").replace("+00:00", "Z")


_FORMAT_CHECKER = FormatChecker()


# jsonschema checks "date-time" only when the optional rfc3339-validator package is installed; our own
# checker makes the check unconditional and shares the parser the ingest stage uses.
@_FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_rfc3339(value: object) -> bool:
    if isinstance(value, str):  # other types are the "type" keyword's business
        parse_rfc3339(value)
    return True


def schema_path(kind: str) -> Path:
    """Path of the schema file for ``kind`` (raw, enriched, alert, deadletter)."""
    try:
        name = SCHEMA_FILES[kind]
    except KeyError:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(KINDS)}") from None
    return Path(str(files("schemas") / name))


@functools.cache
def _schema(kind: str) -> dict[str, Any]:
    return json.loads(schema_path(kind).read_text(encoding="utf-8"))


def load(kind: str) -> dict[str, Any]:
    """The parsed schema for ``kind`` (a copy: callers may modify it without affecting validation)."""
    return copy.deepcopy(_schema(kind))


@functools.cache
def _registry() -> Registry:
    return Registry().with_resources((_schema(kind)["$id"], Resource.from_contents(_schema(kind))) for kind in KINDS)


@functools.cache
def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(_schema(kind), registry=_registry(), format_checker=_FORMAT_CHECKER)


def validation_errors(kind: str, record: Any) -> list[ValidationError]:
    """The raw jsonschema errors, for callers that map them to codes (see normalise.parse_mention)."""
    return sorted(_validator(kind).iter_errors(record), key=lambda error: list(map(str, error.absolute_path)))


def error_path(error: ValidationError) -> str:
    """JSON Pointer of the offending value, '(root)' for the record itself."""
    return "/" + "/".join(str(part) for part in error.absolute_path) if error.absolute_path else "(root)"


def describe_error(error: ValidationError) -> str:
    """'path: message', with the parser's reason appended for format errors (which say only 'is not a')."""
    message = error.message
    if error.validator == "format" and error.cause is not None:
        message += f": {error.cause}"
    return f"{error_path(error)}: {message}"


def validate(kind: str, record: Any) -> list[str]:
    """Human-readable errors of ``record`` against the ``kind`` schema; empty when it is valid."""
    return [describe_error(error) for error in validation_errors(kind, record)]
