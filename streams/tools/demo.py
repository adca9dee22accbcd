"""``ascolta demo``: the whole pipeline on embedded defaults, with alerts printed as they happen.

Starts the embedded broker and one worker process, replays the bundled sample stream (rebased so it ends
now), and prints every alert event from the ``alerts`` topic in readable form. Ends cleanly after
``--duration`` seconds or on Ctrl-C: worker and broker are stopped and waited for, exit code 0.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from ..settings import Settings
from .broker import EmbeddedBroker, free_port

log = logging.getLogger(__name__)


def _say(text: str) -> None:
    print(text, flush=True)


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log_file = open(log_path, "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "warning"],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches the demo only; the demo stops the worker in order
    )


def stop_worker(worker: subprocess.Popen, timeout: float = 30.0) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("worker did not stop within %.0f s: killing it", timeout)
            worker.kill()
            worker.wait()


async def watch(env: dict[str, str], expected: int, deadline: float | None, worker: subprocess.Popen,
                summary: dict) -> None:
    """Print alerts as they arrive and a progress line now and then; keep ``summary`` up to date as it goes, so
    Ctrl-C can still summarise what was seen."""
    from aiokafka import AIOKafkaConsumer

    from ..alerting.render import format_alert

    consumer = AIOKafkaConsumer(
        env["ASCOLTA_ALERTS_TOPIC"], env["ASCOLTA_ENRICHED_TOPIC"], env["ASCOLTA_DEADLETTER_TOPIC"],
        bootstrap_servers=env["ASCOLTA_BROKER"].split("://", 1)[-1],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        metadata_max_age_ms=2000,
    )
    counted = {env["ASCOLTA_ENRICHED_TOPIC"]: "enriched", env["ASCOLTA_DEADLETTER_TOPIC"]: "deadlettered"}
    alerts: list[dict] = summary["alerts"]
    await consumer.start()
    last_progress = time.monotonic()
    try:
        while deadline is None or time.monotonic() < deadline:
            if worker.poll() is not None:
                _say(f"!! the worker exited with code {worker.returncode}; see its log")
                break
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            for tp, messages in batches.items():
                if tp.topic in counted:
                    summary[counted[tp.topic]] += len(messages)
                else:  # the alerts topic
                    for message in messages:
                        alert = orjson.loads(message.value)
                        alerts.append(alert)
                        _say("\n" + format_alert(alert) + "\n")
            if time.monotonic() - last_progress > 10:
                last_progress = time.monotonic()
                done = summary["enriched"] + summary["deadlettered"]
                _say(f"   ... {done}/{expected} mentions processed, {len(alerts)} alert events so far")
    finally:
        await consumer.stop()


async def demo_session(env: dict[str, str], records: list[dict], deadline: float | None,
                       worker: subprocess.Popen, summary: dict) -> None:
    from .replay import replay

    watcher = asyncio.create_task(watch(env, len(records), deadline, worker, summary))
    sender = asyncio.create_task(replay(
        records, bootstrap=env["ASCOLTA_BROKER"].split("://", 1)[-1], topic=env["ASCOLTA_RAW_TOPICS"], speed=None,
        progress=False,
    ))
    try:
        sent = await sender
        log.info("replayed %d sample mentions", sent)
        await watcher
    finally:
        for task in (sender, watcher):
            task.cancel()
        await asyncio.gather(sender, watcher, return_exceptions=True)


def summarise(summary: dict, brands: list[str]) -> None:
    by_brand = collections.defaultdict(list)
    for alert in summary["alerts"]:
        by_brand[alert["brand"]].append(alert)
    _say("=" * 72)
    _say(f"Demo summary: {summary['enriched']} mentions enriched, {summary['deadlettered']} dead-lettered, "
         f"{len(summary['alerts'])} alert events")
    for brand in brands:
        events = by_brand.get(brand, [])
        kinds = sorted({f"{a['kind']} {a['event']}" for a in events})
        _say(f"  {brand:<18} {', '.join(kinds) if kinds else 'quiet: no alert'}")
    _say("=" * 72)


DEMO_WEBHOOK_SECRET = "ascolta-demo"  # only when no ASCOLTA_WEBHOOK_SECRET(_FILE) is set: a local demo needs none


def webhook_env(webhook_url: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """Worker variables that make it sign and post every alert to ``webhook_url`` (or ASCOLTA_WEBHOOK_URL)."""
    url = webhook_url or environ.get("ASCOLTA_WEBHOOK_URL", "")
    if not url:
        return {}
    env = {"ASCOLTA_WEBHOOK_URL": url}
    if not (environ.get("ASCOLTA_WEBHOOK_SECRET") or environ.get("ASCOLTA_WEBHOOK_SECRET_FILE")):
        env["ASCOLTA_WEBHOOK_SECRET"] = DEMO_WEBHOOK_SECRET
    return env


DEMO_HOURS = 24.0  # enough history for the baselines; its crisis comes 2-4 minutes into the demo on 2 cores


def run_demo(settings: Settings, *, duration: float | None, hours: float = DEMO_HOURS, port: int | None = None,
             webhook_url: str | None = None) -> int:
    """Broker, worker and sample stream; the worker gets ``settings``' environment with the demo's topics."""
    from ..sentiment.build import prepare_default_model
    from .sample import generate

    started = time.monotonic()
    deadline = started + duration if duration else None
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # the demo's own output is the alerts
    data_path = settings.data_dir
    run_dir = data_path / "demo" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)

    _say("Ascolta demo: preparing the default sentiment model (first run converts it, later runs reuse it)")
    prepare_default_model(data_path, threads=settings.threads)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    records = generate(now - timedelta(hours=hours), hours=hours)
    brands = sorted({r["brand"] for r in records})
    _say(f"Sample stream: {len(records)} mentions, {hours:g} hours ending now, brands: {', '.join(brands)}")

    broker = EmbeddedBroker(port=port or free_port(), log_path=run_dir / "broker.log")
    worker: subprocess.Popen | None = None
    summary: dict = {"enriched": 0, "deadlettered": 0, "alerts": []}  # filled as the demo runs
    interrupted = False
    try:
        broker.start()
        broker.wait_ready(15)
        web_port = free_port()
        env = {
            **settings.environ,
            "ASCOLTA_BROKER": broker.url,
            "ASCOLTA_BROKER_COMPAT": "tansu",
            "ASCOLTA_WEB_PORT": str(web_port),
            "ASCOLTA_DATA_DIR": str(data_path),
            "ASCOLTA_APP_ID": "ascolta-demo",
            "ASCOLTA_RAW_TOPICS": "mentions.raw",
            "ASCOLTA_ENRICHED_TOPIC": "mentions.enriched",
            "ASCOLTA_DEADLETTER_TOPIC": "mentions.deadletter",
            "ASCOLTA_ALERTS_TOPIC": "alerts",
            **webhook_env(webhook_url, settings.environ),
        }
        room_url = settings.public_url or f"http://{settings.web_host}:{web_port}"
        env.setdefault("ASCOLTA_PUBLIC_URL", room_url)  # the printed alerts link their incident's page
        worker = start_worker(env, run_dir / "worker.log")
        _say(f"Broker {broker.url} (log {run_dir / 'broker.log'})")
        _say(f"Worker pid {worker.pid} (log {run_dir / 'worker.log'})")
        _say(f"Metrics: http://127.0.0.1:{web_port}/metrics")
        _say(f"Incident room: {room_url}/ (served until the demo ends; docs/incident-room.md)")
        if "ASCOLTA_WEBHOOK_URL" in env:
            secret_note = (f"secret {DEMO_WEBHOOK_SECRET!r}" if env.get("ASCOLTA_WEBHOOK_SECRET") == DEMO_WEBHOOK_SECRET
                           else "your ASCOLTA_WEBHOOK_SECRET")
            _say(f"Delivering signed alerts to {env['ASCOLTA_WEBHOOK_URL']} ({secret_note}; see docs/alerting.md)")
        _say("Replaying the sample stream; alerts appear below as the detector raises them. Ctrl-C ends the demo.")
        asyncio.run(demo_session(env, records, deadline, worker, summary))
    except KeyboardInterrupt:
        interrupted = True
        _say("\nInterrupted: stopping the worker and the broker")
    finally:
        if worker is not None:
            stop_worker(worker)
        broker.stop()
    summarise(summary, brands)
    _say(f"Demo ended after {time.monotonic() - started:.0f} s; logs in {run_dir}")
    if worker is not None and worker.returncode not in (0, -signal.SIGTERM) and not interrupted:
        return 1
    return 0
