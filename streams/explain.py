"""Terminal rendering of an alert, in English or Italian (``ascolta demo`` prints alerts with it).

The explanation itself is built in :mod:`streams.detection.alert`; this module only renders it.
"""
from __future__ import annotations

from datetime import datetime, timezone

from .detection.digest import clean_text, snippet

_LABELS = {
    "en": {
        ("crisis", "opened"): "CRISIS OPENED",
        ("crisis", "updated"): "CRISIS UPDATED",
        ("crisis", "resolved"): "CRISIS RESOLVED",
        ("opportunity", "opened"): "OPPORTUNITY OPENED",
        ("opportunity", "updated"): "OPPORTUNITY UPDATED",
        ("opportunity", "resolved"): "OPPORTUNITY RESOLVED",
        "since": "since",
        "severity": "severity",
        "volume": "volume: {observed} mentions vs {expected} expected ({ratio}x)",
        "negative": "negative: {share} vs {usual} usual",
        "reach": "reach: {reach} vs {usual} usual",
        "top_terms": "top terms",
        "no_terms": "no unusual terms",
        "languages": "languages",
        "sources": "sources",
        "most_reached": "most reached",
        "most_negative": "most negative",
        "reach_unit": "reach",
        "score_unit": "score",
        "line": "{head}: {observed} vs {expected} expected ({ratio}x), negative {share} (usual {usual})",
        "date": "%Y-%m-%d %H:%M UTC",
    },
    "it": {
        ("crisis", "opened"): "CRISI APERTA",
        ("crisis", "updated"): "CRISI AGGIORNATA",
        ("crisis", "resolved"): "CRISI RISOLTA",
        ("opportunity", "opened"): "OPPORTUNITÀ APERTA",
        ("opportunity", "updated"): "OPPORTUNITÀ AGGIORNATA",
        ("opportunity", "resolved"): "OPPORTUNITÀ RISOLTA",
        "since": "dalle",
        "severity": "gravità",
        "volume": "volume: {observed} menzioni contro {expected} attese ({ratio}x)",
        "negative": "negative: {share} contro il {usual} abituale",
        "reach": "copertura: {reach} contro {usual} abituale",
        "top_terms": "termini principali",
        "no_terms": "nessun termine insolito",
        "languages": "lingue",
        "sources": "fonti",
        "most_reached": "più visti",
        "most_negative": "più negativi",
        "reach_unit": "copertura",
        "score_unit": "punteggio",
        "line": "{head}: {observed} contro {expected} attese ({ratio}x), negative {share} (di solito {usual})",
        "date": "%d/%m/%Y %H:%M UTC",
    },
}
TERMINAL_SNIPPET_CHARS = 160


def _number(value: float, lang: str, digits: int = 1) -> str:
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if lang == "it" else text


def _compact(value: float, lang: str) -> str:
    """120000 -> "120k", 1234567 -> "1.2M": reach figures read at a glance."""
    for limit, suffix in ((1e9, "B" if lang == "en" else "Mld"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            return _number(scaled, lang, 0 if scaled >= 100 else 1) + suffix
    return str(int(round(value)))


def percent(share: float) -> str:
    return f"{round(share * 100)}%"


def moment(text: str, date_format: str) -> str:
    """An RFC 3339 timestamp as UTC in ``date_format``; anything unparsable is shown cleaned, as is."""
    try:
        parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return clean_text(str(text))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).strftime(date_format)


def shares(counter: dict, limit: int = 5) -> str:
    """``{"it": 6, "en": 4}`` -> ``"it 60%, en 40%"``, largest first."""
    total = sum(counter.values())
    if not total:
        return "-"
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{clean_text(str(key))} {percent(count / total)}" for key, count in ranked[:limit])


def _labels(lang: str) -> dict:
    if lang not in _LABELS:
        raise ValueError(f"unsupported alert language {lang!r}; choose one of {sorted(_LABELS)}")
    return _LABELS[lang]


def _headline(alert: dict, labels: dict, lang: str) -> str:
    kind_event = labels.get((alert.get("kind"), alert.get("event")), f"{alert.get('kind')} {alert.get('event')}".upper())
    at = moment(alert.get("at", ""), labels["date"])
    head = f"[{clean_text(kind_event)}] {clean_text(str(alert.get('brand', '')))} — {at}"
    if alert.get("event") != "opened" and alert.get("started_at"):
        head += f" ({labels['since']} {moment(alert['started_at'], labels['date'])})"
    return f"{head}, {labels['severity']} {_number(float(alert.get('severity', 0)), lang)}"


def format_alert(alert: dict, lang: str = "en") -> str:
    """A multi-line, terminal-safe rendering of an alert event, in English ("en") or Italian ("it")."""
    labels = _labels(lang)
    ex = alert.get("explanation", {})
    lines = [
        _headline(alert, labels, lang),
        "  " + labels["volume"].format(
            observed=ex.get("observed", 0),
            expected=_number(ex.get("expected", 0), lang),
            ratio=_number(ex.get("volume_ratio", 0), lang),
        ),
        "  " + labels["negative"].format(
            share=percent(ex.get("negative_share", 0)), usual=percent(ex.get("baseline_negative_share", 0))
        ),
        "  " + labels["reach"].format(
            reach=_compact(ex.get("reach", 0), lang), usual=_compact(ex.get("baseline_reach", 0), lang)
        ),
    ]
    terms = [
        f"{clean_text(str(t['term']))} ({t['count']}, lift {_number(t['lift'], lang)})" for t in ex.get("top_terms", [])
    ]
    lines.append(f"  {labels['top_terms']}: " + (", ".join(terms) if terms else labels["no_terms"]))
    lines.append(f"  {labels['languages']}: {shares(ex.get('languages', {}))}")
    lines.append(f"  {labels['sources']}: {shares(ex.get('sources', {}))}")
    for key, detail in (("most_reached", "reach_unit"), ("most_negative", "score_unit")):
        samples = ex.get(key, [])
        if not samples:
            continue
        lines.append(f"  {labels[key]}:")
        for sample in samples:
            figure = (
                _compact(sample.get("reach", 0), lang)
                if key == "most_reached"
                else _number(sample.get("score", 0), lang, 2)
            )
            text = snippet(str(sample.get("text", "")), TERMINAL_SNIPPET_CHARS)
            line = f"    {clean_text(str(sample.get('author', '')))} ({labels[detail]} {figure}): \"{text}\""
            if sample.get("url"):
                line += f" {clean_text(str(sample['url']))}"
            lines.append(line)
    return "\n".join(lines)


def format_alert_line(alert: dict, lang: str = "en") -> str:
    """A one-line summary of an alert event (for logs, chat notifications, ``--follow`` output)."""
    labels = _labels(lang)
    ex = alert.get("explanation", {})
    line = labels["line"].format(
        head=_headline(alert, labels, lang),
        observed=ex.get("observed", 0),
        expected=_number(ex.get("expected", 0), lang),
        ratio=_number(ex.get("volume_ratio", 0), lang),
        share=percent(ex.get("negative_share", 0)),
        usual=percent(ex.get("baseline_negative_share", 0)),
    )
    terms = [clean_text(str(t["term"])) for t in ex.get("top_terms", [])[:3]]
    return line + (f" — {', '.join(terms)}" if terms else "")
