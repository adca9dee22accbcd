"""The story stage's order (streams/stories/order.py): scored mentions released in the order ingest announced them,
whatever order the workers scored them in; bounded waits; acknowledgements in offset order. No broker."""
from __future__ import annotations

import random

from streams.stories.order import RELEASED_KEYS_KEPT, AnnouncedOrder, InOrderAcks

HOLD_S = 600.0


def released_keys(order: AnnouncedOrder, partition: int = 0, now: float = 0.0) -> list:
    return [(r.scored, r.arrival) for r in order.releases(partition, now)]


def test_scored_mentions_come_out_in_announcement_order_whatever_the_scoring_order():
    keys = [f"k{n}" for n in range(200)]
    for seed in range(5):
        order, out = AnnouncedOrder(HOLD_S), []
        for offset, key in enumerate(keys):
            order.announce(0, key, offset, f"a-{key}", 0.0)
        scoring = keys[:]
        random.Random(seed).shuffle(scoring)
        for key in scoring:
            order.scored(0, key, key, arrivals_end=len(keys), now=0.0)
            out += [r.scored for r in order.releases(0, 1.0)]
        assert out == keys


def second_scored_first_waiting(first: str) -> AnnouncedOrder:
    """Two announcements, the second one's mention scored, the first one's not."""
    order = AnnouncedOrder(HOLD_S)
    order.announce(0, first, 0, f"arrival-{first}", 0.0)
    order.announce(0, "b", 1, "arrival-b", 0.0)
    order.scored(0, "b", "scored-b", arrivals_end=2, now=0.0)
    return order


def test_a_mention_waits_for_the_ones_announced_before_it_and_goes_with_its_announcement():
    order = second_scored_first_waiting("a")
    assert released_keys(order) == []
    assert order.holding(0)
    order.scored(0, "a", "scored-a", arrivals_end=2, now=0.0)
    assert released_keys(order) == [("scored-a", "arrival-a"), ("scored-b", "arrival-b")]
    assert not order.holding(0)


def test_partitions_wait_for_their_own_announcements_only():
    order = AnnouncedOrder(HOLD_S)
    order.announce(0, "a", 0, "arrival-a", 0.0)
    order.announce(1, "b", 0, "arrival-b", 0.0)
    order.scored(1, "b", "scored-b", arrivals_end=1, now=0.0)
    assert released_keys(order, 0) == []
    assert released_keys(order, 1) == [("scored-b", "arrival-b")]


def test_an_announcement_never_scored_is_given_up_after_the_hold_and_the_rest_go_on():
    order = AnnouncedOrder(HOLD_S)
    order.announce(0, "dead-lettered", 0, "arrival-x", 0.0)
    order.announce(0, "b", 1, "arrival-b", 10.0)
    order.scored(0, "b", "scored-b", arrivals_end=2, now=0.0)
    assert released_keys(order, now=HOLD_S - 1) == []
    assert released_keys(order, now=HOLD_S) == [(None, "arrival-x"), ("scored-b", "arrival-b")]


def test_a_scored_mention_read_before_its_announcement_waits_for_it():
    order = AnnouncedOrder(HOLD_S)
    order.announce(0, "a", 0, "arrival-a", 0.0)
    order.scored(0, "b", "scored-b", arrivals_end=2, now=0.0)  # its announcement (offset 1) is written, not yet read
    assert released_keys(order) == []
    order.announce(0, "b", 1, "arrival-b", 0.0)
    assert released_keys(order) == []  # still behind "a"
    order.scored(0, "a", "scored-a", arrivals_end=2, now=0.0)
    assert released_keys(order) == [("scored-a", "arrival-a"), ("scored-b", "arrival-b")]


def test_a_scored_mention_nobody_announced_goes_once_every_announcement_written_before_it_is_read():
    """A redelivery of a mention released before a crash: its announcement was acknowledged and is not read again."""
    order = AnnouncedOrder(HOLD_S)
    order.announce(0, "a", 0, "arrival-a", 0.0)
    order.scored(0, "old", "scored-old", arrivals_end=3, now=0.0)
    assert released_keys(order) == []  # announcements 1 and 2 may still name it
    order.announce(0, "c", 2, "arrival-c", 0.0)
    assert released_keys(order) == [("scored-old", None)]
    assert order.holding(0)  # "a" and "c" still wait


def test_duplicates_announcements_and_scorings_are_not_waited_for_twice():
    order = AnnouncedOrder(HOLD_S)
    assert order.announce(0, "a", 0, "arrival-a", 0.0)
    assert not order.announce(0, "a", 1, "arrival-a-again", 0.0)  # a duplicate while the first waits
    order.scored(0, "a", "scored-a", arrivals_end=2, now=0.0)
    order.scored(0, "a", "scored-a-again", arrivals_end=2, now=0.0)  # scored twice (a redelivery upstream)
    assert released_keys(order) == [("scored-a", "arrival-a"), ("scored-a-again", None)]
    assert not order.announce(0, "a", 2, "arrival-a-late", 0.0)  # a duplicate after the release
    assert not order.holding(0)


def test_released_keys_are_remembered_within_a_bound():
    order = AnnouncedOrder(HOLD_S)
    for n in range(RELEASED_KEYS_KEPT + 10):
        order.announce(0, f"k{n}", n, n, 0.0)
        order.scored(0, f"k{n}", n, arrivals_end=n + 1, now=0.0)
        order.releases(0, 0.0)
    assert len(order.partitions[0].released) == RELEASED_KEYS_KEPT
    assert order.announce(0, "k0", RELEASED_KEYS_KEPT + 10, "again", 0.0)  # forgotten: waited for (and given up)


def test_forgotten_partitions_start_afresh():
    order = AnnouncedOrder(HOLD_S)
    order.announce(0, "a", 0, "arrival-a", 0.0)
    order.forget({0})
    assert not order.holding(0)
    assert order.announce(0, "a", 0, "arrival-a", 0.0)


def test_acknowledgements_go_out_in_offset_order_only():
    acks = InOrderAcks()
    for offset in (10, 11, 12):
        acks.received("t", 0, offset, f"m{offset}")
    assert acks.done("t", 0, 11) == []
    assert acks.done("t", 0, 12) == []
    assert acks.done("t", 0, 10) == ["m10", "m11", "m12"]
    assert acks.done("t", 0, 10) == []


def test_acknowledgements_are_per_topic_and_partition_and_restart_when_the_consumer_goes_back():
    acks = InOrderAcks()
    acks.received("t", 0, 5, "t0-5")
    acks.received("t", 1, 5, "t1-5")
    acks.received("u", 0, 5, "u0-5")
    assert acks.done("t", 1, 5) == ["t1-5"]
    acks.received("t", 0, 6, "t0-6")
    acks.received("t", 0, 3, "t0-3")  # redelivered from the committed offset: what was pending is read again
    assert acks.done("t", 0, 6) == []
    assert acks.done("t", 0, 3) == ["t0-3"]
    acks.forget({0})
    assert acks.done("u", 0, 5) == []


def test_a_scored_mention_read_before_the_announcements_log_end_is_known_waits_until_it_is():
    order = AnnouncedOrder(HOLD_S)
    order.scored(0, "b", "scored-b", arrivals_end=None, now=0.0)  # no fetch of the announcements yet
    assert released_keys(order) == []
    assert [(r.scored, r.arrival) for r in order.releases(0, 0.0, arrivals_end=1)] == []  # one written, unread
    order.announce(0, "b", 0, "arrival-b", 0.0)
    assert released_keys(order) == [("scored-b", "arrival-b")]


def test_a_scored_mention_whose_announcements_are_never_read_waits_the_hold_at_most():
    order = AnnouncedOrder(HOLD_S)
    order.scored(0, "b", "scored-b", arrivals_end=None, now=0.0)
    assert released_keys(order, now=HOLD_S - 1) == []
    assert released_keys(order, now=HOLD_S) == [("scored-b", None)]


def test_an_announcement_withdrawn_by_the_enrich_stage_is_not_waited_for():
    order = second_scored_first_waiting("failed")
    assert released_keys(order) == []
    order.withdraw(0, "failed", 2)
    assert released_keys(order) == [(None, "arrival-failed"), ("scored-b", "arrival-b")]
    assert not order.holding(0)
