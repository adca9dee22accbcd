"""What every channel builds on: the :class:`Channel` base class, configuration helpers that keep secrets
out of logs, :class:`DeliveryError`, and the one HTTP POST that Slack, Teams and webhooks share.

Error details name the host, never a URL: Slack and Teams URLs are secrets.
"""
from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson

from ...detection.digest import clean_text


class RouteConfigError(ValueError):
    """The notification configuration is unusable; the message names the route and the key."""


class DeliveryError(Exception):
    """One failed attempt. ``reason`` is a short code (a metric label); ``detail`` is safe to log."""

    def __init__(self, reason: str, detail: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after


class Channel(ABC):
    """One kind of destination. A subclass names its route keys, turns a route's configuration into its
    target (a frozen dataclass whose secrets are ``repr=False``), and sends one alert to that target.

    ``send`` renders the message in the route's language and raises :class:`DeliveryError` when an attempt
    fails; retries, rate limits and dead letters are :mod:`streams.alerting.delivery`'s business."""

    name: ClassVar[str]
    default_rate_per_second: ClassVar[float] = 1.0  # Slack and Teams webhooks accept about one per second
    secret_keys: ClassVar[frozenset[str]] = frozenset()  # each also as <key>_env and <key>_file
    plain_keys: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def parse_target(self, route: str, spec: dict, environ: Mapping[str, str]) -> Any:
        """The target of route ``route`` from its configuration mapping ``spec``; RouteConfigError if unusable."""

    @abstractmethod
    async def send(self, target: Any, alert: dict, *, language: str, route_name: str, session,
                   timeout_s: float) -> None:
        """One attempt at delivering ``alert`` to ``target`` (``session``: the worker's aiohttp session)."""

    def route_keys(self) -> frozenset[str]:
        """Every key a route of this channel may have beyond the common ones."""
        return self.plain_keys | {f"{k}{suffix}" for k in self.secret_keys for suffix in ("", "_env", "_file")}


# --- configuration ---------------------------------------------------------------------------------------

def read_secret(*, route: str, key: str, spec: dict, environ: Mapping[str, str]) -> str | None:
    """``key`` given inline, as ``<key>_env`` (a variable name) or ``<key>_file`` (a path); None if absent."""
    given = [k for k in (key, f"{key}_env", f"{key}_file") if k in spec]
    if len(given) > 1:
        raise RouteConfigError(f"route {route!r}: give only one of {', '.join(given)}")
    if not given:
        return None
    name = given[0]
    value = spec[name]
    if not isinstance(value, str) or not value:
        raise RouteConfigError(f"route {route!r}: {name} must be a non-empty string")
    if name.endswith("_env"):
        if not environ.get(value):
            raise RouteConfigError(f"route {route!r}: environment variable {value} (from {name}) is not set")
        return environ[value]
    if name.endswith("_file"):
        try:
            secret = Path(value).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise RouteConfigError(f"route {route!r}: cannot read {name} {value}: {exc.strerror}") from None
        if not secret:
            raise RouteConfigError(f"route {route!r}: {name} {value} is empty")
        return secret
    return value


def http_url(route: str, key: str, url: str) -> str:
    """``url`` if it is http(s) with a host; the error never quotes it, as it may carry a token."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RouteConfigError(f"route {route!r}: {key} must be an http(s) URL")
    return url


def config_number(route: str, key: str, value: Any, *, positive: bool) -> float:
    """A numeric route setting; booleans and negative numbers are mistakes."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (positive and value == 0):
        raise RouteConfigError(f"route {route!r}: {key} must be a {'positive' if positive else 'non-negative'} number")
    return float(value)


# --- HTTP ------------------------------------------------------------------------------------------------

def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def post(session, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> None:
    """POST once; success is any 2xx. 429, 408, 425 and 5xx are worth retrying, other 4xx are not."""
    import aiohttp

    host = urlsplit(url).hostname or "?"
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            if 200 <= response.status < 300:
                return
            text = clean_text((await response.text(errors="replace"))[:200])
            retryable = response.status in (408, 425, 429) or response.status >= 500
            reason = "http_429" if response.status == 429 else f"http_{response.status // 100}xx"
            raise DeliveryError(reason, f"HTTP {response.status} from {host}: {text}", retryable=retryable,
                                retry_after=parse_retry_after(response.headers.get("Retry-After")))
    except asyncio.TimeoutError:
        raise DeliveryError("timeout", f"no answer from {host} within {timeout_s:g} s", retryable=True) from None
    except aiohttp.ClientError as exc:
        raise DeliveryError("connection", f"cannot reach {host}: {type(exc).__name__}", retryable=True) from None


def json_headers(alert: dict) -> dict[str, str]:
    """Headers of a JSON POST carrying ``alert``: its event id is the receiver's idempotency key."""
    return {"Content-Type": "application/json", "X-Ascolta-Event-Id": str(alert.get("event_id", ""))}


@dataclass(frozen=True)
class IncomingWebhookTarget:
    webhook_url: str = field(repr=False)  # Slack and Teams incoming-webhook URLs embed a token


class IncomingWebhookChannel(Channel):
    """A chat channel reached through an incoming webhook: the rendered message POSTed as JSON."""

    secret_keys = frozenset({"webhook_url"})

    @abstractmethod
    def render(self, alert: dict, lang: str) -> dict:
        """The channel's JSON message for ``alert`` in ``lang``, with public text escaped its way."""

    def parse_target(self, route: str, spec: dict, environ: Mapping[str, str]) -> IncomingWebhookTarget:
        url = read_secret(route=route, key="webhook_url", spec=spec, environ=environ)
        if not url:
            raise RouteConfigError(f"route {route!r}: {self.name} routes need webhook_url (or webhook_url_env/_file)")
        return IncomingWebhookTarget(http_url(route, "webhook_url", url))

    async def send(self, target: IncomingWebhookTarget, alert: dict, *, language: str, route_name: str, session,
                   timeout_s: float) -> None:
        body = orjson.dumps(self.render(alert, language))
        await post(session, target.webhook_url, body, json_headers(alert), timeout_s)
