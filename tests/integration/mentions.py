"""Test traffic: valid multilingual mentions and every kind of bad input, each with the reason it must get."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson

TEXTS = {
    "it": ["Il nuovo menù di {b} è fantastico, complimenti!", "Servizio pessimo da {b}, mai più.",
           "Oggi sono passato da {b} in centro.", "Che delusione il caffè di {b} stamattina"],
    "en": ["Loving the new app from {b}, great update!", "{b} support is useless, still waiting for a refund",
           "Just saw an ad for {b} on the train.", "Terrible experience with {b} today, never again"],
    "es": ["Me encanta el nuevo servicio de {b}", "{b} es un desastre, nadie contesta", "Hoy abrieron una tienda de {b}"],
    "fr": ["Super expérience avec {b}, je recommande", "{b} a encore annulé ma commande, honteux"],
    "de": ["Der Kundenservice von {b} ist wirklich hervorragend", "{b} hat schon wieder Verspätung, ärgerlich"],
    "pt": ["Adorei o atendimento da {b}", "A {b} cobrou duas vezes, que vergonha"],
}
BRANDS = ["Caffè Aurora", "Nordwind Air", "Lumen Bank", "Velo Motors"]
SOURCES = ["twitter", "reddit", "news", "review", "forum"]


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def valid_mentions(n: int, *, start: datetime, seconds: float, seed: int = 1) -> list[dict]:
    """``n`` valid mentions spread over ``seconds`` from ``start``, in time order."""
    rng = random.Random(seed)
    offsets = sorted(rng.uniform(0, seconds) for _ in range(n))
    records = []
    for i, offset in enumerate(offsets):
        language = rng.choice(list(TEXTS))
        brand = rng.choice(BRANDS)
        records.append({
            "id": f"m-{seed}-{i}",
            "brand": brand,
            "source": rng.choice(SOURCES),
            "text": rng.choice(TEXTS[language]).format(b=brand) + f" #{i}",
            "created_at": rfc3339(start + timedelta(seconds=offset)),
            "author": {"id": f"u{rng.randrange(10_000)}", "handle": f"user{rng.randrange(10_000)}",
                       "followers": int(rng.paretovariate(1.2) * 50)},
            "url": f"https://example.org/p/{seed}/{i}",
        })
    return records


def invalid_messages(n: int, valid: list[dict], *, now: datetime) -> list[tuple[bytes, bytes, str]]:
    """``n`` bad messages as (key, value, expected reason), cycling through every case."""
    base = valid[0]

    def variant(**changes) -> bytes:
        record = {**base, "id": f"bad-{len(out)}", **changes}
        return orjson.dumps({k: v for k, v in record.items() if v is not _DROP})

    out: list[tuple[bytes, bytes, str]] = []
    cases = [
        (lambda: b'{"id": "x", "brand": ', "invalid_json"),
        (lambda: b"\xff\xfe not utf-8 \xc3\x28", "invalid_utf8"),
        (lambda: b'["an", "array"]', "not_an_object"),
        (lambda: variant(brand=_DROP), "missing_field"),
        (lambda: variant(author={"id": "a", "followers": "12"}), "wrong_type"),
        (lambda: variant(text=""), "empty_text"),
        (lambda: variant(text=" \n\t  "), "empty_text"),
        (lambda: variant(text="x" * (1024 * 1024)), "message_too_large"),
        (lambda: variant(created_at=rfc3339(now + timedelta(days=30))), "timestamp_in_future"),
        (lambda: variant(created_at="1990-01-01T00:00:00Z"), "timestamp_too_old"),
        (lambda: variant(created_at="yesterday"), "invalid_timestamp"),
        (lambda: variant(source="carrier-pigeon"), "unknown_source"),
        (lambda: orjson.dumps(valid[len(out) % len(valid)]), "duplicate"),
    ]
    while len(out) < n:
        make, reason = cases[len(out) % len(cases)]
        out.append((f"bad-{len(out)}".encode(), make(), reason))
    return out


class _Drop:
    pass


_DROP = _Drop()
