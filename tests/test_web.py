"""The incident room's plain code, without a broker: the room built from alert events and chart points,
the pages it renders (escaping hostile text), languages, and the incident URL in alerts."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from html.parser import HTMLParser

import pytest

from streams.alerting.render import format_alert, summarise
from streams.contracts import validate
from streams.detection.alert import incident_url
from streams.settings import Settings
from streams.web.pages import brand_page, choose_language, incident_page, list_page, timeline_chart
from streams.web.room import BRAND_HOURS, INCIDENT_DAYS, RecordError, Room

from alerting.fixtures import make_alert

T0 = int(datetime(2026, 5, 4, 0, 0, tzinfo=timezone.utc).timestamp())  # the fixture's incident starts at 13:00
RTL = "\u202e"


def point(brand: str, start: int, observed: int, expected: float = 10.0, share: float | None = 0.1) -> dict:
    return {"brand": brand, "start": start, "bucket_seconds": 300, "observed": observed, "expected": expected,
            "low": expected / 2, "high": expected * 2, "negative_share": share, "baseline_negative_share": 0.1,
            "incident": None}


def filled_room() -> tuple[Room, dict]:
    room = Room()
    alert = make_alert(event="updated")
    for start in range(T0, T0 + 24 * 3600, 300):
        room.add_point(point(alert["brand"], start, 100 if 13 * 3600 <= start - T0 < 14 * 3600 else 10))
    room.add_alert({**alert, "event": "opened", "event_id": "inc-7:0", "at": "2026-05-04T13:00:00Z"})
    room.add_alert(alert)  # updated at 13:45 (seq 2): the latest, its explanation is shown
    return room, alert


class Elements(HTMLParser):
    """Every start tag with its attributes: what a browser would build as elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def elements(page: str) -> list[tuple[str, dict]]:
    parser = Elements()
    parser.feed(page)
    return parser.tags


def test_an_incident_collects_its_events_once_and_shows_the_latest():
    room, alert = filled_room()
    room.add_alert(alert)  # redelivered: replaces, does not add
    incident = room.incident("inc-7")
    assert [e["event_id"] for e in incident["lifecycle"]] == ["inc-7:0", "inc-7:2"]
    assert incident["latest"]["event_id"] == "inc-7:2" and incident["state"] == "open"
    assert incident["severity"] == 9.25
    # the chart covers the incident and six hours around it; the span is the incident's
    starts = [p["start"] for p in incident["timeline"]]
    assert starts[0] == T0 + 7 * 3600 and starts[-1] == T0 + 24 * 3600 - 300
    room.add_alert({**alert, "event": "resolved", "event_id": "inc-7:3", "at": "2026-05-04T15:00:00Z",
                    "severity": 0.5})
    incident = room.incident("inc-7")
    assert incident["state"] == "resolved" and incident["severity"] == 9.25
    assert incident["ended_at"] == T0 + 15 * 3600
    assert incident["timeline"][-1]["start"] == T0 + 21 * 3600


def test_the_list_puts_open_incidents_first_and_filters():
    room, alert = filled_room()
    now = T0 + 86400
    old = {**alert, "incident_id": "old", "event_id": "old:0", "started_at": "2026-05-01T10:00:00Z",
           "at": "2026-05-01T10:00:00Z", "kind": "opportunity", "brand": "Velo Motors"}
    room.add_alert(old)
    room.add_alert({**old, "event": "resolved", "event_id": "old:1", "at": "2026-05-01T12:00:00Z"})
    assert [i["incident_id"] for i in room.incident_list(now)] == ["inc-7", "old"]
    # the open incident's sparkline: from an hour before its start to the newest point, at most 48 peaks
    assert len(room.incident_list(now)[0]["sparkline"]) == 48 and max(room.incident_list(now)[0]["sparkline"]) == 100
    assert [i["incident_id"] for i in room.incident_list(now, kind="opportunity")] == ["old"]
    assert [i["incident_id"] for i in room.incident_list(now, brand="velo motors")] == ["old"]
    # a resolved incident older than the week leaves the list, then the room
    later = T0 + INCIDENT_DAYS * 86400 + 86400
    assert [i["incident_id"] for i in room.incident_list(later)] == ["inc-7"]
    room.prune(later)
    assert "old" not in room.incidents and "inc-7" in room.incidents


def test_prune_keeps_the_last_two_days_and_the_points_around_incidents():
    room, alert = filled_room()
    for start in range(T0 + 86400, T0 + 5 * 86400, 300):
        room.add_point(point(alert["brand"], start, 10))
    room.prune(T0 + 5 * 86400)
    line = room.brands["caffè <aurora>"]
    recent = [s for s in line.starts if s >= T0 + 5 * 86400 - BRAND_HOURS * 3600]
    around = [s for s in line.starts if s < T0 + 86400]
    assert len(recent) == BRAND_HOURS * 12
    assert around[0] == T0 + 7 * 3600 and around[-1] == T0 + 86400 - 300  # open incident: six hours before on
    brand = room.brand("CAFFÈ <AURORA>", T0 + 5 * 86400)
    assert len(brand["timeline"]) == BRAND_HOURS * 12 and brand["incidents"][0]["incident_id"] == "inc-7"


def test_unusable_records_are_refused_with_a_reason():
    room = Room()
    with pytest.raises(RecordError, match="alert event"):
        room.add_alert({"incident_id": "x"})
    with pytest.raises(RecordError, match="timeline point"):
        room.add_point({"brand": "A", "start": "soon"})
    assert room.incident("x") is None and room.brand("A", T0) is None


def test_hostile_text_renders_as_text_and_bad_links_are_not_linked():
    room, alert = filled_room()
    hostile = {**alert, "brand": f"Caffè <Aurora>{RTL}", "explanation": {**alert["explanation"], "most_reached": [
        {"id": "h", "author": "<img src=x onerror=alert(1)>", "text": f"{RTL}<script>alert('x')</script> caffè",
         "url": "javascript:alert(1)", "reach": 10.0, "score": -0.9}]}}
    room.add_alert({**hostile, "event_id": "inc-7:5", "at": "2026-05-04T14:00:00Z"})
    page = incident_page(room.incident("inc-7"), "en")
    tags = elements(page)
    assert not [t for t, _ in tags if t in ("script", "img", "iframe", "object")]
    assert not [a for t, a in tags for v in a.values() if v and "javascript:" in v]
    assert not [a for t, a in tags for k in a if k.startswith("on")]
    assert RTL not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    links = [a["href"] for t, a in tags if t == "a"]
    assert "https://example.org/post?a=1&b=<2>|3" in links  # the sample's http link, unescaped by the parser
    assert "<bdi>Caffè &lt;Aurora&gt;</bdi>" in list_page(room.incident_list(T0 + 86400), ["Caffè <Aurora>"], "en")


def test_the_incident_chart_shows_band_span_share_and_events():
    room, _ = filled_room()
    incident = room.incident("inc-7")
    svg = timeline_chart(incident["timeline"], 300, "en", span=(incident["started_at"], None),
                         events=incident["lifecycle"])
    for part in ('class="incident-span"', 'class="band"', 'class="expected"', 'class="observed"',
                 'class="negative-share"', 'class="baseline-negative-share"', 'event-opened', 'event-updated'):
        assert part in svg, part
    span = re.search(r'class="incident-span" x="([\d.]+)" y="\d+" width="([\d.]+)"', svg)
    first, last = incident["timeline"][0]["start"], incident["timeline"][-1]["start"] + 300
    x0 = 48 + (incident["started_at"] - first) * (960 - 60) / (last - first)
    assert float(span.group(1)) == pytest.approx(x0, abs=0.1)
    assert float(span.group(1)) + float(span.group(2)) == pytest.approx(960 - 12, abs=0.1)  # still open: to the end


def test_pages_speak_italian_and_english():
    room, _ = filled_room()
    incident = room.incident("inc-7")
    assert "Spiegazione dell&#x27;ultimo evento" in incident_page(incident, "it") or \
        "Spiegazione dell'ultimo evento" in incident_page(incident, "it")
    assert "Explanation of the latest event" in incident_page(incident, "en")
    assert "Ultime 48 ore" in brand_page(room.brand("Caffè <Aurora>", T0), "it")
    assert choose_language(None, "it-IT,it;q=0.9,en;q=0.8") == "it"
    assert choose_language(None, "de-DE,en;q=0.5,it;q=0.4") == "en"
    assert choose_language("it", "en") == "it"
    assert choose_language("xx", None) == "en"


def test_top_stories_render_when_the_alert_carries_them():
    room, alert = filled_room()
    stories = [{"text": "<b>Rimborso</b> negato a tutti", "copies": 120, "authors": 80, "reach": 50000,
                "negative_share": 0.9, "url": "javascript:alert(2)"}]
    room.add_alert({**alert, "event_id": "inc-7:6", "at": "2026-05-04T14:30:00Z",
                    "explanation": {**alert["explanation"], "top_stories": stories}})
    page = incident_page(room.incident("inc-7"), "en")
    assert 'class="top-stories"' in page and "&lt;b&gt;Rimborso&lt;/b&gt; negato a tutti" in page
    assert "copies 120" in page and "javascript:" not in page


def test_with_a_public_url_alerts_carry_the_incident_page():
    alert = make_alert()
    alert["url"] = incident_url("https://ascolta.example.com/", "inc 7/x")
    assert alert["url"] == "https://ascolta.example.com/incidents/inc%207%2Fx"
    assert validate("alert", alert) == []
    assert ("Incident page", alert["url"]) in summarise(alert, "en").facts
    assert ("Pagina dell'incidente", alert["url"]) in summarise(alert, "it").facts
    assert alert["url"] in format_alert(alert, "en")
    assert "Incident page" not in [name for name, _ in summarise(make_alert(), "en").facts]
    assert validate("alert", {**alert, "url": "javascript:alert(1)"})


def test_public_url_and_token_settings(tmp_path):
    with pytest.raises(ValueError, match="ASCOLTA_PUBLIC_URL"):
        Settings.from_environ(public_url="ftp://x")
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    assert Settings.from_environ(ui_token=f"@{token_file}").read_ui_token() == "s3cret"
    assert Settings.from_environ(ui_token="plain").read_ui_token() == "plain"
    with pytest.raises(ValueError, match="cannot be read"):
        Settings.from_environ(ui_token=f"@{tmp_path / 'missing'}").read_ui_token()
