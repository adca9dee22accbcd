"""The terminal rendering and what every channel says: one label table, one number formatter per language."""
from __future__ import annotations

import pytest

from streams.alerting.channels.email import EmailTarget, email_message
from streams.alerting.channels.slack import slack_message
from streams.alerting.channels.teams import teams_escape, teams_message
from streams.alerting.render import LABELS, LANGUAGES, compact, format_alert, number, summarise
from streams.contracts import validate

from .fixtures import make_alert


def _sample(n: int, text: str, reach: float, score: float, author: str | None = None) -> dict:
    return {"id": f"m{n}", "author": author or f"author-{n}", "text": text, "reach": reach, "score": score,
            "url": f"https://example.com/p/{n}"}


def _alert() -> dict:
    """An alert as the detector builds it (tests/test_explain.py's explanation of an Italian product recall)."""
    recall = "acme telefono richiamo pericolo"
    alert = {
        "schema_version": 1, "event_id": "acme:crisis:1795528800:0", "incident_id": "acme:crisis:1795528800",
        "event": "opened", "kind": "crisis", "brand": "acme", "at": "2026-11-23T14:05:00Z",
        "started_at": "2026-11-23T14:05:00Z", "severity": 7.3, "bucket_seconds": 300,
        "explanation": {
            "observed": 96, "expected": 12.0, "volume_ratio": 8.0, "negative_share": 0.71,
            "baseline_negative_share": 0.18, "reach": 1250000.0, "baseline_reach": 150000.0,
            "top_terms": [{"term": "pericolo", "count": 97, "lift": 49.5}, {"term": "recall", "count": 48, "lift": 25.0},
                          {"term": "richiamo", "count": 48, "lift": 25.0}, {"term": "telefono", "count": 96, "lift": 2.46}],
            "most_reached": [_sample(500, "Acme richiama i telefoni: pericolo batterie", 120000.0, -0.2, "@tg_news"),
                             _sample(147, recall, 1147.0, -0.97), _sample(146, recall, 1146.0, -0.96)],
            "most_negative": [_sample(147, recall, 1147.0, -0.97), _sample(47, "acme telefono recall pericolo", 1047.0, -0.97),
                              _sample(146, recall, 1146.0, -0.96)],
            "languages": {"it": 61, "en": 36}, "sources": {"twitter": 72, "news": 25},
        },
        "emitted_at": "2026-11-23T14:10:02Z",
    }
    assert validate("alert", alert) == []
    return alert


# --- terminal ---------------------------------------------------------------------------------------------

def test_format_alert_in_english_shows_the_key_numbers():
    text = format_alert(_alert(), "en")
    assert text.startswith("[CRISIS OPENED] acme — 2026-11-23 14:05 UTC, severity 7.3")
    for fragment in ("96 mentions vs 12.0 expected (8.0x)", "negative: 71% vs 18% usual", "reach: 1.2M vs 150k",
                     "richiamo (", "languages: it 63%, en 37%", "most reached:", "@tg_news (reach 120k)",
                     "most negative:", "(score -0.97)"):
        assert fragment in text, fragment


def test_format_alert_in_italian_shows_the_key_numbers():
    alert = _alert() | {"event": "resolved", "started_at": "2026-11-23T13:40:00Z"}
    text = format_alert(alert, "it")
    assert text.startswith("[CRISI RISOLTA] acme — 23/11/2026 14:05 UTC (dalle 23/11/2026 13:40 UTC), gravità 7,3")
    for fragment in ("96 menzioni contro 12,0 attese (8,0x)", "negative: 71% contro il 18% abituale",
                     "copertura: 1,2M contro 150k", "termini principali: ", "lingue: it 63%, en 37%", "più visti:",
                     "più negativi:", "fonti: twitter", "(punteggio -0,97)"):
        assert fragment in text, fragment


def test_format_alert_neutralises_terminal_escapes_from_mentions():
    alert = _alert()
    alert["brand"] = "acme\x1b[2J"
    alert["explanation"]["most_reached"][0]["text"] = "normal \x1b]0;pwned\x07 text \u202eevil"
    text = format_alert(alert)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text


def test_format_alert_rejects_unknown_languages():
    with pytest.raises(ValueError, match="unsupported alert language"):
        format_alert(_alert(), "de")


# --- one formatter and one label table per language -------------------------------------------------------

@pytest.mark.parametrize(("value", "digits", "en", "it"), [
    (1234.5, 1, "1,234.5", "1.234,5"), (1234567, 0, "1,234,567", "1.234.567"), (12.0, 1, "12.0", "12,0"),
    (-0.97, 2, "-0.97", "-0,97"), (0, 0, "0", "0"),
])
def test_numbers_group_thousands_the_way_each_language_writes_them(value, digits, en, it):
    assert (number(value, "en", digits), number(value, "it", digits)) == (en, it)


def test_compact_figures_use_the_same_marks():
    assert [compact(v, "en") for v in (999, 1500, 150_000, 1_250_000, 2.5e9)] == ["999", "1.5k", "150k", "1.2M", "2.5B"]
    assert [compact(v, "it") for v in (1500, 1_250_000, 2.5e9)] == ["1,5k", "1,2M", "2,5Mld"]


def test_every_language_has_every_label():
    keys = set(LABELS["en"])
    assert LANGUAGES == tuple(LABELS) and all(set(LABELS[lang]) == keys for lang in LANGUAGES)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_terminal_and_every_channel_write_the_same_numbers(lang):
    """One email carries the terminal text and the HTML table: both must say 1.234 (it) or 1,234 (en)."""
    alert = make_alert()
    alert["explanation"] |= {"observed": 15230, "expected": 1234.5}
    observed, expected = number(15230, lang, 0), number(1234.5, lang)
    volume = dict(summarise(alert, lang).facts)[LABELS[lang]["volume"]]
    assert observed in volume and expected in volume
    assert f"{observed} " in format_alert(alert, lang) and f" {expected} " in format_alert(alert, lang)
    slack_fields = [f["text"] for f in slack_message(alert, lang)["blocks"][1]["fields"]]
    teams_facts = [f["value"] for f in teams_message(alert, lang)["attachments"][0]["content"]["body"][1]["facts"]]
    assert f"*{LABELS[lang]['volume']}*\n{volume}" in slack_fields and teams_escape(volume) in teams_facts
    target = EmailTarget(host="h", port=25, security="none", sender="a@example.org", recipients=("b@example.org",))
    mail = email_message(alert, lang, target, "r")
    plain, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    assert f"{observed} " in plain and f" {expected} " in plain and volume in html
