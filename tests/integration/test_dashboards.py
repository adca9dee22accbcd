"""The Grafana dashboard and the Prometheus rules against a real Prometheus scraping a real worker.

Every panel's PromQL is run through Prometheus' HTTP API (variables substituted as Grafana would) and must
return data, so a renamed metric or a typo in a query fails here rather than as an empty panel in production.
The worker runs with 5-second buckets so that a volume burst opens a crisis within seconds and the alert
latency histogram has an observation to show.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from streams.tools.broker import free_port

from .mentions import valid_mentions
from .test_notify import SECRET, Receiver, alert_event, keyed
from .workers import ROOT, WorkerProcess, consume_until, produce

pytestmark = pytest.mark.integration

DASHBOARD = ROOT / "dashboards" / "grafana" / "ascolta.json"
RULES = ROOT / "dashboards" / "prometheus"
NO_PROMETHEUS = "the prometheus binary is missing: apt-get install -y prometheus (Debian package; .ci/run does it)"
BUCKET_S, LATENESS_S, TICK_S = 5, 1, 1
BURST_BRAND = "Dash Co"


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel, with Grafana's variables substituted."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$brand", ".*")
            queries.append((panel["title"], expr))
    return queries


def test_dashboard_is_provisioning_ready():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["brand"]["definition"] == "label_values(ascolta_mentions_total, brand)"
    assert variables["brand"]["includeAll"] and variables["brand"]["allValue"] == ".*"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"]
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    exprs = " ".join(expr for _, expr in dashboard_queries())
    for family in ("ascolta_mentions_total", "ascolta_detector_severity", "ascolta_incidents_open",
                   "ascolta_deliveries_total", "ascolta_consumer_lag_messages", "ascolta_enrich_latency_seconds_bucket",
                   "ascolta_deadlettered_total", "ascolta_alerts_deadlettered_total", "ascolta_stage_lag_messages",
                   "ascolta_stage_lag_seconds", "ascolta_alert_latency_seconds_bucket"):
        assert family in exprs, family


@pytest.mark.skipif(shutil.which("promtool") is None, reason=NO_PROMETHEUS)
def test_promtool_accepts_the_rules_and_their_tests():
    for command in (["check", "rules", "rules.yml"], ["test", "rules", "rules.test.yml"], ["check", "config", "prometheus.yml"]):
        result = subprocess.run(["promtool", *command], cwd=RULES, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def volume_burst(now: float) -> list[tuple[bytes, bytes]]:
    """Enriched mentions of one brand without sentiment (the detector's volume path decides alone): two per
    bucket for an hour up to 100 s ago, then 60 in the bucket of ``now``, as in test_clock.py."""
    def mention(i: int, ts: float) -> tuple[bytes, bytes]:
        record = {"id": f"d{i}", "brand": BURST_BRAND, "source": "news", "text": f"an ordinary post {i}",
                  "created_at": datetime.fromtimestamp(ts, UTC).isoformat(), "language": "en"}
        return BURST_BRAND.encode(), orjson.dumps(record)
    history = [mention(2 * k + j, now - 3600 + k * BUCKET_S + j) for k in range(700) for j in range(2)]
    return history + [mention(10_000 + j, now) for j in range(60)]


def query(port: int, expr: str) -> list:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def start_prometheus(tmp_path: Path, scrape_port: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES / 'rules.yml'}']\n"
        "scrape_configs:\n"
        f"  - job_name: ascolta\n    static_configs: [{{targets: ['127.0.0.1:{scrape_port}']}}]\n"
    )
    process = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=open(tmp_path / "prometheus.log", "ab"), stderr=subprocess.STDOUT,
    )
    return process, port


@pytest.mark.skipif(shutil.which("prometheus") is None, reason=NO_PROMETHEUS)
def test_every_panel_returns_data_from_a_real_prometheus(broker, tmp_path):
    receiver = Receiver().start()
    (tmp_path / "routes.yaml").write_text(
        f"- {{name: retired-hook, channel: webhook, url: '{receiver.url('/gone')}', secret: other}}\n")
    worker = WorkerProcess(
        broker.url, tmp_path / "worker.log", ASCOLTA_NOTIFY_CONFIG=str(tmp_path / "routes.yaml"),
        ASCOLTA_WEBHOOK_URL=receiver.url("/hook"), ASCOLTA_WEBHOOK_SECRET=SECRET,
        ASCOLTA_ALERTS_DEADLETTER_TOPIC=f"alerts-dl-{free_port()}", ASCOLTA_BUCKET_SECONDS=str(BUCKET_S),
        ASCOLTA_ALLOWED_LATENESS_SECONDS=str(LATENESS_S), ASCOLTA_CLOCK_TICK_SECONDS=str(TICK_S),
    )
    prometheus = None
    stop = threading.Event()
    try:
        worker.start().wait_web()
        prometheus, port = start_prometheus(tmp_path, worker.web_port)
        now = datetime.now(UTC)
        # Event time only moves forward per partition: the model's history (ending two hours ago), then the
        # volume burst's hour, then live traffic.
        history = valid_mentions(400, start=now - timedelta(hours=3), seconds=3600, seed=5)
        asyncio.run(produce(broker.url, worker.topics["raw"],
                            [(r["id"].encode(), orjson.dumps(r)) for r in history] + [(b"bad", b"{not json")]))
        asyncio.run(produce(broker.url, worker.topics["alerts"],
                            keyed([alert_event("aurora-9", 0, "opened"), alert_event("aurora-9", 1)])))
        enriched = worker.topics["enriched"]
        asyncio.run(consume_until(broker.url, [enriched], lambda got: len(got[enriched]) >= len(history),
                                  timeout=180, on_idle=worker.assert_alive))
        asyncio.run(produce(broker.url, enriched, volume_burst(time.time())))

        def keep_mentions_flowing() -> None:  # rates over the last minute need recent traffic
            batch = 0
            while not stop.wait(1.0):
                batch += 1
                fresh = valid_mentions(10, start=datetime.now(UTC) - timedelta(seconds=30), seconds=20, seed=100 + batch)
                asyncio.run(produce(broker.url, worker.topics["raw"],
                                    [(r["id"].encode(), orjson.dumps(r)) for r in fresh]))

        flow = threading.Thread(target=keep_mentions_flowing, daemon=True)
        flow.start()
        # the burst's crisis was opened and its latency observed (not just an empty histogram's NaN)
        empty = dashboard_queries() + [("alert latency observed", "sum(ascolta_alert_latency_seconds_count) > 0")]
        deadline = time.monotonic() + 180
        while empty and time.monotonic() < deadline:
            worker.assert_alive()
            assert prometheus.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                empty = [(title, expr) for title, expr in empty if not query(port, expr)]
            except OSError:  # Prometheus still starting
                pass
            time.sleep(2)
        assert not empty, f"panels without data: {empty}"
        assert query(port, 'up{job="ascolta"}')[0]["value"][1] == "1"
    finally:
        stop.set()
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(30)
        worker.stop()
        receiver.close()
