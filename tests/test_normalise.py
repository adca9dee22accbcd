"""Ingest without a broker: each bad input gets its reason code and a detail naming the field; good input
comes out normalised."""
from __future__ import annotations

import json
import unicodedata
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from streams import contracts
from streams.text import brand_allow_list
from streams.normalise import (
    Mention,
    Rejection,
    dedup_key,
    detect_language,
    model_text,
    normalise_text,
    parse_mention,
    truncate_text,
)

NOW = datetime(2026, 5, 4, 14, 0, tzinfo=timezone.utc)
LIMITS = {"now": NOW, "max_future_s": 3600, "max_age_s": 7 * 24 * 3600}

GOOD = {
    "id": "t-1",
    "brand": "Acme",
    "source": "twitter",
    "text": "Il nuovo frullatore di Acme è fantastico, lo consiglio a tutti!",
    "created_at": "2026-05-04T13:45:00Z",
    "author": {"id": "42", "handle": "@cucina_vera", "followers": 1200},
    "url": "https://x.com/cucina_vera/status/1",
    "lang": "it",
    "reach": 5000,
}


def parse(record: object, **overrides) -> Mention | Rejection:
    value = record if isinstance(record, bytes) else orjson.dumps(record)
    return parse_mention(value, **{**LIMITS, **overrides})


def with_(**changes) -> dict:
    return {**GOOD, **changes}


def without(*names: str) -> dict:
    return {key: value for key, value in GOOD.items() if key not in names}


def rejected(record: object, reason: str, *detail_mentions: str, **overrides) -> Rejection:
    result = parse(record, **overrides)
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result
    for word in detail_mentions:
        assert word in result.detail, result.detail
    return result


# --- the happy path ---------------------------------------------------------------------------------

def test_a_good_mention_passes_valid_and_normalised():
    mention = parse(GOOD)
    assert isinstance(mention, Mention)
    assert contracts.validate("raw", mention.record) == []
    assert mention.record == GOOD
    assert mention.created_at == datetime(2026, 5, 4, 13, 45, tzinfo=timezone.utc)
    assert mention.text_truncated is False
    assert (mention.language, mention.language_confidence > 0.5) == ("it", True)


def test_unknown_fields_are_allowed_but_dropped():
    mention = parse(with_(retweeted=True, author={"id": "42", "verified": True}))
    assert isinstance(mention, Mention)
    assert "retweeted" not in mention.record
    assert mention.record["author"] == {"id": "42"}


def test_source_and_lang_hint_are_lower_cased_before_validation():
    mention = parse(with_(source="Twitter", lang="IT"))
    assert (mention.record["source"], mention.record["lang"]) == ("twitter", "it")


def test_lang_hint_reduced_to_iso_639_1_or_dropped():
    assert parse(with_(lang="pt-BR")).record["lang"] == "pt"
    assert "lang" not in parse(with_(lang="und")).record


def test_created_at_is_converted_to_utc_with_z():
    mention = parse(with_(created_at="2026-05-04T15:45:00+02:00"))
    assert mention.record["created_at"] == "2026-05-04T13:45:00Z"
    assert mention.created_at.utcoffset() == timedelta(0)


def test_the_record_is_independent_of_the_input_message():
    original = orjson.dumps(GOOD)
    parse(original).record["author"]["id"] = "changed"
    assert parse(original).record["author"]["id"] == "42"


# --- rejections, in the order they are checked --------------------------------------------------------

def test_one_megabyte_text_is_message_too_large():
    rejection = rejected(with_(text="a" * 1024 * 1024), "message_too_large", "bytes", "524288")
    assert rejection.mention_id is None


def test_size_limit_is_configurable():
    rejected(GOOD, "message_too_large", max_bytes=100)


def test_invalid_utf8_says_at_which_byte():
    value = orjson.dumps(GOOD).replace(b"\xc3\xa8", b"\xe8")  # Latin-1 'è' inside UTF-8 JSON
    position = value.index(b"\xe8")
    rejected(value, "invalid_utf8", f"byte {position}")


@pytest.mark.parametrize("value", [b'{"id": "1", "brand": ', b"{'id': '1'}", b"", b'{"id": "1",}'])
def test_malformed_json_is_invalid_json(value):
    rejected(value, "invalid_json", "line 1")


@pytest.mark.parametrize(("value", "got"), [(b"[1, 2]", "array"), (b'"text"', "string"), (b"null", "null")])
def test_json_that_is_not_an_object(value, got):
    rejected(value, "not_an_object", got)


@pytest.mark.parametrize("name", ["id", "brand", "source", "text", "created_at", "author"])
def test_missing_field_is_named(name):
    rejection = rejected(without(name), "missing_field", name)
    assert rejection.mention_id == (None if name == "id" else "t-1")


def test_missing_nested_field_is_named_with_its_path():
    rejected(with_(author={"handle": "@x"}), "missing_field", "author.id")


def test_all_missing_fields_are_named():
    rejected(without("brand", "text"), "missing_field", "brand", "text")


@pytest.mark.parametrize(("changes", "field", "expected", "got"), [
    ({"author": {"id": "42", "followers": "12"}}, "author.followers", "integer", "string '12'"),
    ({"id": 17}, "id", "string", "integer 17"),
    ({"text": ["a"]}, "text", "string", "array"),
    ({"author": "bob"}, "author", "object", "string"),
    ({"reach": 1.5}, "reach", "integer", "number"),
    ({"created_at": 1714830300}, "created_at", "string", "integer"),
    ({"source": None}, "source", "string", "null"),
    ({"author": {"id": "42", "followers": True}}, "author.followers", "integer", "boolean"),
])
def test_wrong_type_names_field_expected_and_got(changes, field, expected, got):
    rejected(with_(**changes), "wrong_type", f"field {field} ", expected, got)


def test_wrong_type_id_still_reports_the_id():
    assert parse(with_(id=17, text=3)).mention_id == "17"


def test_unknown_source_lists_the_allowed_values():
    rejected(with_(source="LinkedIn"), "unknown_source", "'linkedin'", "twitter", "mastodon", "other")


@pytest.mark.parametrize("text", ["", "   ", "\t\n \u00a0", "\x00\x01", "\u200b"])
def test_empty_or_whitespace_text_is_empty_text(text):
    rejected(with_(text=text), "empty_text", "field text")


def test_naive_timestamp_is_invalid_timestamp():
    rejected(with_(created_at="2026-05-04T13:45:00"), "invalid_timestamp", "created_at", "no UTC offset")


@pytest.mark.parametrize("value", ["yesterday", "2026-05-04", "04/05/2026 13:45", "2026-13-01T00:00:00Z"])
def test_non_rfc3339_timestamp_is_invalid_timestamp(value):
    rejected(with_(created_at=value), "invalid_timestamp", "created_at", value)


def test_far_future_timestamp():
    rejected(with_(created_at="2027-05-04T13:45:00Z"), "timestamp_in_future", "created_at", "ahead", "3600")


def test_far_past_timestamp():
    rejected(with_(created_at="2019-05-04T13:45:00Z"), "timestamp_too_old", "created_at", "old", "604800")


def test_time_window_edges_are_inclusive_and_can_be_disabled():
    assert isinstance(parse(with_(created_at="2026-05-04T15:00:00Z")), Mention)
    rejected(with_(created_at="2026-05-04T15:00:01Z"), "timestamp_in_future")
    assert isinstance(parse(with_(created_at="2019-05-04T13:45:00Z"), max_age_s=None), Mention)


@pytest.mark.parametrize(("changes", "field"), [
    ({"id": ""}, "id"),
    ({"id": "x" * 257}, "id"),
    ({"reach": -1}, "reach"),
    ({"author": {"id": "42", "followers": -5}}, "author.followers"),
    ({"brand": ""}, "brand"),
])
def test_other_schema_violations_are_invalid_value_with_the_path(changes, field):
    rejected(with_(**changes), "invalid_value", f"field {field}:")


def test_the_most_specific_error_wins_and_the_others_are_mentioned():
    rejection = rejected(with_(reach=-1, author={"id": "42", "followers": "12"}), "wrong_type", "author.followers")
    assert "also" in rejection.detail and "reach" in rejection.detail


@pytest.mark.parametrize(("record", "reason"), [
    ({**without("text"), "author": {"id": "42", "followers": "12"}}, "missing_field"),
    ({**GOOD, "source": "linkedin", "author": {"id": "42", "followers": "12"}}, "wrong_type"),
    ({**GOOD, "source": "linkedin", "text": " "}, "unknown_source"),
    ({**GOOD, "text": " ", "created_at": "yesterday"}, "empty_text"),
    ({**GOOD, "created_at": "yesterday", "reach": -1}, "invalid_timestamp"),
    ({**GOOD, "created_at": "2027-05-04T13:45:00Z", "reach": -1}, "invalid_value"),
])
def test_schema_errors_are_reported_in_priority_order(record, reason):
    rejected(record, reason)


def test_checks_before_the_schema_run_cheapest_first():
    rejected(b"\xff" * 600_000, "message_too_large")
    rejected(b"\xff[", "invalid_utf8")


def test_now_must_be_aware():
    with pytest.raises(ValueError, match="aware"):
        parse_mention(orjson.dumps(GOOD), now=datetime(2026, 5, 4), max_future_s=1, max_age_s=1)


# --- normalisation -----------------------------------------------------------------------------------

def test_decomposed_accent_becomes_composed():
    decomposed = "caff" + "e\u0300"  # 'e' + combining grave accent
    assert len(decomposed) == 6
    mention = parse(with_(text=f"Acme, un {decomposed} pessimo"))
    assert mention.record["text"] == "Acme, un caff\u00e8 pessimo"
    assert unicodedata.is_normalized("NFC", mention.record["text"])


def test_whitespace_is_collapsed_and_control_characters_removed():
    assert normalise_text("  Acme\t\t is   \u00a0great\x00\x07 \r\n\r\n\n  really  ") == "Acme is great\nreally"


def test_long_text_is_truncated_not_rejected():
    mention = parse(with_(text="Acme " * 2000), max_text_chars=5000)
    assert isinstance(mention, Mention)
    assert mention.text_truncated is True
    assert len(mention.record["text"]) <= 5000
    assert mention.record["text"].startswith("Acme Acme")


def test_truncation_keeps_accents_and_emoji_whole():
    assert truncate_text("ab" + "e\u0301", 3) == ("ab", True)  # NFD 'é' would lose its accent at 3
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert truncate_text("hi " + family + "!", 5) == ("hi", True)
    assert truncate_text("short", 10) == ("short", False)


def test_handles_and_urls_stay_in_the_stored_text_but_not_in_model_text():
    text = "@AcmeSupport il mio ordine? https://acme.it/ordini/123 cc @mario_rossi@mastodon.uno e www.acme.it"
    mention = parse(with_(text=text))
    assert mention.record["text"] == text
    assert model_text(text) == "@user il mio ordine? http cc @user e http"
    assert model_text("scrivete a info@acme.it") == "scrivete a info@acme.it"


# --- language --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "sentence"), [
    ("it", "Ho comprato il nuovo frullatore e si è rotto dopo due giorni, il servizio clienti non risponde."),
    ("en", "I bought the new blender and it broke after two days, customer service is not answering."),
    ("es", "Compré la nueva licuadora y se rompió después de dos días, el servicio al cliente no responde."),
    ("fr", "J'ai acheté le nouveau mixeur et il est tombé en panne après deux jours, le service client ne répond pas."),
    ("de", "Ich habe den neuen Mixer gekauft und er ist nach zwei Tagen kaputtgegangen, der Kundendienst antwortet nicht."),
    ("pt", "Comprei o novo liquidificador e ele quebrou depois de dois dias, o atendimento ao cliente não responde."),
])
def test_detect_language(code, sentence):
    language, confidence = detect_language(sentence)
    assert language == code
    assert 0.5 < confidence <= 1.0


def test_short_text_is_und_unless_a_valid_hint_helps():
    assert detect_language("ok") == ("und", 0.0)
    language, confidence = detect_language("ok", hint="EN")
    assert language == "en" and 0 < confidence < 1
    assert detect_language("ok", hint="klingon") == ("und", 0.0)


def test_text_beats_a_wrong_hint():
    assert detect_language("Ho comprato il nuovo frullatore e si è rotto dopo due giorni.", hint="en")[0] == "it"


def test_detect_language_survives_control_characters():
    assert detect_language("\x01\x02\x7f")[0] == "und"


# --- dedup and dead letters -----------------------------------------------------------------------

def test_dedup_key_is_per_brand():
    key = dedup_key(GOOD)
    assert key == "acme\x1ftwitter\x1ft-1"  # the brand's identity: case-folded
    assert dedup_key({**GOOD, "brand": "Globex"}) != key
    assert dedup_key({**GOOD, "text": "edited"}) == key


def test_rejection_reason_must_be_a_documented_code():
    with pytest.raises(ValueError, match="unknown reason code"):
        Rejection("bad_vibes", "no")
    assert Rejection("duplicate", "seen before", "t-1").reason == "duplicate"


# --- hostile input (issue 12): each once crashed the ingest agent, lost a message or silenced a brand ------

def accepted(record: object, **overrides) -> Mention:
    result = parse(record, **overrides)
    assert isinstance(result, Mention), result
    assert contracts.validate("raw", result.record) == []
    return result


def test_the_leap_second_at_the_end_of_year_9999_is_an_invalid_timestamp():
    """Regression: OverflowError in contracts crashed the ingest agent; the message was lost."""
    rejected(with_(created_at="9999-12-31T23:59:60Z"), "invalid_timestamp", "outside the years")
    rejected(with_(created_at="0001-01-01T00:00:00+01:00"), "invalid_timestamp", "outside the years")


def test_a_text_nested_1000_deep_is_rejected_without_recursion():
    """Regression: a RecursionError while building the jsonschema message crashed the ingest agent."""
    value = orjson.dumps(GOOD)[:-1] + b',"text2":0}'
    deep = value.replace(b'"text":' + orjson.dumps(GOOD["text"]), b'"text":' + b"[" * 1000 + b"]" * 1000)
    rejected(deep, "invalid_value", "field text[0][0]", "nested more than 64 levels")
    unknown_deep = orjson.dumps(GOOD)[:-1] + b',"extra":' + b"[" * 200 + b"]" * 200 + b"}"
    rejected(unknown_deep, "invalid_value", "field extra")
    rejected(with_(text=[[["shallow"]]]), "wrong_type", "field text must be string")


@pytest.mark.parametrize(("followers", "expected"), [
    (1e308, 10_000_000_000), (10 ** 40, 10_000_000_000), (1e30, 10_000_000_000), (5.0, 5), (1200, 1200),
    (18446744073709551615, 10_000_000_000), (9_999_999_999, 9_999_999_999),
])
def test_followers_and_reach_are_forwarded_as_bounded_exact_integers(followers, expected):
    """Regression: followers 1e308 passed as an integer; two of them made a bucket's reach infinite."""
    value = json.dumps(with_(author={"id": "42", "followers": followers}, reach=followers)).encode()  # big ints
    mention = accepted(value)
    for value in (mention.record["author"]["followers"], mention.record["reach"]):
        assert value == expected and type(value) is int
    assert b"e+" not in orjson.dumps(mention.record)


def test_a_fractional_follower_count_is_still_wrong_type():
    rejected(with_(reach=5.5), "wrong_type", "field reach must be integer")


@pytest.mark.parametrize("text", ["\u200b\u200e\u202e\u2066", "\ufeff\u200d\u2069 \u061c", "\u3164\u2800\ufe0f"])
def test_a_text_of_only_invisible_characters_is_empty_text(text):
    rejected(with_(text=text), "empty_text", "only whitespace, control or invisible")


def test_visible_text_keeps_its_joiners():
    assert accepted(with_(text="👩\u200d💻 Acme")).record["text"] == "👩\u200d💻 Acme"


@pytest.mark.parametrize("lang", ["zz", "qq", "xx", "un"])
def test_a_two_letter_label_that_is_no_iso_639_1_code_is_dropped(lang):
    assert "lang" not in accepted(with_(lang=lang)).record


def test_a_repeated_key_is_invalid_json_not_silently_the_last():
    value = orjson.dumps(GOOD)[:-1] + b',"brand":"Globex"}'
    rejected(value, "invalid_json", "duplicate key 'brand'")
    author = orjson.dumps(GOOD).replace(b'"id":"42"', b'"id":"42","id":"43"')
    rejected(author, "invalid_json", "duplicate key 'id'")


@pytest.mark.parametrize("url", ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,<b>x</b>",
                                 "vbscript:msgbox", "https://", "ftp://example.org/x", "http://" + "a" * 5000])
def test_only_http_and_https_urls_survive(url):
    assert "url" not in accepted(with_(url=url)).record


def test_an_http_url_is_kept():
    assert accepted(with_(url=" HTTPS://example.org/p?q=1 ")).record["url"] == "HTTPS://example.org/p?q=1"


@pytest.mark.parametrize("brand", ["", "   ", "\u200b", "\u202e\u2066", "\ufeff \u3164"])
def test_a_brand_with_nothing_visible_is_rejected(brand):
    rejected(with_(brand=brand), "invalid_value", "field brand")


def test_spellings_of_one_brand_are_one_brand():
    nfd = unicodedata.normalize("NFD", "Caffè  Aurora")
    spellings = ["Caffè Aurora", nfd, " Caffè\u200b Aurora\t", "CAFFÈ AURORA"]
    records = [accepted(with_(brand=brand)).record for brand in spellings]
    assert [r["brand"] for r in records[:3]] == ["Caffè Aurora"] * 3  # the case is kept for display
    assert len({dedup_key(r) for r in records}) == 1


def test_an_allow_list_rejects_unknown_brands_and_spells_known_ones_its_way():
    allowed = brand_allow_list("Acme, Lumen Bank")
    rejected(with_(brand="Acme Fake"), "unknown_brand", "'Acme Fake'", allowed_brands=allowed)
    assert accepted(with_(brand="ACME"), allowed_brands=allowed).record["brand"] == "Acme"
    assert accepted(with_(brand="lumen  bank"), allowed_brands=allowed).record["brand"] == "Lumen Bank"


def test_the_allow_list_may_be_a_file(tmp_path):
    path = tmp_path / "brands.txt"
    path.write_text("# tracked brands\nAcme\n\nLumen Bank  # since May\n", encoding="utf-8")
    assert brand_allow_list(f"@{path}") == {"acme": "Acme", "lumen bank": "Lumen Bank"}
    assert brand_allow_list("") is None
    with pytest.raises(ValueError, match="cannot read"):
        brand_allow_list(f"@{tmp_path / 'missing.txt'}")
    with pytest.raises(ValueError, match="names no brand"):
        brand_allow_list(" , \u200b")
