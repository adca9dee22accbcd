"""Reading back what a changelogged table holds, without trusting it.

A table value comes back from the changelog after every restart: written by an older version, or corrupt
(Faust's JSON writes an infinite float as ``null``, so a state that once held one cannot be loaded as it was
saved). Such a value must not crash the agent at every bucket boundary for good; it is logged, reported (the
worker counts it in ``ascolta_table_values_replaced_total{table}``) and replaced by a fresh one, so the brand
relearns instead of going silent.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

from .digest import BucketDigest

log = logging.getLogger(__name__)

T = TypeVar("T")
# What loading malformed JSON into the detector's classes raises: wrong types, missing keys, bad numbers.
UNLOADABLE = (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError)


def load_or_replace(table: str, key: str, value: Any, load: Callable[[Any], T], fresh: Callable[[], T],
                    on_replaced: Callable[[str], None]) -> T:
    """``load(value)``, or ``fresh()`` when the stored value cannot be loaded: logged and reported to
    ``on_replaced(table)``."""
    try:
        return load(value)
    except UNLOADABLE as error:
        log.warning("table %s, key %r: stored value cannot be loaded (%s: %s); replaced by a fresh one",
                    table, key[:200], type(error).__name__, str(error)[:200])
        on_replaced(table)
        return fresh()


def finite(value: Any) -> float:
    """float(value), refusing what no count or reach can be (None, inf, NaN): the value is then unloadable."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def load_digest(data: Any) -> BucketDigest:
    """A stored bucket digest whose numbers are all finite, so scoring and sorting its samples cannot fail."""
    digest = BucketDigest.from_dict(data)
    finite(digest.reach)
    for sample in (*digest.most_reached, *digest.most_negative):
        finite(sample["reach"])
        finite(sample["score"])
    return digest


# 2 split the detector, term baseline and history out of the brand record; 3 took the detector and term baseline
# back in, as JSON text (one write per close instead of three)
BRAND_RECORD_VERSION = 3
# Versions still loaded: a version 2 record's detector and term states are under their own keys (``d|``, ``t|``)
LOADABLE_BRAND_RECORDS = (2, 3)


def load_brand_state(data: Any) -> dict:
    """A stored brand record with the fields counting a mention relies on; cheap, as it runs per mention.
    A record of another version (version 1 held the whole state in one value) is refused: replaced."""
    if not isinstance(data, dict):
        raise TypeError(f"brand state is {type(data).__name__}, not an object")
    if data.get("v") not in LOADABLE_BRAND_RECORDS:
        raise ValueError(f"brand record version {data.get('v')!r}, expected one of {LOADABLE_BRAND_RECORDS}")
    int(data["p"]), int(data["closed_through"])
    if not isinstance(data["chunks"], list):
        raise TypeError("brand state history chunks are not a list")
    return data


def load_closable_brand_state(data: Any) -> dict:
    """A stored brand record that closing buckets can use: its history chunk starts and the open incident's
    digest loadable too (checked when the brand is closed, not per mention)."""
    load_brand_state(data)
    for start in data["chunks"]:
        int(start)
    if data["last_active"] is not None:
        int(data["last_active"])
    if data["incident"] is not None:
        load_digest(data["incident"])
    return data


def load_history_chunk(data: Any) -> list[list[int]]:
    """One hour of a brand's closed bucket counts: entries [start, count, last applied offset]."""
    if not isinstance(data, list):
        raise TypeError(f"history chunk is {type(data).__name__}, not a list")
    for entry in data:
        start, count, offset = entry
        int(start), int(count), int(offset)
    return data
