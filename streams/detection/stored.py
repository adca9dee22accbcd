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


def load_brand_state(data: Any) -> dict:
    """A stored brand state with the fields counting a mention relies on; cheap, as it runs per mention."""
    if not isinstance(data, dict):
        raise TypeError(f"brand state is {type(data).__name__}, not an object")
    int(data["p"]), int(data["closed_through"])
    if not isinstance(data["history"], list):
        raise TypeError("brand state history is not a list")
    return data


def load_closable_brand_state(data: Any) -> dict:
    """A stored brand state that closing buckets can use: every history entry [start, count, offset] and the
    open incident's digest loadable too (checked once per bucket boundary, not per mention)."""
    load_brand_state(data)
    for start, count, offset in data["history"]:
        int(start), int(count), int(offset)
    if data["incident"] is not None:
        load_digest(data["incident"])
    return data
