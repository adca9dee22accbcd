"""Getting alert events to their routes: once per route, with retries, backoff and a rate limit per route,
or onto ``alerts.deadletter`` with the reason when the budget is spent or the event cannot be routed at all.

:class:`Notifier` is the whole policy, given its tables, its dead-letter sender and its metrics, so
:mod:`streams.notify` only wires it to Faust. :func:`deliver_with_retries` never raises for a failed send:
it returns an :class:`Outcome`, and the notifier either records a delivery or dead-letters the event;
nothing is lost silently.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Protocol

import orjson

from ..contracts import format_rfc3339, validate
from .channels import CHANNELS
from .channels.base import DeliveryError
from .routes import Route, wants

log = logging.getLogger(__name__)

ROUTING_FIELDS = {"event_id": str, "incident_id": str, "brand": str, "kind": str, "event": str, "severity": (int, float)}


async def send_alert(route: Route, alert: dict, session, timeout_s: float) -> None:
    """One attempt at delivering ``alert`` over ``route``, through its channel; raises DeliveryError."""
    await CHANNELS[route.channel].send(route.target, alert, language=route.language, route_name=route.name,
                                       session=session, timeout_s=timeout_s)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    backoff_s: float = 1.0  # first retry waits about this long, doubling each time
    max_backoff_s: float = 60.0
    deadline_s: float = 300.0  # after this, the event is dead-lettered: one bad route cannot stall the rest
    attempt_timeout_s: float = 10.0


def backoff_delay(policy: RetryPolicy, attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Wait before attempt ``attempt + 1``: exponential with "equal jitter" (half fixed, half random), so
    retries spread out without collapsing to zero; a server's Retry-After is a floor."""
    ceiling = min(policy.max_backoff_s, policy.backoff_s * 2 ** (attempt - 1))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    return max(delay, retry_after) if retry_after is not None else delay


class RateLimiter:
    """Token bucket per route: ``rate`` sends per second with bursts of ``burst``; callers wait in order."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.clock = clock
        self.tokens = self.burst
        self.updated = clock()

    def reserve(self) -> float:
        """Take a token now and return how long to wait before using it (0 when one was available)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        return max(0.0, -self.tokens / self.rate)

    async def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    reason: str | None = None  # dead-letter reason: permanent_failure | attempts_exhausted | deadline_exceeded
    last_error: str | None = None  # the last attempt's DeliveryError.reason
    detail: str = ""


async def deliver_with_retries(
    send: Callable[[], Awaitable[None]], policy: RetryPolicy, limiter: RateLimiter, *,
    on_attempt: Callable[[str], None] = lambda result: None, rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Call ``send`` until it succeeds, fails permanently, or the attempt or time budget runs out.

    ``on_attempt`` gets "success" or the attempt's error reason (for metrics). An unexpected exception (a
    rendering bug) is a permanent failure, not a crash: the event is dead-lettered rather than lost.
    """
    rng = rng or random.Random()
    deadline = clock() + policy.deadline_s
    attempt = 0
    while True:
        attempt += 1
        await limiter.acquire()
        remaining = deadline - clock()
        try:
            if remaining <= 0:
                raise DeliveryError("timeout", "no time left for another attempt", retryable=True)
            await asyncio.wait_for(send(), timeout=min(policy.attempt_timeout_s, remaining))
        except DeliveryError as exc:
            error = exc
        except asyncio.TimeoutError:
            error = DeliveryError("timeout", f"attempt took longer than {policy.attempt_timeout_s:g} s", retryable=True)
        except Exception as exc:  # noqa: BLE001 - see docstring
            error = DeliveryError("internal_error", f"{type(exc).__name__} while sending", retryable=False)
        else:
            on_attempt("success")
            return Outcome(delivered=True, attempts=attempt)
        on_attempt(error.reason)
        detail = f"attempt {attempt}: {error.detail}"
        if not error.retryable:
            return Outcome(False, attempt, "permanent_failure", error.reason, detail)
        if attempt >= policy.max_attempts:
            return Outcome(False, attempt, "attempts_exhausted", error.reason, detail)
        delay = backoff_delay(policy, attempt, error.retry_after, rng)
        if clock() + delay >= deadline:
            return Outcome(False, attempt, "deadline_exceeded", error.reason, detail)
        await asyncio.sleep(delay)


# --- events that arrive, and those that cannot be delivered ------------------------------------------------

def parse_alert(value: bytes | None) -> tuple[dict | None, str]:
    """The alert event, or None and why it cannot be routed. Schema problems short of that are logged only:
    an alert that can be routed is worth delivering even if, say, a sample lacks a field."""
    try:
        alert = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(alert, dict):
        return None, "not a JSON object"
    for name, kind in ROUTING_FIELDS.items():
        if not isinstance(alert.get(name), kind) or isinstance(alert.get(name), bool):
            return None, f"field {name!r} missing or of the wrong type"
    problems = validate("alert", alert)
    if problems:
        log.warning("alert %s does not match schemas/alert.v1.json: %s", alert["event_id"], problems)
    return alert, ""


def alert_deadletter_record(*, reason: str, detail: str, topic: str, partition: int, offset: int,
                            original: bytes | None, alert: dict | None, route: Route | None,
                            outcome: Outcome | None, now: datetime | None = None) -> dict:
    """What ``alerts.deadletter`` holds (``schemas/alert-deadletter.v1.json``): enough to re-send by hand,
    and why it was not delivered. ``original`` is kept only when it could not be read as an alert."""
    return {
        "schema_version": 1,
        "reason": reason,
        "detail": detail,
        "route": route.name if route else None,
        "channel": route.channel if route else None,
        "attempts": outcome.attempts if outcome else 0,
        "last_error": outcome.last_error if outcome else None,
        "event_id": alert["event_id"] if alert else None,
        "alert": alert,
        "original_base64": None if alert else base64.b64encode(original or b"").decode(),
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "dead_lettered_at": format_rfc3339(now or datetime.now(timezone.utc)),
    }


# --- the notifier -----------------------------------------------------------------------------------------

class Records(Protocol):
    """A changelogged table of keys (:class:`streams.seen.SeenKeys` in the worker)."""

    def get(self, key: str) -> dict | None: ...

    def add(self, key: str, *, partition: int, now: float, **fields: object) -> None: ...


@dataclass(frozen=True)
class DeliveryMetrics:
    """The notifier's Prometheus metrics (``streams.metrics`` in the worker; see docs/alerting.md)."""

    deliveries: Any  # Counter: channel, route, outcome (delivered | deadlettered | duplicate)
    attempts: Any  # Counter: channel, route, result (success | a DeliveryError reason)
    seconds: Any  # Histogram: channel, route
    deadlettered: Any  # Counter: channel, reason


class Notifier:
    """Delivers each event to the routes that want it, all routes concurrently, and returns only when every
    route has succeeded or dead-lettered it, so the caller may commit the event's offset afterwards.

    ``deliveries`` remembers ``"<event_id>|<route>"`` once handled, so a re-read event is not sent again;
    ``notified_incidents`` remembers ``"<incident_id>|<route>"`` once a route was told, so it follows the
    incident to its end (:func:`~streams.alerting.routes.wants`). ``message`` is a Kafka record: ``key``,
    ``value``, ``topic``, ``partition``, ``offset``."""

    def __init__(self, routes: list[Route], policy: RetryPolicy, *, deliveries: Records, notified_incidents: Records,
                 send_deadletter: Callable[[bytes | None, dict], Awaitable[None]], session: Callable[[], Any],
                 metrics: DeliveryMetrics) -> None:
        self.routes = routes
        self.policy = policy
        self.deliveries = deliveries
        self.notified_incidents = notified_incidents
        self.send_deadletter = send_deadletter
        self.session = session
        self.metrics = metrics
        self.limiters = {route.name: RateLimiter(route.rate_per_second) for route in routes}

    async def handle(self, message) -> None:
        alert, problem = parse_alert(message.value)
        if alert is None:
            record = alert_deadletter_record(reason="invalid_alert", detail=problem, topic=message.topic,
                                             partition=message.partition, offset=message.offset,
                                             original=message.value, alert=None, route=None, outcome=None)
            await self.send_deadletter(message.key, record)
            self.metrics.deadlettered.labels("none", "invalid_alert").inc()
            log.error("unroutable alert at %s[%d]@%d dead-lettered: %s", message.topic, message.partition,
                      message.offset, problem)
            return
        chosen = [
            route for route in self.routes
            if wants(route, alert, bool(self.notified_incidents.get(f"{alert['incident_id']}|{route.name}")))
        ]
        await asyncio.gather(*(self.deliver_once(route, alert, message) for route in chosen))

    async def deliver_once(self, route: Route, alert: dict, message) -> None:
        """Deliver ``alert`` on ``route`` unless the table says it already was; record the result."""
        key = f"{alert['event_id']}|{route.name}"
        if self.deliveries.get(key):
            self.metrics.deliveries.labels(route.channel, route.name, "duplicate").inc()
            log.info("alert %s already handled on route %s: not sending again", alert["event_id"], route.name)
            return
        started = time.monotonic()
        attempts = self.metrics.attempts
        outcome = await deliver_with_retries(
            lambda: send_alert(route, alert, self.session(), self.policy.attempt_timeout_s), self.policy,
            self.limiters[route.name], on_attempt=lambda result: attempts.labels(route.channel, route.name, result).inc(),
        )
        self.metrics.seconds.labels(route.channel, route.name).observe(time.monotonic() - started)
        now = time.time()
        if outcome.delivered:
            self.deliveries.add(key, partition=message.partition, now=now, outcome="delivered")
            self.notified_incidents.add(f"{alert['incident_id']}|{route.name}", partition=message.partition, now=now)
            self.metrics.deliveries.labels(route.channel, route.name, "delivered").inc()
            log.info("alert %s delivered on route %s (%s) after %d attempt(s) in %.2f s", alert["event_id"],
                     route.name, route.channel, outcome.attempts, time.monotonic() - started)
            return
        record = alert_deadletter_record(reason=outcome.reason, detail=outcome.detail, topic=message.topic,
                                         partition=message.partition, offset=message.offset, original=message.value,
                                         alert=alert, route=route, outcome=outcome)
        await self.send_deadletter(alert["event_id"].encode(), record)
        self.deliveries.add(key, partition=message.partition, now=now, outcome="deadlettered")
        self.metrics.deliveries.labels(route.channel, route.name, "deadlettered").inc()
        self.metrics.deadlettered.labels(route.channel, outcome.reason).inc()
        log.error("alert %s dead-lettered on route %s (%s): %s (%s)", alert["event_id"], route.name, route.channel,
                  outcome.reason, outcome.detail)
