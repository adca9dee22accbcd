"""Story assignment without a broker: copies, same-story grouping, determinism across a restore, limits."""
from __future__ import annotations

import logging

import numpy as np
import orjson
import pytest

from streams.scored import read_scored, scored_record
from streams.stories.assign import BrandStories, StoryBook
from streams.stories.signature import signature

ORIGINAL = "Caffè Aurora knew about the contamination and kept selling? Disgusting. They must answer for this"


def assign_all(brand: BrandStories, texts, embeddings=None, start: float = 1.7e9) -> list[dict]:
    return [brand.assign(f"m{i}", text, start + i, None if embeddings is None else embeddings[i])
            for i, text in enumerate(texts)]


@pytest.mark.parametrize("copy", [
    f"RT @anna: {ORIGINAL}",
    f"RT @bob: RT @anna: {ORIGINAL}",
    ORIGINAL[:60] + "…",
    ORIGINAL[:60] + "...",
    f"{ORIGINAL} https://t.co/abc",
    f"@CaffeAurora {ORIGINAL} #boycott #scandal",
    f"{ORIGINAL} 😡😡😡",
    f"{ORIGINAL.upper()}",
    f"{ORIGINAL} via @newsbot",
])
def test_a_copy_joins_its_original_and_says_so(copy):
    brand = BrandStories("aurora")
    original, repeated = assign_all(brand, [ORIGINAL, copy])
    assert original["is_copy"] is False and "copy_of" not in original
    assert repeated["id"] == original["id"]
    assert repeated["is_copy"] is True and repeated["copy_of"] == "m0"
    assert repeated["mentions"] == 2


def test_syndicated_articles_with_another_outlet_suffix_are_copies():
    brand = BrandStories("aurora")
    a, b, c = assign_all(brand, [
        "Caffè Aurora recalls oat milk after contamination found in two plants - Reuters",
        "Caffè Aurora recalls oat milk after contamination found in two plants | BBC News",
        "Caffè Aurora recalls oat milk after contamination found in two plants — Corriere della Sera",
    ])
    assert a["id"] == b["id"] == c["id"]
    assert b["is_copy"] and c["is_copy"]


def test_a_quote_joins_the_story_of_what_it_quotes_without_being_a_copy():
    brand = BrandStories("aurora")
    original, quote = assign_all(brand, [ORIGINAL, f"Unbelievable, never again RT @anna: {ORIGINAL}"])
    assert quote["id"] == original["id"]
    assert quote["is_copy"] is False


def test_different_posts_without_embeddings_are_different_stories():
    brand = BrandStories("aurora")
    stories = assign_all(brand, [ORIGINAL, "Lovely cappuccino at Caffè Aurora this morning, great service today"])
    assert stories[0]["id"] != stories[1]["id"]


def test_similar_embeddings_share_a_story_and_distant_ones_do_not():
    rng = np.random.default_rng(1)
    topic = rng.normal(size=384)
    other = rng.normal(size=384)
    vectors = [topic + 0.1 * rng.normal(size=384), topic + 0.1 * rng.normal(size=384), other]
    brand = BrandStories("caffè aurora", threshold=0.9, lexical_threshold=0.25)
    a, b, c, d = assign_all(brand, [
        "Listeria found at the Verona plant of Caffè Aurora #listeria",
        "Listeria nello stabilimento di Verona, Caffè Aurora nei guai #listeria",  # other words, other language
        "Caffè Aurora launches a new seasonal menu in Verona",  # shares a place, not the meaning
        "Caffè Aurora: new oat milk menu across the country",  # close in meaning, but no shared term
    ], [vectors[0], vectors[1], vectors[2], vectors[0]])
    assert a["id"] == b["id"] and not b["is_copy"]
    assert c["id"] != a["id"]
    assert d["id"] != a["id"]  # the brand's own name is in every mention: it binds nothing


def test_the_same_mention_again_is_a_redelivery_not_a_copy():
    brand = BrandStories("aurora")
    first = brand.assign("m0", ORIGINAL, 1.7e9, None)
    again = brand.assign("m0", ORIGINAL, 1.7e9, None)
    assert again["id"] == first["id"] and again["is_copy"] is False


def test_a_restored_state_continues_exactly_as_if_it_never_stopped():
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(5, 384))
    texts, vectors = [], []
    for i in range(400):
        k = int(rng.integers(5))
        texts.append(f"post number {i} about topic {k} " + ("RT @x: " if i % 3 else "") + f"words {k} {i % 7}")
        vectors.append(centres[k] + 0.5 * rng.normal(size=384))
    whole = BrandStories("brand", max_stories=20, max_copy_keys=50)
    expected = assign_all(whole, texts, vectors)
    first = BrandStories("brand", max_stories=20, max_copy_keys=50)
    got = assign_all(first, texts[:200], vectors[:200])
    restored = BrandStories.from_state("brand", orjson.loads(orjson.dumps(first.to_state())),
                                       max_stories=20, max_copy_keys=50)
    got += [restored.assign(f"m{i}", texts[i], 1.7e9 + i, vectors[i]) for i in range(200, 400)]
    assert got == expected
    assert restored.to_state() == whole.to_state()


def test_stories_from_scored_records_are_the_stories_of_the_model_output():
    """The enrich stage hands each mention to the story stage through mentions.scored: the embedding must come
    back bit for bit (stories compare it unquantised), and the record without the hand-over's fields."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 384))
    texts = [f"story {i % 4} about the plant in town {i % 4} and its {i % 5} workers" for i in range(300)]
    vectors = [(centres[i % 4] + 0.7 * rng.normal(size=384)).astype(np.float32) for i in range(300)]
    direct = assign_all(BrandStories("brand"), texts, vectors)
    enriched = {"id": "m1", "brand": "Brand", "text": "t", "processing": {"source_offset": 7}}
    handed_over = []
    for vector in vectors:
        record, raw_key, embedding = read_scored(scored_record(enriched, {"key_base64": "a2V5"}, vector))
        assert record == enriched and raw_key == {"key_base64": "a2V5"}
        assert embedding.dtype == np.float32 and np.array_equal(embedding, vector)
        handed_over.append(embedding)
    assert assign_all(BrandStories("brand"), texts, handed_over) == direct
    assert read_scored(scored_record(enriched, {"key_base64": None}, None))[2] is None


def test_story_ids_are_deterministic_and_per_brand():
    a = assign_all(BrandStories("aurora"), [ORIGINAL, "another thing entirely here now"])
    b = assign_all(BrandStories("aurora"), [ORIGINAL, "another thing entirely here now"])
    c = assign_all(BrandStories("velo"), [ORIGINAL])
    assert a == b
    assert c[0]["id"] != a[0]["id"]


def test_one_text_by_ten_thousand_authors_is_one_story_in_bounded_state():
    book = StoryBook({})
    stories = {book.assign({"id": f"m{i}", "brand": "Acme", "text": ORIGINAL,
                            "created_at": "2026-12-01T10:00:00Z"}, None)["id"] for i in range(10_000)}
    assert len(stories) == 1
    assert book.save("Acme") < 2_000


def test_a_hundred_thousand_active_stories_stay_bounded_and_say_so(caplog):
    brand = BrandStories("acme", max_stories=256, max_copy_keys=2048)
    rng = np.random.default_rng(3)
    with caplog.at_level(logging.INFO, logger="streams.stories.assign"):  # random vectors: each its own story
        ids = [brand.assign(f"m{i}", f"unique post {i} number {i * 7} text", 1.7e9 + i, rng.normal(size=64))["id"]
               for i in range(100_000)]
    assert len(ids) == 100_000  # every mention got a story
    assert len(set(ids)) == 100_000
    assert len(brand.stories) == 256 and len(brand.copies) == 2048
    assert len(orjson.dumps(brand.to_state())) < 300_000
    warnings = [r for r in caplog.records if "active stories" in r.getMessage()]
    assert 1 <= len(warnings) <= 6  # said at 1, 10, 100, ... forgotten: never once per mention
    assert "forgot the least recently active" in warnings[0].getMessage()


def test_stories_silent_past_the_horizon_are_over():
    brand = BrandStories("acme", horizon_s=3600)
    first = brand.assign("m0", ORIGINAL, 1.7e9, None)
    brand.assign("m1", "something else entirely different now", 1.7e9 + 7200, None)
    later = brand.assign("m2", f"RT @a: {ORIGINAL}", 1.7e9 + 7201, None)
    assert later["id"] != first["id"] and later["is_copy"] is False


@pytest.mark.parametrize("text", ["", "   ", "😡😡😡", "🔥", "!!!", "@a @b #c https://x.co"])
def test_empty_and_emoji_only_texts_get_a_story_and_only_identical_ones_group(text):
    brand = BrandStories("acme")
    vector = np.ones(8, np.float32)
    a = brand.assign("m0", text, 1.7e9, vector)
    b = brand.assign("m1", text, 1.7e9 + 1, vector)
    c = brand.assign("m2", text + " 🙂", 1.7e9 + 2, vector)
    assert a["id"] == b["id"] and b["is_copy"]
    assert c["id"] != a["id"]  # too little text to join a story by meaning


def test_a_very_long_text_is_read_in_bounded_time():
    long_text = ("the recall of oat milk " * 200_000)
    sig = signature(long_text)
    assert len(sig.tokens) <= 1000
    brand = BrandStories("acme")
    a = brand.assign("m0", long_text, 1.7e9, None)
    b = brand.assign("m1", long_text + " more at the end", 1.7e9 + 1, None)
    assert a["id"] == b["id"]


def test_a_story_book_over_a_mapping_reloads_what_it_did_not_write_and_survives_a_bad_state(caplog):
    states: dict = {}
    book = StoryBook(states)
    m = {"id": "m0", "brand": "Acme", "text": ORIGINAL, "created_at": "2026-12-01T10:00:00Z"}
    first = book.assign(m, None)
    book.save("Acme")
    other = StoryBook(states)  # another worker after a rebalance
    copy = other.assign({**m, "id": "m1", "text": "RT @x: " + ORIGINAL}, None)
    assert copy["id"] == first["id"]
    states["acme"] = {"version": 99}
    with caplog.at_level(logging.WARNING):
        fresh = StoryBook(states).assign({**m, "id": "m2"}, None)
    assert fresh["is_copy"] is False and "start afresh" in caplog.text
