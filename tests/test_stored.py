"""Stored table values that cannot be loaded are refused precisely, so the detect stage replaces them."""
from __future__ import annotations

import pytest

from streams.detection.digest import BucketDigest
from streams.detection.stored import (UNLOADABLE, finite, load_brand_state, load_closable_brand_state, load_digest,
                                     load_history_chunk)

MENTION = {"id": "1", "brand": "Acme", "source": "twitter", "text": "Acme broke", "created_at": "2026-05-04T13:45:00Z",
           "author": {"id": "a", "followers": 10}, "language": "en",
           "sentiment": {"label": "negative", "score": -0.9, "probabilities": {}}}


def digest_dict() -> dict:
    digest = BucketDigest()
    digest.add(MENTION)
    return digest.to_dict()


def test_a_digest_round_trips():
    assert load_digest(digest_dict()).count == 1


@pytest.mark.parametrize("corrupt", [
    lambda d: d.update(reach=None),  # Faust's JSON writes an infinite float as null
    lambda d: d.update(reach=float("inf")),
    lambda d: d["most_reached"][0].update(reach=None),
    lambda d: d.pop("count"),
])
def test_a_digest_with_a_null_or_infinite_number_is_unloadable(corrupt):
    data = digest_dict()
    corrupt(data)
    with pytest.raises(UNLOADABLE):
        load_digest(data)


def good_state() -> dict:
    return {"v": 2, "p": 0, "closed_through": 300, "last_active": 0, "hot": True, "incident": digest_dict(),
            "chunks": [0], "name": "Acme"}


def test_a_brand_state_round_trips():
    assert load_brand_state(good_state()) == good_state() == load_closable_brand_state(good_state())


@pytest.mark.parametrize("corrupt", [
    lambda s: "garbage",
    lambda s: {**s, "closed_through": None},
    lambda s: {k: v for k, v in s.items() if k != "chunks"},
    lambda s: {**s, "chunks": [None]},
    lambda s: {**s, "last_active": "x"},
    lambda s: {**s, "incident": {**s["incident"], "reach": None}},
    lambda s: {**s, "v": 1},  # one blob per brand (detector, terms and history inside): replaced, not migrated
])
def test_a_brand_state_that_cannot_be_loaded_is_refused(corrupt):
    with pytest.raises(UNLOADABLE):
        load_closable_brand_state(corrupt(good_state()))


@pytest.mark.parametrize("corrupt", [lambda s: None, lambda s: {**s, "p": "x"}, lambda s: {**s, "chunks": None}])
def test_the_per_mention_check_refuses_what_counting_would_trip_on(corrupt):
    with pytest.raises(UNLOADABLE):
        load_brand_state(corrupt(good_state()))


def test_a_history_chunk_is_a_list_of_start_count_offset_entries():
    assert load_history_chunk([[0, 3, 17], [300, 1, 20]]) == [[0, 3, 17], [300, 1, 20]]
    for bad in ("garbage", [[0, 3]], [[0, None, 1]], None):
        with pytest.raises(UNLOADABLE):
            load_history_chunk(bad)


def test_finite_refuses_what_no_count_can_be():
    assert finite(3) == 3.0
    for value in (None, float("nan"), float("-inf"), "x"):
        with pytest.raises(UNLOADABLE):
            finite(value)
