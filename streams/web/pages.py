"""The incident room's HTML: server-rendered pages and SVG charts, in English and Italian, with no script.

Everything from the outside world (brands, mention text, handles, terms, URLs) passes :func:`esc`, which
removes control and bidi-override characters and escapes HTML; mention text sits in ``<bdi>`` so a
right-to-left post cannot reorder the page around it; only plain http(s) links are linked
(:func:`streams.alerting.render.safe_url`). The pages carry no script at all and the views send a
Content-Security-Policy that forbids any, so an escaping slip still cannot run code. The explanation uses
the alerts' own renderer (:func:`streams.alerting.render.summarise`): the page says what Slack says.
"""
from __future__ import annotations

import html
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

from ..alerting.render import LABELS as ALERT_LABELS
from ..alerting.render import number, safe_url, summarise
from ..detection.digest import clean_text, snippet
from ..detection.incidents import KINDS

WEB_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "room": "Incident room", "incidents": "Incidents", "brand": "Brand", "kind": "Kind", "started": "Started",
        "ended": "Ended", "trend": "Trend", "crisis": "crisis", "opportunity": "opportunity", "watch": "watch",
        "all_brands": "all brands", "all_kinds": "all kinds", "filter": "Filter",
        "none": "No incidents open or in the last 7 days.", "chart": "Mentions per bucket",
        "observed": "observed", "expected": "expected", "band": "expected range",
        "negative_share": "negative share", "usual_negative": "usual negative share", "incident_span": "incident",
        "explanation": "Explanation of the latest event", "top_stories": "Top stories", "lifecycle": "Lifecycle",
        "last_hours": "Last {hours} hours", "original": "original post", "not_found": "Not found",
        "not_found_text": "Nothing is known here about {what}.", "opened": "opened", "updated": "updated",
        "resolved": "resolved", "copies": "copies", "authors": "authors", "first_seen": "first seen",
        "by": "by", "reach": "reach", "no_points": "No chart points yet for this brand.",
        "json": "JSON", "brand_page": "brand page", "tick": "%b %d %H:%M", "Crisis": "Crisis",
        "Opportunity": "Opportunity", "Watch": "Watch",
    },
    "it": {
        "room": "Sala incidenti", "incidents": "Incidenti", "brand": "Marca", "kind": "Tipo", "started": "Inizio",
        "ended": "Fine", "trend": "Andamento", "crisis": "crisi", "opportunity": "opportunità", "watch": "allerta",
        "all_brands": "tutte le marche", "all_kinds": "tutti i tipi", "filter": "Filtra",
        "none": "Nessun incidente aperto o negli ultimi 7 giorni.", "chart": "Menzioni per intervallo",
        "observed": "osservate", "expected": "attese", "band": "intervallo atteso",
        "negative_share": "quota negativa", "usual_negative": "quota negativa abituale", "incident_span": "incidente",
        "explanation": "Spiegazione dell'ultimo evento", "top_stories": "Storie principali",
        "lifecycle": "Ciclo di vita", "last_hours": "Ultime {hours} ore", "original": "post originale",
        "not_found": "Non trovato", "not_found_text": "Qui non si sa nulla di {what}.", "opened": "aperto",
        "updated": "aggiornato", "resolved": "risolto", "copies": "copie", "authors": "autori",
        "first_seen": "visto per la prima volta", "by": "da", "reach": "copertura",
        "no_points": "Ancora nessun punto del grafico per questa marca.", "json": "JSON",
        "brand_page": "pagina della marca", "tick": "%d/%m %H:%M", "Crisis": "Crisi", "Opportunity": "Opportunità",
        "Watch": "Allerta",
    },
}
LANGUAGES = tuple(WEB_LABELS)
CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center}
header a{color:#fff}main{padding:1em 1.2em;max-width:1100px}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.4em .6em;border-bottom:1px solid #dde;
text-align:left;vertical-align:middle}th{font-weight:600;background:#eef0f4}
.open{color:#b3261e;font-weight:600}.resolved{color:#4a5568}.crisis{color:#b3261e}.opportunity{color:#1e6b3a}
section{background:#fff;padding:.8em 1em;margin:1em 0;border:1px solid #dde}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dt{font-weight:600}
li{margin:.3em 0}.lang{margin-left:auto}.muted{color:#667}svg{max-width:100%;height:auto}
form{margin:.5em 0 1em}
"""


def esc(value: object) -> str:
    """Outside text as safe HTML: control and bidi characters removed, markup escaped."""
    return html.escape(clean_text(str(value)), quote=True)


def choose_language(requested: str | None, accept_language: str | None) -> str:
    """``?lang=`` when it names a language of ours, else the best of Accept-Language, else English."""
    if requested in WEB_LABELS:
        return requested
    ranked = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.split("-")[0].strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag in WEB_LABELS:
            return tag
    return "en"


def when(epoch: float | None, lang: str) -> str:
    if epoch is None:
        return "–"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime(ALERT_LABELS[lang]["date"])


def link(path: str, lang: str, **query: str) -> str:
    """An internal link keeping the page language; the path's variable parts must already be quoted."""
    return html.escape(f"{path}?{urlencode({**{k: v for k, v in query.items() if v}, 'lang': lang})}", quote=True)


def incident_path(incident_id: str) -> str:
    return f"/incidents/{quote(incident_id, safe='')}"


def brand_path(brand: str) -> str:
    return f"/brands/{quote(brand, safe='')}"


def page(title: str, body: str, lang: str, path: str, query: dict[str, str] | None = None) -> str:
    labels = WEB_LABELS[lang]
    switch = " · ".join(
        f'<a href="{link(path, other, **(query or {}))}" hreflang="{other}">{"English" if other == "en" else "Italiano"}</a>'
        for other in LANGUAGES if other != lang)
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title} · Ascolta</title>'
            f'<style>{CSS}</style></head><body><header><strong>Ascolta</strong>'
            f'<a href="{link("/", lang)}">{labels["incidents"]}</a><span class="lang">{switch}</span></header>'
            f"<main>{body}</main></body></html>")


# --- charts ---------------------------------------------------------------------------------------------

def sparkline(values: list[int], width: int = 120, height: int = 26) -> str:
    if len(values) < 2:
        return ""
    top = max(max(values), 1)
    step = width / (len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values))
    return (f'<svg class="sparkline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'aria-hidden="true"><polyline points="{points}" fill="none" stroke="#1d2430" stroke-width="1.5"/></svg>')


def timeline_chart(points: list[dict], bucket_s: int, lang: str, span: tuple[float, float | None] | None = None,
                   events: list[dict] = ()) -> str:
    """Observed volume per bucket against the expected value and its band, and below it the negative share
    against the brand's usual share; the incident's span shaded, its lifecycle events marked."""
    labels = WEB_LABELS[lang]
    if not points:
        return f'<p class="muted">{labels["no_points"]}</p>'
    width, left, right = 960, 48, 12
    vol_top, vol_h, share_top, share_h = 24, 200, 262, 90
    height = share_top + share_h + 34
    first, last = points[0]["start"], points[-1]["start"] + bucket_s
    scale_x = (width - left - right) / max(last - first, 1)

    def x(t: float) -> float:
        return left + (min(max(t, first), last) - first) * scale_x

    mid = bucket_s / 2
    peak = max(max(p["observed"], p["high"]) for p in points) * 1.08 or 1.0

    def y(v: float) -> float:
        return vol_top + vol_h - (v / peak) * vol_h

    def ys(share: float) -> float:
        return share_top + share_h - share * share_h

    parts = [f'<svg class="timeline" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{esc(labels["chart"])}" xmlns="http://www.w3.org/2000/svg">']
    if span is not None:
        start, end = span
        x0, x1 = x(start), x(end if end is not None else last)
        parts.append(f'<rect class="incident-span" x="{x0:.1f}" y="{vol_top}" width="{max(x1 - x0, 2):.1f}" '
                     f'height="{share_top + share_h - vol_top}" fill="#f4c7c3" opacity="0.55">'
                     f'<title>{esc(labels["incident_span"])}</title></rect>')
    upper = [f"{x(p['start'] + mid):.1f},{y(p['high']):.1f}" for p in points]
    lower = [f"{x(p['start'] + mid):.1f},{y(p['low']):.1f}" for p in reversed(points)]
    parts.append(f'<polygon class="band" points="{" ".join(upper + lower)}" fill="#9bb7d4" opacity="0.45"/>')
    expected = " ".join(f"{x(p['start'] + mid):.1f},{y(p['expected']):.1f}" for p in points)
    observed = " ".join(f"{x(p['start'] + mid):.1f},{y(p['observed']):.1f}" for p in points)
    parts.append('<polyline class="expected" fill="none" stroke="#2b5d8c" stroke-width="1.5" stroke-dasharray="5 3" '
                 f'points="{expected}"/>')
    parts.append(f'<polyline class="observed" fill="none" stroke="#1d2430" stroke-width="2" points="{observed}"/>')
    # negative share: broken where a bucket had no labelled mention
    segments, current = [], []
    for p in points:
        if p.get("negative_share") is None:
            if current:
                segments.append(current)
            current = []
        else:
            current.append(f"{x(p['start'] + mid):.1f},{ys(p['negative_share']):.1f}")
    if current:
        segments.append(current)
    for segment in segments:
        if len(segment) == 1:
            cx, cy = segment[0].split(",")
            parts.append(f'<circle class="negative-share" cx="{cx}" cy="{cy}" r="2" fill="#b3261e"/>')
        else:
            parts.append(f'<polyline class="negative-share" fill="none" stroke="#b3261e" stroke-width="1.5" '
                         f'points="{" ".join(segment)}"/>')
    baseline = " ".join(f"{x(p['start'] + mid):.1f},{ys(p.get('baseline_negative_share') or 0):.1f}" for p in points)
    parts.append(f'<polyline class="baseline-negative-share" fill="none" stroke="#b3261e" stroke-width="1" '
                 f'stroke-dasharray="4 3" opacity="0.7" points="{baseline}"/>')
    for event in events:
        ex = x(event["at"])
        at_right = ex > width - right - 90  # label on the line's left near the right edge, never clipped
        parts.append(f'<g class="event-marker event-{esc(event["event"])}"><line x1="{ex:.1f}" x2="{ex:.1f}" '
                     f'y1="{vol_top - 6}" y2="{share_top + share_h}" stroke="#b3261e" stroke-width="1.2"/>'
                     f'<text x="{ex - 3 if at_right else ex + 3:.1f}" y="{vol_top - 10}" font-size="11" '
                     f'text-anchor="{"end" if at_right else "start"}">'
                     f'{esc(labels.get(event["event"], event["event"]))}</text></g>')
    # axes and labels
    axis = "#667"
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{vol_top + vol_h}" y2="{vol_top + vol_h}" stroke="{axis}"/>'
                 f'<line x1="{left}" x2="{width - right}" y1="{share_top + share_h}" y2="{share_top + share_h}" '
                 f'stroke="{axis}"/>')
    parts.append(f'<text x="4" y="{vol_top + 4}" font-size="11" fill="{axis}">{number(peak, lang, 0)}</text>'
                 f'<text x="4" y="{vol_top + vol_h}" font-size="11" fill="{axis}">0</text>'
                 f'<text x="4" y="{share_top + 4}" font-size="11" fill="{axis}">100%</text>'
                 f'<text x="4" y="{share_top + share_h}" font-size="11" fill="{axis}">0%</text>')
    ticks = 5
    for i in range(ticks + 1):
        t = first + (last - first) * i / ticks
        anchor = "start" if i == 0 else "end" if i == ticks else "middle"
        tick = datetime.fromtimestamp(t, timezone.utc).strftime(labels["tick"])
        parts.append(f'<text x="{x(t):.1f}" y="{share_top + share_h + 16}" font-size="11" fill="{axis}" '
                     f'text-anchor="{anchor}">{tick}</text>')
    legend = [("#1d2430", labels["observed"]), ("#2b5d8c", labels["expected"]), ("#9bb7d4", labels["band"]),
              ("#b3261e", labels["negative_share"])]
    lx = left
    for colour, text in legend:
        parts.append(f'<rect x="{lx}" y="{height - 12}" width="12" height="8" fill="{colour}"/>'
                     f'<text x="{lx + 16}" y="{height - 4}" font-size="11">{esc(text)}</text>')
        lx += 30 + 7 * len(text)
    parts.append("</svg>")
    return "".join(parts)


# --- pages ----------------------------------------------------------------------------------------------

def _kind(kind: str, labels: dict) -> str:
    return f'<span class="{esc(kind)}">{esc(labels.get(kind, kind))}</span>'


def _state(state: str, lang: str) -> str:
    return f'<span class="{esc(state)}">{esc(ALERT_LABELS[lang].get(state, state))}</span>'


def incident_rows(incidents: list[dict], lang: str) -> str:
    labels, alert_labels = WEB_LABELS[lang], ALERT_LABELS[lang]
    if not incidents:
        return f'<p class="muted">{labels["none"]}</p>'
    rows = [f'<tr><th>{labels["brand"]}</th><th>{labels["kind"]}</th><th>{alert_labels["severity"]}</th>'
            f'<th>{labels["started"]}</th><th>{alert_labels["state"]}</th><th>{labels["trend"]}</th></tr>']
    for inc in incidents:
        rows.append(
            f'<tr class="incident" data-incident="{esc(inc["incident_id"])}">'
            f'<td><a href="{link(incident_path(inc["incident_id"]), lang)}"><bdi>{esc(inc["brand"])}</bdi></a></td>'
            f'<td>{_kind(inc["kind"], labels)}</td><td>{number(inc["severity"], lang)}</td>'
            f'<td>{when(inc["started_at"], lang)}</td><td>{_state(inc["state"], lang)}</td>'
            f'<td>{sparkline(inc["sparkline"])}</td></tr>')
    return f'<table class="incidents">{"".join(rows)}</table>'


def list_page(incidents: list[dict], brands: list[str], lang: str, brand: str = "", kind: str = "") -> str:
    labels = WEB_LABELS[lang]
    brand_options = "".join(f'<option value="{esc(b)}"{" selected" if b == brand else ""}>{esc(b)}</option>'
                            for b in brands)
    kind_options = "".join(f'<option value="{k}"{" selected" if k == kind else ""}>{labels[k]}</option>'
                           for k in KINDS)
    form = (f'<form method="get" action="/"><input type="hidden" name="lang" value="{lang}">'
            f'<label>{labels["brand"]} <select name="brand"><option value="">{labels["all_brands"]}</option>'
            f'{brand_options}</select></label> <label>{labels["kind"]} <select name="kind">'
            f'<option value="">{labels["all_kinds"]}</option>{kind_options}</select></label> '
            f'<button type="submit">{labels["filter"]}</button></form>')
    body = f'<h1>{labels["incidents"]}</h1>{form}{incident_rows(incidents, lang)}'
    return page(labels["room"], body, lang, "/", {"brand": brand, "kind": kind})


def _samples(alert: dict, lang: str) -> str:
    summary = summarise(alert, lang)
    items = []
    for sample in summary.samples:
        original = (f' <a href="{html.escape(sample.url, quote=True)}" rel="noopener noreferrer nofollow">'
                    f'{WEB_LABELS[lang]["original"]}</a>') if sample.url else ""
        items.append(f'<li class="sample"><strong><bdi>{esc(sample.author)}</bdi></strong>: '
                     f'<q><bdi class="mention-text">{html.escape(sample.text)}</bdi></q>{original}</li>')
    return f'<h3>{esc(summary.samples_heading)}</h3><ul class="samples">{"".join(items)}</ul>' if items else ""


def _stories(alert: dict, lang: str) -> str:
    """The alert's ``top_stories`` (issue 14) when the event carries them; their fields are read defensively."""
    stories = alert.get("explanation", {}).get("top_stories")
    if not isinstance(stories, list) or not stories:
        return ""
    labels = WEB_LABELS[lang]
    items = []
    for story in stories:
        if not isinstance(story, dict):
            continue
        text = story.get("text") or story.get("representative") or ""
        if isinstance(text, dict):
            text = text.get("text", "")
        facts = []
        for key, label in (("copies", "copies"), ("authors", "authors"), ("unique_authors", "authors")):
            if isinstance(story.get(key), (int, float)):
                facts.append(f"{labels[label]} {number(story[key], lang, 0)}")
        if isinstance(story.get("reach"), (int, float)):
            facts.append(f"{labels['reach']} {number(story['reach'], lang, 0)}")
        if isinstance(story.get("negative_share"), (int, float)):
            facts.append(f"{labels['negative_share']} {round(story['negative_share'] * 100)}%")
        first = story.get("first_seen") or story.get("first_seen_at")
        if first:
            by = story.get("first_author") or story.get("first_by")
            facts.append(f"{labels['first_seen']} {esc(first)}" + (f" {labels['by']} <bdi>{esc(by)}</bdi>" if by else ""))
        url = safe_url(story.get("url"))
        original = (f' <a href="{html.escape(url, quote=True)}" rel="noopener noreferrer nofollow">'
                    f'{labels["original"]}</a>') if url else ""
        items.append(f'<li class="story"><q><bdi class="mention-text">{html.escape(snippet(str(text), 280))}</bdi>'
                     f'</q>{original}<br><span class="muted">{" · ".join(facts)}</span></li>')
    return f'<section class="top-stories"><h2>{labels["top_stories"]}</h2><ol>{"".join(items)}</ol></section>'


def incident_page(incident: dict, lang: str) -> str:
    labels, alert_labels = WEB_LABELS[lang], ALERT_LABELS[lang]
    latest = incident["latest"]
    summary = summarise(latest, lang)
    title = f'{esc(labels.get(incident["kind"].capitalize(), incident["kind"]))}: {esc(incident["brand"])}'
    chart = timeline_chart(incident["timeline"], incident["bucket_seconds"], lang,
                           span=(incident["started_at"], incident["ended_at"]), events=incident["lifecycle"])
    facts = "".join(f"<dt>{esc(name)}</dt><dd>{esc(value)}</dd>" for name, value in summary.facts
                    if name != alert_labels["incident_page"])  # the alert's link to this very page
    lifecycle = "".join(
        f'<li class="lifecycle-{esc(e["event"])}">{when(e["at"], lang)}: {esc(labels.get(e["event"], e["event"]))}'
        f' ({alert_labels["severity"].lower()} {number(e["severity"], lang)})</li>' for e in incident["lifecycle"])
    body = (f'<h1><bdi>{title}</bdi></h1>'
            f'<p>{_state(incident["state"], lang)} · {labels["started"]} {when(incident["started_at"], lang)}'
            + (f' · {labels["ended"]} {when(incident["ended_at"], lang)}' if incident["ended_at"] else "")
            + f' · <a href="{link(brand_path(incident["brand"]), lang)}">{labels["brand_page"]}</a>'
            f' · <a href="{html.escape("/api" + incident_path(incident["incident_id"]), quote=True)}">{labels["json"]}</a></p>'
            f'<section class="chart"><h2>{labels["chart"]}</h2>{chart}</section>'
            f'<section class="explanation"><h2>{labels["explanation"]}</h2><dl>{facts}</dl>'
            f'{_samples(latest, lang)}<p class="muted">{esc(summary.footer)}</p></section>'
            f'{_stories(latest, lang)}'
            f'<section class="lifecycle"><h2>{labels["lifecycle"]}</h2><ol>{lifecycle}</ol></section>')
    return page(f'{title}', body, lang, incident_path(incident["incident_id"]))


def brand_page(brand: dict, lang: str) -> str:
    labels = WEB_LABELS[lang]
    points = brand["timeline"]
    bucket_s = points[1]["start"] - points[0]["start"] if len(points) > 1 else 300
    chart = timeline_chart(points, bucket_s, lang,
                           events=[e for inc in brand["incidents"] for e in [
                               {"event": "opened", "at": inc["started_at"]},
                               *([{"event": "resolved", "at": inc["ended_at"]}] if inc["ended_at"] else [])]])
    body = (f'<h1><bdi>{esc(brand["brand"])}</bdi></h1>'
            f'<section class="chart"><h2>{labels["last_hours"].format(hours=brand["hours"])}</h2>{chart}</section>'
            f'<section><h2>{labels["incidents"]}</h2>{incident_rows(brand["incidents"], lang)}</section>')
    return page(esc(brand["brand"]), body, lang, brand_path(brand["brand"]))


def not_found_page(what: str, lang: str) -> str:
    labels = WEB_LABELS[lang]
    return page(labels["not_found"], f'<h1>{labels["not_found"]}</h1><p>'
                f'{labels["not_found_text"].format(what=f"<bdi>{esc(what)}</bdi>")}</p>', lang, "/")
