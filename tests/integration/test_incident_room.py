"""The incident room end to end: two real workers in one group on the real broker with the real model and
the sample stream (plus one hostile mention in the crisis), a real headless Chromium (Debian's, driven by
Selenium through Debian's chromedriver) reading the pages. Screenshots go to build/screenshots/."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, urlsplit

import orjson
import pytest

from streams.tools.sample import CRISIS_BRAND, bursts, generate

from .workers import ROOT, WorkerProcess, consume_until, produce

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
NO_BROWSER = ("Debian's chromium and chromedriver are missing: apt-get install -y chromium chromium-driver "
              "(.ci/run does it)")
SCREENSHOTS = ROOT / "build" / "screenshots"
TOKEN = "room-token-for-tests"
PUBLIC_URL = "https://incident-room.example"
HOURS = 12.0  # as CRISIS_HOURS in test_hostile.py: enough history for the crisis to open in its first buckets
HOSTILE_TEXT = "<script>window.pwned=1</script>\u202e contaminazione listeria <img src=x onerror=alert(1)> vergogna"


def hostile_mention(at: datetime, number: int) -> dict:
    """A crisis mention whose text is markup, with a right-to-left override, and the largest reach of all."""
    return {"id": f"hostile-{number}", "brand": CRISIS_BRAND, "source": "twitter", "text": HOSTILE_TEXT,
            "created_at": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "author": {"id": "troll1", "handle": "@troll", "followers": 10},
            "url": "https://twitter.example/troll/status/1", "reach": 5_000_000}


def get(worker: WorkerProcess, path: str, token: str | None = TOKEN, accept: str = "*/*") -> tuple[int, bytes]:
    headers = {"Accept": accept, **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(worker.url(path), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for(check, timeout: float, workers: list[WorkerProcess], what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            worker.assert_alive()
        result = check()
        if result:
            return result
        time.sleep(1.0)
    raise AssertionError(f"{what} not within {timeout} s; logs: {[w.log_tail(20) for w in workers]}")


@pytest.fixture
def two_workers(broker, tmp_path):
    first = WorkerProcess(broker.url, tmp_path / "first.log", ASCOLTA_UI_TOKEN=TOKEN, ASCOLTA_PUBLIC_URL=PUBLIC_URL)
    second = WorkerProcess(broker.url, tmp_path / "second.log")
    second.topics, second.env = first.topics, dict(first.env)  # same topics, same consumer group
    yield first, second
    second.stop()
    first.stop()


@pytest.mark.skipif((CHROMIUM is None or CHROMEDRIVER is None) and os.environ.get("CI") != "true", reason=NO_BROWSER)
def test_the_incident_room_shows_the_crisis_on_either_worker(broker, two_workers):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    first, second = two_workers
    start = datetime.now(timezone.utc).replace(hour=6, minute=50, second=0, microsecond=0) - timedelta(days=1)
    crisis = next(b for b in bursts(start, hours=HOURS) if b.kind == "crisis")
    # one in each of the crisis's first two buckets: the incident opens in one of them, and its explanation
    # quotes the mentions of the bucket that opened it
    hostile = [hostile_mention(crisis.start + timedelta(minutes=minutes), n) for n, minutes in ((1, 2), (2, 7))]
    records = sorted(generate(start, hours=HOURS) + hostile, key=lambda r: r["created_at"])
    first.start()
    second.start()
    first.wait_web()
    second.wait_web()
    asyncio.run(produce(broker.url, first.topics["raw"], [(r["brand"].encode(), orjson.dumps(r)) for r in records]))

    alerts = first.topics["alerts"]
    got = asyncio.run(consume_until(
        broker.url, [alerts], lambda got: any(a["kind"] == "crisis" and a["brand"] == CRISIS_BRAND
                                              for a in got[alerts]), timeout=300, on_idle=first.assert_alive))
    opened = next(a for a in got[alerts] if a["kind"] == "crisis" and a["brand"] == CRISIS_BRAND)
    incident_id = opened["incident_id"]
    assert opened["url"] == f"{PUBLIC_URL}/incidents/{quote(incident_id, safe='')}"
    page_path = urlsplit(opened["url"]).path

    # any worker answers for every brand: both serve the same incident, once both have read everything
    assert get(first, "/api/incidents", token=None)[0] == 401
    assert get(first, "/api/incidents", token="wrong")[0] == 401

    seen: list[dict] = []

    def same_on_both():
        """The incident once both workers agree on it and its latest event explains a whole bucket of it (an
        early opening explains only the mentions counted so far, possibly before the hostile ones)."""
        answers = [get(w, f"/api{page_path}") for w in (first, second)]
        if any(status != 200 for status, _ in answers):
            return None
        one, two = (json.loads(body) for _, body in answers)
        seen[:] = [one]
        hostile_quoted = any(s["id"].startswith("hostile-") for s in one["latest"]["explanation"]["most_reached"])
        return one if one == two and one["timeline"] and hostile_quoted else None

    try:
        incident = wait_for(same_on_both, 180, [first, second], "the same incident on both workers")
    except AssertionError:
        print("last answer:", [(e.get("event"), e.get("at")) for e in seen[0]["lifecycle"]] if seen else None,
              [s["id"] for s in seen[0]["latest"]["explanation"]["most_reached"]] if seen else None)
        raise
    assert incident["brand"] == CRISIS_BRAND and incident["kind"] == "crisis"
    assert any(p["observed"] > p["high"] for p in incident["timeline"]), "the crisis rises above the band"
    listed = json.loads(get(second, "/api/incidents?kind=crisis")[1])
    assert listed[0]["incident_id"] == incident_id and listed[0]["state"] == "open"
    status, body = get(second, page_path, accept="application/json")  # the page itself, as JSON
    assert status == 200 and json.loads(body)["incident_id"] == incident_id
    assert get(second, "/incidents/no-such-incident")[0] == 404
    assert get(second, "/api/brands/Nobody")[0] == 404

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1500", "--lang=en-US"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(first.url(f"/?token={TOKEN}"))  # the token once; a cookie carries it from here on
        rows = driver.find_elements(By.CSS_SELECTOR, "tr.incident")
        crisis_rows = [r for r in rows if CRISIS_BRAND in r.text and "crisis" in r.text]
        assert crisis_rows, [r.text for r in rows]
        assert crisis_rows[0].find_elements(By.CSS_SELECTOR, "svg.sparkline")
        driver.save_screenshot(str(SCREENSHOTS / "incidents.png"))

        crisis_rows[0].find_element(By.TAG_NAME, "a").click()
        assert urlsplit(driver.current_url).path == page_path
        span = driver.find_element(By.CSS_SELECTOR, "svg.timeline rect.incident-span")
        assert span.size["width"] > 0
        assert driver.find_elements(By.CSS_SELECTOR, "svg.timeline g.event-opened")
        explanation = driver.find_element(By.CSS_SELECTOR, "section.explanation").text
        assert "Volume" in explanation and "Negative" in explanation
        samples = driver.find_elements(By.CSS_SELECTOR, "ul.samples li.sample")
        assert samples
        # the hostile mention is text on the page: no element, no script, no direction override
        texts = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".mention-text")]
        assert any("<script>window.pwned=1</script>" in t and "<img src=x" in t for t in texts), texts
        assert not any("\u202e" in t for t in texts)
        assert driver.find_elements(By.TAG_NAME, "script") == []
        assert driver.find_elements(By.CSS_SELECTOR, "img") == []
        assert driver.execute_script("return window.pwned === undefined")
        driver.save_screenshot(str(SCREENSHOTS / "incident.png"))

        # the other worker serves the same page, in Italian when asked
        driver.get(second.url(f"{page_path}?token={TOKEN}&lang=it"))
        assert driver.find_element(By.CSS_SELECTOR, "svg.timeline rect.incident-span")
        assert "Spiegazione dell'ultimo evento" in driver.find_element(By.CSS_SELECTOR, "section.explanation").text
        driver.save_screenshot(str(SCREENSHOTS / "incident-it-second-worker.png"))

        driver.get(second.url(f"/brands/{quote(CRISIS_BRAND, safe='')}"))
        assert driver.find_element(By.CSS_SELECTOR, "svg.timeline polyline.observed")
        assert driver.find_elements(By.CSS_SELECTOR, "tr.incident")
        driver.save_screenshot(str(SCREENSHOTS / "brand.png"))
    finally:
        driver.quit()
