"""The alert explanation: bucket digests, the term baseline, explanation objects and their terminal text."""
from __future__ import annotations

import json
import random
from datetime import datetime, timezone

import orjson
import pytest

from streams.contracts import validate
from streams.detection import digest as digests
from streams.detection.alert import build_explanation
from streams.detection.detector import Decision
from streams.detection.digest import BucketDigest, TermBaseline, tokenize
from streams.stopwords import stop_words

AT = datetime(2026, 11, 23, 14, 5, tzinfo=timezone.utc)
STARTED = datetime(2026, 11, 23, 13, 40, tzinfo=timezone.utc)


def mention(i: int, text: str, *, label: str = "neutral", score: float = 0.0, followers: int | None = 100,
            reach: int | None = None, language: str = "it", source: str = "twitter", handle: str | None = None) -> dict:
    author = {"id": f"author-{i}"}
    if handle is not None:
        author["handle"] = handle
    if followers is not None:
        author["followers"] = followers
    record = {
        "id": f"m{i}", "brand": "acme", "text": text, "author": author, "url": f"https://example.com/p/{i}",
        "language": language, "source": source,
        "sentiment": {"label": label, "score": score,
                      "probabilities": {"negative": 0.0, "neutral": 1.0, "positive": 0.0}},
    }
    if reach is not None:
        record["reach"] = reach
    return record


def decision(**overrides) -> Decision:
    fields = dict(event="opened", kind="crisis", incident_id="acme:crisis:1795528800", seq=0, at=AT,
                  started_at=AT, severity=7.3, observed=96, expected=12.0, volume_ratio=8.0, negative_share=0.71,
                  baseline_negative_share=0.18, reach=1_250_000.0, baseline_reach=150_000.0)
    fields.update(overrides)
    return Decision(**fields)


def alert_for(d: Decision, explanation: dict) -> dict:
    return {
        "schema_version": 1, "event_id": f"{d.incident_id}:{d.seq}", "incident_id": d.incident_id,
        "event": d.event, "kind": d.kind, "brand": "acme", "at": d.at.isoformat().replace("+00:00", "Z"),
        "started_at": d.started_at.isoformat().replace("+00:00", "Z"), "severity": d.severity,
        "bucket_seconds": 300, "explanation": explanation, "emitted_at": "2026-11-23T14:10:02Z",
    }


# --- tokenising ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The new phone is not working and I want a refund", ["new", "phone", "working", "want", "refund"]),
        ("Il telefono non funziona e voglio il rimborso della spesa", ["telefono", "funziona", "voglio", "rimborso", "spesa"]),
        ("El teléfono no funciona y quiero que me devuelvan el dinero", ["teléfono", "funciona", "quiero", "devuelvan", "dinero"]),
        ("Le téléphone ne marche pas et je veux être remboursé", ["téléphone", "marche", "veux", "remboursé"]),
        ("Das Telefon funktioniert nicht und ich will mein Geld zurück", ["telefon", "funktioniert", "geld", "zurück"]),
        ("O telefone não funciona e eu quero o meu dinheiro de volta", ["telefone", "funciona", "quero", "dinheiro", "volta"]),
    ],
    ids=["en", "it", "es", "fr", "de", "pt"],
)
def test_stop_words_are_removed_in_each_shipped_language(text, expected):
    assert tokenize(text) == expected


def test_tokenize_keeps_hashtags_and_drops_urls_handles_numbers_and_short_tokens():
    text = "RT @acme_it: L'azienda annuncia il #Richiamo di 2024 auto https://t.co/x1 www.acme.it/r @user http x 5G"
    assert tokenize(text) == ["azienda", "annuncia", "#richiamo", "auto", "5g"]


def test_tokenize_keeps_words_with_combining_marks_whole():
    assert tokenize("हिन्दी समाचार") == ["हिन्दी", "समाचार"]


def test_stop_word_lists_are_data_with_one_list_per_language():
    assert {"the", "della", "los", "cette", "nicht", "não"} <= stop_words()
    assert "war" not in stop_words()  # German "was", English content word: left out on purpose
    with pytest.raises(ValueError, match="no stop-word list"):
        stop_words(("xx",))


# --- digests -------------------------------------------------------------------------------------------

def test_digest_counts_labels_reach_languages_and_sources():
    digest = BucketDigest()
    digest.add(mention(1, "rimborso subito", label="negative", score=-0.9, reach=5000, followers=10))
    digest.add(mention(2, "rimborso lento", label="negative", score=-0.4, followers=300, language="en"))
    digest.add(mention(3, "tutto bene", label="positive", score=0.8, followers=None, source="news"))
    digest.add(mention(4, "ok", followers=None, reach=0))
    assert (digest.count, digest.negative, digest.neutral, digest.positive) == (4, 2, 1, 1)
    assert digest.reach == 5300.0  # own reach, else followers, else 0
    assert digest.languages == {"it": 3, "en": 1}
    assert digest.sources == {"twitter": 3, "news": 1}
    assert digest.term_counts()["rimborso"] == 2


def test_a_term_repeated_in_one_mention_counts_once():
    digest = BucketDigest()
    digest.add(mention(1, "truffa truffa truffa #truffa"))
    assert digest.term_counts() == {"#truffa": 1, "truffa": 1}


def test_samples_are_the_three_most_reached_and_three_most_negative():
    digest = BucketDigest()
    digest.add(mention(1, "piccolo", followers=10, label="negative", score=-0.99))
    digest.add(mention(2, "enorme", followers=120_000, handle="bignews", score=0.2))
    digest.add(mention(3, "medio", reach=50_000, followers=1, label="negative", score=-0.5))
    digest.add(mention(4, "grande", followers=90_000, label="positive", score=0.9))
    digest.add(mention(5, "pessimo", followers=20, label="negative", score=-0.8))
    digest.add(mention(6, "brutto", followers=30, label="negative", score=-0.3))
    assert [s["id"] for s in digest.most_reached] == ["m2", "m4", "m3"]
    assert [s["id"] for s in digest.most_negative] == ["m1", "m5", "m3"]
    top = digest.most_reached[0]
    assert top == {"id": "m2", "author": "@bignews", "text": "enorme", "reach": 120_000.0, "score": 0.2,
                   "url": "https://example.com/p/2"}
    assert digest.most_negative[0]["author"] == "author-1"  # no handle: the author id


def test_snippets_are_cut_at_a_word_boundary_and_cleaned_for_terminals():
    text = "\x1b[31mallarme\x1b[0m " + " ".join(f"parola{i}" for i in range(100))
    digest = BucketDigest()
    digest.add(mention(1, text))
    quoted = digest.most_reached[0]["text"]
    assert len(quoted) <= 280 and quoted.endswith("…")
    assert "\x1b" not in quoted
    assert quoted[:-1].split(" ")[-1] in text.split(" ")  # no half word before the ellipsis


def test_round_trip_restores_a_digest_that_continues_identically():
    rng = random.Random(5)
    words = [f"w{i}" for i in range(400)]
    mentions = [mention(i, " ".join(rng.choices(words, k=8)), label=rng.choice(["negative", "neutral", "positive"]),
                        score=rng.uniform(-1, 1), followers=rng.randrange(10_000)) for i in range(600)]
    straight, restored = BucketDigest(), BucketDigest()
    for m in mentions:
        straight.add(m)
        restored = BucketDigest.from_dict(orjson.loads(orjson.dumps(restored.to_dict())))
        restored.add(m)
    assert restored.to_dict() == straight.to_dict()
    assert len(straight.terms) == digests.MAX_TERMS and any(straight.overflow)


def test_from_dict_rejects_another_state_version():
    state = BucketDigest().to_dict() | {"version": 99}
    with pytest.raises(ValueError, match="version"):
        BucketDigest.from_dict(state)


def test_merge_of_small_digests_equals_one_digest_of_all_mentions():
    mentions = [mention(i, f"rimborso prodotto{i % 3}", label="negative" if i % 2 else "neutral",
                        score=-i / 10 if i % 2 else 0.0, followers=i * 100) for i in range(10)]
    whole, first, second = BucketDigest(), BucketDigest(), BucketDigest()
    for i, m in enumerate(mentions):
        whole.add(m)
        (first if i < 5 else second).add(m)
    assert first.merge(second).to_dict() == whole.to_dict()


def test_a_frequent_term_survives_a_bucket_full_of_one_off_words():
    rng = random.Random(2)
    noise = [f"parola{i}" for i in range(5000)]
    digest, truth = BucketDigest(), 0
    for i in range(1000):
        words = rng.choices(noise, k=12)
        if rng.random() < 0.1:
            words.append("richiamo")
            truth += 1
        digest.add(mention(i, " ".join(words)))
    counts = digest.term_counts()
    assert next(iter(counts)) == "richiamo"
    assert truth * 0.9 <= counts["richiamo"] <= truth  # lower bound, and a tight one


def test_merged_counts_stay_lower_bounds_of_the_truth():
    rng = random.Random(9)
    noise = [f"w{i}" for i in range(3000)]
    merged, truth = BucketDigest(), {}
    for bucket in range(6):
        digest = BucketDigest()
        for i in range(300):
            words = set(rng.choices(noise, k=10)) | ({"recall"} if rng.random() < 0.3 else set())
            for w in words:
                truth[w] = truth.get(w, 0) + 1
            digest.add(mention(bucket * 1000 + i, " ".join(words)))
        merged.merge(digest)
    counts = merged.term_counts()
    assert all(counts[t] <= truth[t] for t in counts)
    assert counts["recall"] >= 0.9 * truth["recall"]
    assert len(merged.terms) <= digests.MAX_TERMS


def _busy_bucket_state_bytes(make, n: int = 10_000) -> int:
    digest, largest = BucketDigest(), 0
    for i in range(n):
        digest.add(make(i))
        if i % 1000 == 999:
            largest = max(largest, len(orjson.dumps(digest.to_dict())))  # Faust's json codec is orjson: UTF-8
    return largest


def test_state_stays_small_for_a_busy_bucket_of_10000_mentions():
    rng = random.Random(3)
    vocab = [f"parola{i}" for i in range(20_000)]

    def tweet(i):
        return mention(10**17 + i, " ".join(rng.choices(vocab, k=20)) + " #richiamo https://t.co/abcdefghij",
                       handle=f"utente_{i}", followers=rng.randrange(10**6), language=rng.choice(["it", "en", "es"]),
                       label=rng.choice(["negative", "neutral"]), score=-rng.random())

    assert _busy_bucket_state_bytes(tweet) < 8 * 1024


def test_state_is_bounded_even_for_adversarial_mentions():
    """Longest terms in 4-byte characters, ids that JSON escapes, huge handles, URLs and counter keys."""
    rng = random.Random(4)
    gothic = [chr(c) for c in range(0x10330, 0x1034A)]

    def hostile(i):
        record = mention(i, " ".join("".join(rng.choices(gothic, k=40)) for _ in range(10)), label="negative",
                         score=-0.12345678901234567, handle="𐌰" * 1000, followers=10**12 + i,
                         language="\x01" * 100 + str(i), source="\x01" * 100 + str(i))
        return record | {"id": ("\x01" * 256 + str(i))[-256:], "url": "https://e.com/" + "𐌰" * 1000}

    assert _busy_bucket_state_bytes(hostile) < 64 * 1024


# --- baseline and lift ---------------------------------------------------------------------------------

USUAL_WORDS = ["telefono", "batteria", "schermo", "prezzo", "negozio", "offerta", "consegna", "app"]


def _baseline_of_usual_talk(buckets: int = 150) -> TermBaseline:
    rng = random.Random(11)
    baseline = TermBaseline()
    for b in range(buckets):
        digest = BucketDigest()
        for i in range(12):
            digest.add(mention(b * 100 + i, "acme " + " ".join(rng.sample(USUAL_WORDS, 3))))
        baseline.update(digest)
    return baseline


def test_lift_prefers_new_terms_over_words_that_are_always_there():
    rng = random.Random(12)
    baseline = _baseline_of_usual_talk()
    incident = BucketDigest()
    for i in range(96):
        words = ["acme", *rng.sample(USUAL_WORDS, 3)]
        words += ["richiamo"] if i % 2 else ["recall"]
        if i % 3 == 0:
            words.append("#boicottaacme")
        incident.add(mention(i, " ".join(rng.sample(words, len(words))), label="negative", score=-0.8))
    incident.add(mention(999, "zanzibar acme"))  # seen once: must not win
    terms = digests.top_terms(incident, baseline)
    assert {t["term"] for t in terms[:2]} == {"richiamo", "recall"}
    assert terms[2]["term"] == "#boicottaacme"
    assert not {"acme", "zanzibar", *USUAL_WORDS} & {t["term"] for t in terms}
    assert terms[0]["count"] == 48 and terms[0]["lift"] > 10


def test_a_term_seen_once_never_outranks_a_repeated_one():
    assert digests.term_lift(1, 100, 0.0) < digests.term_lift(20, 100, 0.05)


def test_baseline_is_bounded_remembers_what_it_pruned_and_round_trips():
    baseline = TermBaseline(max_terms=50)
    for b in range(20):
        digest = BucketDigest()
        for i in range(30):
            digest.add(mention(i, f"comune raro{b}x{i} raro{b}y{i}"))
        baseline.update(digest)
    assert len(baseline.frequencies) == 50 and baseline.floor > 0
    assert baseline.share("mai_visto_qui") == baseline.share("raro0x1") > 0  # pruned: assumed as frequent as the floor
    assert baseline.share("comune") > 0.9
    restored = TermBaseline.from_dict(json.loads(json.dumps(baseline.to_dict())), max_terms=50)
    assert restored.to_dict() == baseline.to_dict()


def test_baseline_decays_with_buckets_even_empty_ones():
    baseline = TermBaseline(half_life_buckets=10)
    digest = BucketDigest()
    digest.add(mention(1, "richiamo"))
    baseline.update(digest)
    for _ in range(10):
        baseline.update(BucketDigest())
    assert baseline.frequencies["richiamo"] == pytest.approx(0.5)
    assert baseline.mentions == pytest.approx(0.5)


# --- explanation and alert text ------------------------------------------------------------------------

def _incident_digests() -> list[BucketDigest]:
    rng = random.Random(13)
    digests = []
    for b in range(2):
        digest = BucketDigest()
        for i in range(48):
            n = b * 100 + i
            digest.add(mention(n, f"acme telefono {rng.choice(['richiamo', 'recall'])} pericolo",
                               label="negative", score=-0.5 - i / 100, followers=1000 + n,
                               language="it" if i % 10 < 6 else "en", source="news" if i % 4 == 0 else "twitter"))
        digests.append(digest)
    digests[0].add(mention(500, "Acme richiama i telefoni: pericolo batterie", followers=120_000, handle="tg_news",
                           score=-0.2, source="news"))
    return digests


def test_explanation_carries_the_decision_numbers_and_the_evidence():
    ex = build_explanation(decision(), _incident_digests(), _baseline_of_usual_talk())
    assert (ex["observed"], ex["expected"], ex["volume_ratio"]) == (96, 12.0, 8.0)
    assert (ex["negative_share"], ex["baseline_negative_share"]) == (0.71, 0.18)
    assert (ex["reach"], ex["baseline_reach"]) == (1_250_000.0, 150_000.0)
    assert {t["term"] for t in ex["top_terms"][:3]} == {"richiamo", "recall", "pericolo"}
    assert ex["most_reached"][0]["author"] == "@tg_news"
    assert [s["id"] for s in ex["most_negative"]] == ["m147", "m47", "m146"]  # equal scores: larger reach first
    assert ex["languages"] == {"it": 61, "en": 36} and sum(ex["sources"].values()) == 97
    assert list(ex["languages"]) == ["it", "en"]  # largest first


def test_a_full_alert_with_the_explanation_matches_the_alert_schema():
    d = decision(event="updated", seq=2, started_at=STARTED)
    alert = alert_for(d, build_explanation(d, _incident_digests(), _baseline_of_usual_talk()))
    assert validate("alert", alert) == []


def test_explanation_refuses_non_finite_numbers():
    with pytest.raises(ValueError, match="volume_ratio"):
        build_explanation(decision(volume_ratio=float("inf")), [], TermBaseline())

