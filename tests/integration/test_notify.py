"""The notifier in a real worker on the real broker, delivering to a real HTTP receiver and SMTP server.

Alert events are produced straight onto the worker's alerts topic (valid per schemas/alert.v1.json), so the
tests need no crisis in the mention stream; the notifier consumes them like the detector's own.
"""
from __future__ import annotations

import asyncio
import collections
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from streams.tools.broker import free_port
from streams.alerting.channels.webhook import verify
from streams.contracts import validate

from .workers import WorkerProcess, consume_until, produce

pytestmark = pytest.mark.integration

SECRET = "s3cret-Do-Not-Log-4f1b9e"
FILE_SECRET = "file-secret-Never-Logged-77c2"
NASTY = "<!channel> @here <script>alert(1)</script> **grassetto** [clic](http://evil.example) & co"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def alert_event(incident: str, seq: int, event: str = "updated", *, brand: str = "Caffè Aurora",
                kind: str = "crisis", severity: float = 7.5) -> dict:
    """A valid alert event, as the detector writes it; its samples quote hostile public text."""
    now = datetime.now(UTC)
    sample = {"id": f"{incident}-m1", "author": "@angry_user", "text": NASTY, "url": "https://example.org/p/1",
              "reach": 1200.0, "score": -0.93}
    alert = {
        "schema_version": 1, "event_id": f"{incident}:{seq}", "incident_id": incident, "event": event,
        "kind": kind, "brand": brand, "at": rfc3339(now - timedelta(minutes=5)),
        "started_at": rfc3339(now - timedelta(minutes=30)), "severity": severity, "bucket_seconds": 300,
        "explanation": {
            "observed": 120, "expected": 14.5, "volume_ratio": 8.28, "negative_share": 0.81,
            "baseline_negative_share": 0.12, "reach": 250000.0, "baseline_reach": 18000.0,
            "top_terms": [{"term": "rimborso", "count": 40, "lift": 12.5}, {"term": "<b>", "count": 3, "lift": 2.0}],
            "most_reached": [sample], "most_negative": [sample],
            "languages": {"it": 90, "en": 30}, "sources": {"twitter": 100, "news": 20},
        },
        "emitted_at": rfc3339(now),
    }
    assert validate("alert", alert) == []
    return alert


class Receiver:
    """A real aiohttp server in its own thread that can go down and come back on the same port.

    ``/hook`` verifies the webhook signature (401 otherwise); ``/gone`` always answers 410; every other path
    records the JSON it gets (Slack, Teams)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[tuple[str, dict, bytes]] = []
        self.rejected = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.path == "/gone":
            return web.Response(status=410, text="this hook was removed")
        if request.path == "/hook" and not verify(SECRET, request.headers.get("X-Ascolta-Timestamp"),
                                                  request.headers.get("X-Ascolta-Signature"), body):
            self.rejected += 1
            return web.Response(status=401)
        self.requests.append((request.path, dict(request.headers), body))
        return web.Response(text="ok")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()

    def start(self) -> Receiver:
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
            self.runner = None

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def event_ids(self, path: str) -> collections.Counter:
        return collections.Counter(h["X-Ascolta-Event-Id"] for p, h, _ in self.requests if p == path)


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.close()


def wait_for(condition, timeout: float, worker: WorkerProcess, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        worker.assert_alive()
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{worker.log_tail()}")


def keyed(alerts: list[dict]) -> list[tuple[bytes, bytes]]:
    return [(a["brand"].encode(), orjson.dumps(a)) for a in alerts]


def metric(worker: WorkerProcess, name: str, **labels: str) -> float:
    text = worker.get("/metrics").decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_outage_restart_and_dead_letters(broker, receiver, tmp_path):
    (tmp_path / "gone.secret").write_text(FILE_SECRET + "\n")
    (tmp_path / "routes.yaml").write_text(f"""
routes:
  - name: pr-slack
    channel: slack
    brands: ["Caffè Aurora"]
    kinds: [crisis]
    language: it
    webhook_url: {receiver.url('/slack')}
    rate_per_second: 20
  - name: pr-teams
    channel: teams
    brands: "*"
    min_severity: 5
    webhook_url_env: TEST_TEAMS_URL
    rate_per_second: 20
  - name: retired-hook
    channel: webhook
    url: {receiver.url('/gone')}
    secret_file: {tmp_path / 'gone.secret'}
""")
    worker = WorkerProcess(
        broker.url, tmp_path / "worker.log",
        ASCOLTA_NOTIFY_CONFIG=str(tmp_path / "routes.yaml"), TEST_TEAMS_URL=receiver.url("/teams"),
        ASCOLTA_WEBHOOK_URL=receiver.url("/hook"), ASCOLTA_WEBHOOK_SECRET=SECRET,
        ASCOLTA_DELIVERY_MAX_ATTEMPTS="200", ASCOLTA_DELIVERY_BACKOFF_SECONDS="0.2",
        ASCOLTA_DELIVERY_MAX_BACKOFF_SECONDS="2", ASCOLTA_DELIVERY_DEADLINE_SECONDS="120",
        ASCOLTA_ALERTS_DEADLETTER_TOPIC=f"alerts-dl-{free_port()}",
    )
    alerts_topic, deadletter_topic = worker.topics["alerts"], worker.env["ASCOLTA_ALERTS_DEADLETTER_TOPIC"]
    before = [alert_event("aurora-1", 0, "opened"), alert_event("nordwind-1", 0, "opened", brand="Nordwind Air",
                                                                   kind="opportunity", severity=3.0)]
    during = [alert_event("aurora-1", seq) for seq in (1, 2, 3)] + [alert_event("aurora-1", 4, "resolved", severity=0.4)]
    everything = before + during
    try:
        worker.start().wait_web()
        asyncio.run(produce(broker.url, alerts_topic, keyed(before)))
        wait_for(lambda: len(receiver.event_ids("/hook")) == 2, 90, worker, "the first two alerts")

        receiver.stop()  # the receiver is down for 30 s during the crisis
        asyncio.run(produce(broker.url, alerts_topic, keyed(during)))
        time.sleep(30)
        assert receiver.requests and len(receiver.event_ids("/hook")) == 2
        receiver.start()
        wait_for(lambda: len(receiver.event_ids("/hook")) == len(everything), 90, worker, "every alert after the outage")

        expected = {a["event_id"] for a in everything}
        hook = receiver.event_ids("/hook")
        assert set(hook) == expected and max(hook.values()) == 1, hook
        delivered_bodies = {orjson.loads(b)["event_id"]: orjson.loads(b) for p, _, b in receiver.requests if p == "/hook"}
        assert delivered_bodies == {a["event_id"]: a for a in everything}  # the alert itself, byte for byte JSON
        assert receiver.rejected == 0

        # Slack: only Caffè Aurora's crisis; Teams: severity >= 5 opens, then the whole incident follows it
        # (its resolution at severity 0.4 too); Nordwind's opportunity at 3.0 reaches neither.
        aurora = {a["event_id"] for a in everything if a["brand"] == "Caffè Aurora"}
        wait_for(lambda: set(receiver.event_ids("/slack")) == aurora and set(receiver.event_ids("/teams")) == aurora,
                 30, worker, "slack and teams")
        assert max(receiver.event_ids("/slack").values()) == 1 and max(receiver.event_ids("/teams").values()) == 1
        slack = [orjson.loads(b) for p, _, b in receiver.requests if p == "/slack"]
        assert all(m["blocks"][0]["type"] == "header" for m in slack)
        assert any(m["blocks"][0]["text"]["text"].startswith("Crisi risolta") for m in slack)  # Italian route
        assert all("<!channel>" not in orjson.dumps(m).decode() for m in slack)
        teams = [orjson.loads(b) for p, _, b in receiver.requests if p == "/teams"]
        assert all(m["attachments"][0]["content"]["type"] == "AdaptiveCard" for m in teams)

        # The retired hook answers 410: every event is dead-lettered with its reason, none lost.
        got = asyncio.run(consume_until(broker.url, [deadletter_topic],
                                        lambda g: len(g[deadletter_topic]) >= len(everything), timeout=60))
        dead = got[deadletter_topic]
        assert sorted(d["event_id"] for d in dead) == sorted(expected)
        assert {(d["route"], d["reason"], d["last_error"]) for d in dead} == {("retired-hook", "permanent_failure", "http_4xx")}
        assert all(d["alert"]["event_id"] == d["event_id"] and "410" in d["detail"] for d in dead)
        assert all(validate("alert-deadletter", d) == [] for d in dead)
        assert metric(worker, "ascolta_alerts_deadlettered_total", channel="webhook", reason="permanent_failure") == len(everything)
        assert metric(worker, "ascolta_deliveries_total", route="webhook", outcome="delivered") == len(everything)

        # Restart, then get every event again (as a re-processing detector re-emits the same event ids): the
        # delivery table, rebuilt from its changelog, stops the re-sends.
        time.sleep(4)  # let the changelog writes and the offset commit happen
        worker.stop()
        worker.start().wait_web()
        asyncio.run(produce(broker.url, alerts_topic, keyed(everything)))
        wait_for(lambda: metric(worker, "ascolta_deliveries_total", route="webhook", outcome="duplicate") == len(everything),
                 120, worker, "the re-read alerts to be recognised as already delivered")
        assert max(receiver.event_ids("/hook").values()) == 1
        assert metric(worker, "ascolta_deliveries_total", outcome="delivered") == 0  # nothing sent twice
        got = asyncio.run(consume_until(broker.url, [deadletter_topic], lambda g: False, timeout=3))
        assert len(got[deadletter_topic]) == len(everything)  # nor dead-lettered twice

        # Secrets never reach the logs or the metrics.
        scraped = worker.get("/metrics").decode()
        logged = Path(worker.log_path).read_text(errors="replace")
        assert "delivered on route webhook" in logged
        for secret in (SECRET, FILE_SECRET, receiver.url("/teams")):
            assert secret not in logged and secret not in scraped
    finally:
        worker.stop()


def test_unroutable_alert_is_dead_lettered(broker, receiver, tmp_path):
    worker = WorkerProcess(broker.url, tmp_path / "worker.log", ASCOLTA_WEBHOOK_URL=receiver.url("/hook"),
                           ASCOLTA_WEBHOOK_SECRET=SECRET, ASCOLTA_ALERTS_DEADLETTER_TOPIC=f"alerts-dl-{free_port()}")
    deadletter_topic = worker.env["ASCOLTA_ALERTS_DEADLETTER_TOPIC"]
    try:
        worker.start().wait_web()
        good = alert_event("lumen-1", 0, "opened", brand="Lumen Bank")
        asyncio.run(produce(broker.url, worker.topics["alerts"],
                            [(b"x", b"{not json"), (b"y", orjson.dumps({"event_id": 3})), *keyed([good])]))
        got = asyncio.run(consume_until(broker.url, [deadletter_topic], lambda g: len(g[deadletter_topic]) >= 2,
                                        timeout=90, on_idle=worker.assert_alive))
        dead = got[deadletter_topic]
        assert [d["reason"] for d in dead] == ["invalid_alert", "invalid_alert"]
        assert dead[0]["original_base64"] and dead[0]["alert"] is None
        assert all(validate("alert-deadletter", d) == [] for d in dead)
        wait_for(lambda: set(receiver.event_ids("/hook")) == {"lumen-1:0"}, 60, worker, "the valid alert")
    finally:
        worker.stop()
