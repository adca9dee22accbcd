"""Delivery: backoff, rate limits and retries against real HTTP servers, the channel registry, the notifier's
once-per-route policy without a broker, and the records that go to ``alerts.deadletter`` (checked against
``schemas/alert-deadletter.v1.json``)."""
from __future__ import annotations

import base64
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

import aiohttp
import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from streams.alerting.channels import CHANNELS
from streams.alerting.channels.base import (
    Channel, IncomingWebhookTarget, RouteConfigError, http_url, json_headers, post, read_secret,
)
from streams.alerting.channels.webhook import WebhookTarget
from streams.alerting.delivery import (
    DeliveryMetrics, Notifier, Outcome, RateLimiter, RetryPolicy, alert_deadletter_record, backoff_delay,
    deliver_with_retries, parse_alert, send_alert,
)
from streams.alerting.receiver import make_app
from streams.alerting.render import summarise
from streams.alerting.routes import Route, describe, parse_config
from streams.tools.broker import free_port
from streams.contracts import validate

from .fixtures import http_server, make_alert, recording_app

SECRET = "whsec-Never-In-Logs-9d3a"


def route(channel: str, target, language: str = "en") -> Route:
    return Route(name=f"test-{channel}", channel=channel, target=target, language=language)


# --- backoff, rate limit, retries ------------------------------------------------------------------------

def test_backoff_grows_with_jitter_and_honours_retry_after():
    policy = RetryPolicy(backoff_s=1.0, max_backoff_s=8.0)
    rng = random.Random(3)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [backoff_delay(policy, attempt, None, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling and len(set(delays)) > 100
    assert backoff_delay(policy, 1, 30.0, rng) == 30.0


def test_rate_limiter_spaces_sends():
    now = [0.0]
    limiter = RateLimiter(2.0, burst=1.0, clock=lambda: now[0])
    assert [limiter.reserve() for _ in range(3)] == [0.0, 0.5, 1.0]
    now[0] = 10.0
    assert limiter.reserve() == 0.0


async def test_retries_honour_retry_after_then_succeed():
    requests: list = []
    responses = [(503, {}), (429, {"Retry-After": "1"})]
    policy = RetryPolicy(max_attempts=5, backoff_s=0.05, max_backoff_s=0.1, deadline_s=10)
    results: list[str] = []
    async with http_server(recording_app(requests, responses)) as base, aiohttp.ClientSession() as session:
        target = route("slack", IncomingWebhookTarget(f"{base}/slack"))
        outcome = await deliver_with_retries(lambda: send_alert(target, make_alert(), session, 2), policy,
                                             RateLimiter(100), on_attempt=results.append)
    assert outcome.delivered and outcome.attempts == 3
    assert results == ["http_5xx", "http_429", "success"]
    assert requests[2][3] - requests[1][3] >= 1.0  # waited as the server asked


async def test_permanent_errors_stop_at_once_and_unreachable_routes_exhaust_their_budget():
    policy = RetryPolicy(max_attempts=3, backoff_s=0.05, max_backoff_s=0.1, deadline_s=10)
    async with http_server(recording_app([], [(410, {})])) as base, aiohttp.ClientSession() as session:
        gone = route("teams", IncomingWebhookTarget(f"{base}/gone"))
        outcome = await deliver_with_retries(lambda: send_alert(gone, make_alert(), session, 2), policy, RateLimiter(100))
        assert (outcome.delivered, outcome.attempts, outcome.reason, outcome.last_error) == (
            False, 1, "permanent_failure", "http_4xx")
        closed = route("webhook", WebhookTarget(f"http://127.0.0.1:{free_port()}/x", SECRET))
        outcome = await deliver_with_retries(lambda: send_alert(closed, make_alert(), session, 2), policy,
                                             RateLimiter(100))
        assert (outcome.attempts, outcome.reason, outcome.last_error) == (3, "attempts_exhausted", "connection")
        slow = RetryPolicy(max_attempts=10, backoff_s=5, max_backoff_s=5, deadline_s=1)
        outcome = await deliver_with_retries(lambda: send_alert(closed, make_alert(), session, 2), slow, RateLimiter(100))
        assert (outcome.attempts, outcome.reason) == (1, "deadline_exceeded")


async def test_a_rendering_bug_is_dead_lettered_not_raised():
    async def broken() -> None:
        raise KeyError("explanation")

    outcome = await deliver_with_retries(broken, RetryPolicy(), RateLimiter(100))
    assert (outcome.delivered, outcome.reason, outcome.last_error) == (False, "permanent_failure", "internal_error")


# --- a new channel is one module plus one registry line ----------------------------------------------------

@dataclass(frozen=True)
class PagerTarget:
    url: str = field(repr=False)
    service: str


class PagerChannel(Channel):
    """A channel the product does not have, written as a new module would be: config, render, send."""

    name = "pager"
    default_rate_per_second = 5.0
    secret_keys = frozenset({"url"})
    plain_keys = frozenset({"service"})

    def parse_target(self, route: str, spec: dict, environ: Mapping[str, str]) -> PagerTarget:
        url = read_secret(route=route, key="url", spec=spec, environ=environ)
        if not url or "service" not in spec:
            raise RouteConfigError(f"route {route!r}: pager routes need url and service")
        return PagerTarget(url=http_url(route, "url", url), service=str(spec["service"]))

    def render(self, alert: dict, lang: str, service: str) -> dict:
        s = summarise(alert, lang)
        return {"service": service, "summary": s.title, "details": dict(s.facts)}

    async def send(self, target: PagerTarget, alert: dict, *, language: str, route_name: str, session,
                   timeout_s: float) -> None:
        body = orjson.dumps(self.render(alert, language, target.service))
        await post(session, target.url, body, json_headers(alert), timeout_s)


async def test_a_channel_added_to_the_registry_is_routed_and_delivered(monkeypatch):
    monkeypatch.setitem(CHANNELS, "pager", PagerChannel())
    requests: list = []
    async with http_server(recording_app(requests, [(503, {})])) as base, aiohttp.ClientSession() as session:
        config = json.dumps({"routes": [{"name": "on-call", "channel": "pager", "url_env": "PAGER_URL",
                                         "service": "brand-desk", "language": "it", "kinds": ["crisis"]}]})
        (pager,) = parse_config(config, source="t", environ={"PAGER_URL": f"{base}/pager?token=tok-Secret"})
        assert (pager.channel, pager.rate_per_second, pager.language) == ("pager", 5.0, "it")
        assert "tok-Secret" not in repr(pager) + describe([pager])
        policy = RetryPolicy(max_attempts=3, backoff_s=0.01, max_backoff_s=0.01, deadline_s=10)
        outcome = await deliver_with_retries(lambda: send_alert(pager, make_alert(), session, 5), policy,
                                             RateLimiter(pager.rate_per_second))
    assert (outcome.delivered, outcome.attempts) == (True, 2)
    path, headers, body, _ = requests[-1]
    assert path == "/pager" and headers["X-Ascolta-Event-Id"] == "inc-7:2"
    assert orjson.loads(body) == {"service": "brand-desk", "summary": "Crisi aperta: Caffè <Aurora>",
                                  "details": dict(summarise(make_alert(), "it").facts)}
    with pytest.raises(RouteConfigError, match=r"unknown keys \['sevrice'\] for a pager route"):
        parse_config(json.dumps([{"name": "x", "channel": "pager", "url": "https://h/", "sevrice": "s"}]),
                     source="t", environ={})


def test_channels_outside_the_registry_are_refused_naming_the_registered_ones():
    with pytest.raises(RouteConfigError, match="channel must be one of slack, teams, email, webhook, got 'pager'"):
        parse_config(json.dumps([{"name": "x", "channel": "pager"}]), source="t", environ={})


# --- events that cannot be routed or delivered -------------------------------------------------------------

@pytest.mark.parametrize(("value", "problem"), [
    (b"{not json", "not JSON"), (b"[1]", "not a JSON object"), (orjson.dumps({"event_id": 3}), "event_id"),
    (None, "not JSON"), (orjson.dumps(make_alert() | {"severity": True}), "severity"),
])
def test_unroutable_alerts_say_why(value, problem):
    alert, why = parse_alert(value)
    assert alert is None and problem in why


def test_a_routable_alert_with_schema_problems_is_still_delivered(caplog):
    alert = make_alert()
    del alert["explanation"]["most_negative"][1]["score"]
    parsed, why = parse_alert(orjson.dumps(alert))
    assert parsed == alert and why == ""
    assert "does not match schemas/alert.v1.json" in caplog.text


def test_dead_letter_records_match_their_schema():
    at = datetime(2026, 5, 4, 13, 55, 2, tzinfo=timezone.utc)
    hook = route("webhook", WebhookTarget("https://h/x", SECRET))
    outcome = Outcome(False, 8, "attempts_exhausted", "connection", "attempt 8: cannot reach h: ClientConnectorError")
    failed = alert_deadletter_record(reason=outcome.reason, detail=outcome.detail, topic="alerts", partition=1,
                                     offset=42, original=orjson.dumps(make_alert()), alert=make_alert(), route=hook,
                                     outcome=outcome, now=at)
    assert validate("alert-deadletter", failed) == []
    assert failed | {"alert": None} == {
        "schema_version": 1, "reason": "attempts_exhausted", "detail": outcome.detail, "route": "test-webhook",
        "channel": "webhook", "attempts": 8, "last_error": "connection", "event_id": "inc-7:2", "alert": None,
        "original_base64": None, "source": {"topic": "alerts", "partition": 1, "offset": 42},
        "dead_lettered_at": "2026-05-04T13:55:02Z",
    }
    unreadable = alert_deadletter_record(reason="invalid_alert", detail="not JSON", topic="alerts", partition=0,
                                         offset=7, original=b"{not json", alert=None, route=None, outcome=None)
    assert validate("alert-deadletter", unreadable) == []
    assert base64.b64decode(unreadable["original_base64"]) == b"{not json" and unreadable["attempts"] == 0
    assert validate("alert-deadletter", failed | {"alert": None}) != []  # a delivery failure keeps its alert


# --- the notifier, without a broker ------------------------------------------------------------------------

@dataclass(frozen=True)
class KafkaRecord:
    key: bytes | None
    value: bytes | None
    topic: str = "alerts"
    partition: int = 0
    offset: int = 0


class TableRecords:
    """What the worker's changelogged SeenKeys table does for the notifier, in a dict."""

    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}

    def get(self, key: str) -> dict | None:
        return self.rows.get(key)

    def add(self, key: str, *, partition: int, now: float, **fields: object) -> None:
        self.rows[key] = {"at": now, "p": partition, **fields}


def delivery_metrics(registry: CollectorRegistry) -> DeliveryMetrics:
    return DeliveryMetrics(
        deliveries=Counter("d", "", ["channel", "route", "outcome"], registry=registry),
        attempts=Counter("a", "", ["channel", "route", "result"], registry=registry),
        seconds=Histogram("s", "", ["channel", "route"], registry=registry),
        deadlettered=Counter("x", "", ["channel", "reason"], registry=registry),
    )


async def test_notifier_delivers_once_per_route_follows_incidents_and_dead_letters_the_rest():
    verified: list = []
    refused: list = []
    dead: list[tuple[bytes | None, dict]] = []

    async def send_deadletter(key: bytes | None, record: dict) -> None:
        dead.append((key, record))

    opened = make_alert("opened") | {"severity": 7.0}
    resolved = make_alert("resolved") | {"event_id": "inc-7:3", "severity": 0.4}
    opportunity = make_alert("opened", "opportunity") | {"event_id": "inc-8:0", "incident_id": "inc-8", "severity": 3.0}
    registry = CollectorRegistry()
    async with http_server(make_app(SECRET, verified.append)) as hook, \
            http_server(recording_app(refused, [(410, {})] * 3)) as gone, aiohttp.ClientSession() as session:
        routes = parse_config(json.dumps([
            {"name": "hook", "channel": "webhook", "url": f"{hook}/a", "secret": SECRET, "min_severity": 5},
            {"name": "gone", "channel": "slack", "webhook_url": f"{gone}/gone", "rate_per_second": 100},
        ]), source="t", environ={})
        notifier = Notifier(routes, RetryPolicy(max_attempts=2, backoff_s=0.01, max_backoff_s=0.01, deadline_s=5),
                            deliveries=TableRecords(), notified_incidents=TableRecords(),
                            send_deadletter=send_deadletter, session=lambda: session,
                            metrics=delivery_metrics(registry))
        for offset, value in enumerate([orjson.dumps(opened), orjson.dumps(resolved), orjson.dumps(opportunity),
                                        b"{not json", orjson.dumps(opened)]):
            await notifier.handle(KafkaRecord(key=b"k", value=value, offset=offset))
    assert verified == [opened, resolved]  # the resolution at 0.4 follows the incident; 3.0 opens nothing
    assert len(refused) == 3
    assert [(key, d["reason"], d["route"], d["source"]["offset"]) for key, d in dead] == [
        (b"inc-7:2", "permanent_failure", "gone", 0), (b"inc-7:3", "permanent_failure", "gone", 1),
        (b"inc-8:0", "permanent_failure", "gone", 2), (b"k", "invalid_alert", None, 3)]
    assert all(validate("alert-deadletter", d) == [] for _, d in dead)
    count = registry.get_sample_value
    assert count("d_total", {"channel": "webhook", "route": "hook", "outcome": "delivered"}) == 2
    assert count("d_total", {"channel": "webhook", "route": "hook", "outcome": "duplicate"}) == 1
    assert count("d_total", {"channel": "slack", "route": "gone", "outcome": "duplicate"}) == 1  # not retried
    assert count("x_total", {"channel": "slack", "reason": "permanent_failure"}) == 3
    assert count("x_total", {"channel": "none", "reason": "invalid_alert"}) == 1
    assert count("a_total", {"channel": "slack", "route": "gone", "result": "http_4xx"}) == 3
