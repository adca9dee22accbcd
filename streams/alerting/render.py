"""What an alert says, in each supported language: one label table and one number formatter per language,
serving the terminal (:func:`format_alert`) and every channel (:func:`summarise`, which channels escape).

Adding a language is one entry in :data:`LABELS`; routes, the receiver and every channel take it from there.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ..detection.digest import clean_text, snippet

LABELS: dict[str, dict] = {
    "en": {
        ("crisis", "opened"): "Crisis opened", ("crisis", "updated"): "Crisis updated",
        ("crisis", "resolved"): "Crisis resolved", ("opportunity", "opened"): "Opportunity opened",
        ("opportunity", "updated"): "Opportunity updated", ("opportunity", "resolved"): "Opportunity resolved",
        ("watch", "opened"): "Watch opened", ("watch", "updated"): "Watch updated",
        ("watch", "resolved"): "Watch resolved",
        "severity": "Severity", "volume": "Volume", "volume_value": "{observed} mentions vs {expected} expected ({ratio})",
        "negative": "Negative", "negative_value": "{share} vs {usual} usual", "reach": "Reach",
        "reach_value": "{reach} vs {usual} usual", "top_terms": "Top terms", "no_terms": "no unusual terms",
        "languages": "Languages", "sources": "Sources", "samples": "Mentions to read first",
        "most_reached": "Most reached", "most_negative": "Most negative", "score": "Score",
        "incident": "Incident", "state": "State", "open": "open", "resolved": "resolved", "since": "since",
        "event": "event", "date": "%Y-%m-%d %H:%M UTC", "incident_page": "Incident page",
        "top_stories": "Top stories",
        "story_value": "{mentions} mentions ({copies} copies) by {authors} authors, reach {reach}, {languages}, "
                       "{negative} negative; first {first} by {by}",
        "thousands": ",", "decimal": ".", "billions": "B",
    },
    "it": {
        ("crisis", "opened"): "Crisi aperta", ("crisis", "updated"): "Crisi aggiornata",
        ("crisis", "resolved"): "Crisi risolta", ("opportunity", "opened"): "Opportunità aperta",
        ("opportunity", "updated"): "Opportunità aggiornata", ("opportunity", "resolved"): "Opportunità risolta",
        ("watch", "opened"): "Osservazione aperta", ("watch", "updated"): "Osservazione aggiornata",
        ("watch", "resolved"): "Osservazione chiusa",
        "severity": "Gravità", "volume": "Volume",
        "volume_value": "{observed} menzioni contro {expected} attese ({ratio})",
        "negative": "Negative", "negative_value": "{share} contro il {usual} abituale", "reach": "Copertura",
        "reach_value": "{reach} contro {usual} abituale", "top_terms": "Termini principali",
        "no_terms": "nessun termine insolito", "languages": "Lingue", "sources": "Fonti",
        "samples": "Menzioni da leggere per prime", "most_reached": "Più visti", "most_negative": "Più negativi",
        "score": "Punteggio", "incident": "Incidente", "state": "Stato", "open": "aperto", "resolved": "risolto",
        "since": "dalle", "event": "evento", "date": "%d/%m/%Y %H:%M UTC", "incident_page": "Pagina dell'incidente",
        "top_stories": "Storie principali",
        "story_value": "{mentions} menzioni ({copies} copie) di {authors} autori, copertura {reach}, {languages}, "
                       "{negative} negative; prima il {first} da {by}",
        "thousands": ".", "decimal": ",", "billions": "Mld",
    },
}
LANGUAGES: tuple[str, ...] = tuple(LABELS)
TERMINAL_SNIPPET_CHARS = 160
SAMPLE_CHARS = 280
SAMPLES_SHOWN = 4
STORIES_SHOWN = 3


def labels_for(lang: str) -> dict:
    """The label table of ``lang``; an unknown language is a configuration mistake, said plainly."""
    if lang not in LABELS:
        raise ValueError(f"unsupported alert language {lang!r}; choose one of {sorted(LABELS)}")
    return LABELS[lang]


def number(value: float, lang: str, digits: int = 1) -> str:
    """``value`` with ``digits`` decimals and grouped thousands, as ``lang`` writes them: 1,234.5 or 1.234,5."""
    labels = labels_for(lang)
    marks = str.maketrans({",": labels["thousands"], ".": labels["decimal"]})
    return f"{float(value):,.{digits}f}".translate(marks)


def compact(value: float, lang: str) -> str:
    """120000 -> "120k", 1234567 -> "1.2M": reach figures read at a glance."""
    for limit, suffix in ((1e9, labels_for(lang)["billions"]), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            return number(scaled, lang, 0 if scaled >= 100 else 1) + suffix
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


def _title(alert: dict, labels: dict) -> str:
    kind, event = alert.get("kind"), alert.get("event")
    return clean_text(labels.get((kind, event), f"{kind} {event}"))


def _volume(ex: dict, labels: dict, lang: str, times: str) -> str:
    return labels["volume_value"].format(
        observed=number(ex.get("observed", 0), lang, 0), expected=number(ex.get("expected", 0), lang),
        ratio=number(ex.get("volume_ratio", 0), lang) + times)


def _negative(ex: dict, labels: dict) -> str:
    return labels["negative_value"].format(
        share=percent(ex.get("negative_share", 0)), usual=percent(ex.get("baseline_negative_share", 0)))


# --- what every channel says ------------------------------------------------------------------------------

def safe_url(url: object) -> str | None:
    """A sample's link if it is a plain http(s) URL; anything else (javascript:, data:) is not linked."""
    if not isinstance(url, str) or any(c.isspace() for c in url):
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


@dataclass(frozen=True)
class Sample:
    author: str
    text: str
    url: str | None


@dataclass(frozen=True)
class StoryLine:
    """One of an alert's top stories: its representative text and one line of figures."""

    text: str
    figures: str
    url: str | None


@dataclass(frozen=True)
class Summary:
    """An alert reduced to plain, unescaped strings in one language; each channel escapes them its way."""

    title: str
    kind: str
    event: str
    facts: list[tuple[str, str]]
    samples: list[Sample]
    footer: str
    samples_heading: str
    stories: list[StoryLine]
    stories_heading: str


def story_figures(story: dict, labels: dict, lang: str) -> str:
    """One top story's numbers in ``lang``: mentions, copies, authors, reach, languages, tone, first seen."""
    return labels["story_value"].format(
        mentions=number(story.get("mentions", 0), lang, 0), copies=number(story.get("copies", 0), lang, 0),
        authors=number(story.get("unique_authors", 0), lang, 0), reach=compact(story.get("reach", 0), lang),
        languages=shares(story.get("languages", {}), 3), negative=percent(story.get("negative_share", 0)),
        first=moment(story.get("first_seen_at", ""), labels["date"]), by=clean_text(str(story.get("first_by", ""))))


def story_lines(ex: dict, labels: dict, lang: str, text_chars: int) -> list[StoryLine]:
    return [StoryLine(text=snippet(str(story.get("text", "")), text_chars), figures=story_figures(story, labels, lang),
                      url=safe_url((story.get("sample") or {}).get("url")))
            for story in ex.get("top_stories", [])[:STORIES_SHOWN]]


def summarise(alert: dict, lang: str) -> Summary:
    labels = labels_for(lang)
    ex = alert.get("explanation", {})
    kind, event = alert.get("kind"), alert.get("event")
    title = f"{_title(alert, labels)}: {clean_text(str(alert.get('brand', '')))}"
    terms = ", ".join(
        f"{clean_text(str(t['term']))} ({t['count']})" for t in ex.get("top_terms", [])[:8]
    ) or labels["no_terms"]
    state = labels["resolved"] if event == "resolved" else labels["open"]
    facts = [
        (labels["severity"], number(alert.get("severity", 0), lang)),
        (labels["volume"], _volume(ex, labels, lang, "×")),
        (labels["negative"], _negative(ex, labels)),
        (labels["reach"], labels["reach_value"].format(
            reach=number(ex.get("reach", 0), lang, 0), usual=number(ex.get("baseline_reach", 0), lang, 0))),
        (labels["top_terms"], terms),
        (labels["languages"], shares(ex.get("languages", {}))),
        (labels["sources"], shares(ex.get("sources", {}))),
        (labels["state"], f"{state}, {labels['since']} {moment(alert.get('started_at', ''), labels['date'])}"),
    ]
    if safe_url(alert.get("url")):  # ASCOLTA_PUBLIC_URL set: the incident room's page
        facts.append((labels["incident_page"], alert["url"]))
    seen: set[str] = set()
    samples = []
    for sample in [*ex.get("most_negative", []), *ex.get("most_reached", [])]:
        key = sample.get("story") or sample.get("id")  # one mention per story: never two copies of one post
        if key in seen or len(samples) == SAMPLES_SHOWN:
            continue
        seen.add(key)
        samples.append(Sample(author=clean_text(str(sample.get("author", ""))),
                              text=snippet(str(sample.get("text", "")), SAMPLE_CHARS), url=safe_url(sample.get("url"))))
    footer = (f"{labels['incident']} {clean_text(str(alert.get('incident_id', '')))} · {labels['event']} "
              f"{clean_text(str(alert.get('event_id', '')))} · {moment(alert.get('at', ''), labels['date'])}")
    return Summary(title=title, kind=str(kind), event=str(event), facts=facts, samples=samples, footer=footer,
                   samples_heading=labels["samples"], stories=story_lines(ex, labels, lang, SAMPLE_CHARS),
                   stories_heading=labels["top_stories"])


# --- terminal ---------------------------------------------------------------------------------------------

def _headline(alert: dict, labels: dict, lang: str) -> str:
    at = moment(alert.get("at", ""), labels["date"])
    head = f"[{_title(alert, labels).upper()}] {clean_text(str(alert.get('brand', '')))} — {at}"
    if alert.get("event") != "opened" and alert.get("started_at"):
        head += f" ({labels['since']} {moment(alert['started_at'], labels['date'])})"
    return f"{head}, {labels['severity'].lower()} {number(float(alert.get('severity', 0)), lang)}"


def format_alert(alert: dict, lang: str = "en") -> str:
    """A multi-line, terminal-safe rendering of an alert event in one of :data:`LANGUAGES`."""
    labels = labels_for(lang)
    ex = alert.get("explanation", {})
    reach = labels["reach_value"].format(reach=compact(ex.get("reach", 0), lang),
                                         usual=compact(ex.get("baseline_reach", 0), lang))
    lines = [
        _headline(alert, labels, lang),
        f"  {labels['volume'].lower()}: {_volume(ex, labels, lang, 'x')}",
        f"  {labels['negative'].lower()}: {_negative(ex, labels)}",
        f"  {labels['reach'].lower()}: {reach}",
    ]
    terms = [
        f"{clean_text(str(t['term']))} ({t['count']}, lift {number(t['lift'], lang)})" for t in ex.get("top_terms", [])
    ]
    lines.append(f"  {labels['top_terms'].lower()}: " + (", ".join(terms) if terms else labels["no_terms"]))
    lines.append(f"  {labels['languages'].lower()}: {shares(ex.get('languages', {}))}")
    lines.append(f"  {labels['sources'].lower()}: {shares(ex.get('sources', {}))}")
    stories = story_lines(ex, labels, lang, TERMINAL_SNIPPET_CHARS)
    if stories:
        lines.append(f"  {labels['top_stories'].lower()}:")
        lines.extend(f"    \"{story.text}\" — {story.figures}" for story in stories)
    for key, unit in (("most_reached", "reach"), ("most_negative", "score")):
        samples = ex.get(key, [])
        if not samples:
            continue
        lines.append(f"  {labels[key].lower()}:")
        for sample in samples:
            figure = compact(sample.get("reach", 0), lang) if key == "most_reached" else number(sample.get("score", 0), lang, 2)
            text = snippet(str(sample.get("text", "")), TERMINAL_SNIPPET_CHARS)
            line = f"    {clean_text(str(sample.get('author', '')))} ({labels[unit].lower()} {figure}): \"{text}\""
            if sample.get("url"):
                line += f" {clean_text(str(sample['url']))}"
            lines.append(line)
    if safe_url(alert.get("url")):
        lines.append(f"  {labels['incident_page'].lower()}: {alert['url']}")
    return "\n".join(lines)
