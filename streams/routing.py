"""Which alert events go where: routes read from ``ASCOLTA_NOTIFY_CONFIG`` (JSON or YAML) and the environment.

A route is one destination (a Slack or Teams channel, a mailbox list, a webhook URL) with a filter on brand,
kind, event and severity, a language for the message, and a rate limit. Secrets (webhook URLs of Slack and
Teams, which embed a token; SMTP passwords; webhook signing secrets) can be given inline, as the name of an
environment variable (``<key>_env``) or as a mounted file (``<key>_file``), and are kept out of ``repr`` so
they never reach a log line. Parsing is strict: an unknown key is a typo that would silently drop alerts.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHANNELS = ("slack", "teams", "email", "webhook")
KINDS = ("crisis", "opportunity")
EVENTS = ("opened", "updated", "resolved")
LANGUAGES = ("en", "it")
EMAIL_SECURITY = ("starttls", "tls", "none")
DEFAULT_EMAIL_PORTS = {"starttls": 587, "tls": 465, "none": 25}
# Slack and Teams incoming webhooks accept about one message per second per channel.
DEFAULT_RATE_PER_SECOND = {"slack": 1.0, "teams": 1.0, "email": 1.0, "webhook": 10.0}
ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # a metric label: short and bounded
ENV_WEBHOOK_ROUTE = "webhook"

_COMMON_KEYS = {"name", "channel", "brands", "min_severity", "kinds", "events", "language", "rate_per_second"}
_SECRET_KEYS = {"slack": {"webhook_url"}, "teams": {"webhook_url"}, "email": {"password"}, "webhook": {"secret", "url"}}
_PLAIN_KEYS = {
    "slack": set(),
    "teams": set(),
    "email": {"host", "port", "security", "username", "from", "to", "tls_ca_file", "timeout_seconds"},
    "webhook": set(),
}


class RouteConfigError(ValueError):
    """The notification configuration is unusable; the message names the route and the key."""


@dataclass(frozen=True)
class SlackTarget:
    webhook_url: str = field(repr=False)


@dataclass(frozen=True)
class TeamsTarget:
    webhook_url: str = field(repr=False)


@dataclass(frozen=True)
class EmailTarget:
    host: str
    port: int
    security: str  # starttls | tls | none
    sender: str
    recipients: tuple[str, ...]
    username: str = ""
    password: str = field(default="", repr=False)
    tls_ca_file: str = ""  # extra CA bundle to trust (a private mail relay); the system store otherwise
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class WebhookTarget:
    url: str = field(repr=False)  # may carry a token in its path or query
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Route:
    name: str
    channel: str
    target: SlackTarget | TeamsTarget | EmailTarget | WebhookTarget
    brands: frozenset[str] | None = None  # None: every brand
    min_severity: float = 0.0
    kinds: frozenset[str] = frozenset(KINDS)
    events: frozenset[str] = frozenset(EVENTS)
    language: str = "en"
    rate_per_second: float = 1.0

    def matches(self, alert: dict) -> bool:
        """Brand, kind and event filters; severity is decided by :func:`wants`, which knows the incident."""
        return (
            (self.brands is None or alert["brand"] in self.brands)
            and alert["kind"] in self.kinds
            and alert["event"] in self.events
        )


def wants(route: Route, alert: dict, incident_already_notified: bool) -> bool:
    """Whether ``route`` gets ``alert``. ``min_severity`` decides whether an incident is worth a message at
    all; once a route has told its people about an incident, it also gets that incident's later events,
    whatever their severity, so a team never sees a crisis open and never sees it resolve."""
    if not route.matches(alert):
        return False
    return incident_already_notified or float(alert["severity"]) >= route.min_severity


def read_secret(*, route: str, key: str, spec: dict, environ: dict[str, str]) -> str | None:
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


def _http_url(route: str, key: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RouteConfigError(f"route {route!r}: {key} must be an http(s) URL")  # the URL itself may be secret
    return url


def _choices(route: str, key: str, value: Any, allowed: tuple[str, ...]) -> frozenset[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise RouteConfigError(f"route {route!r}: {key} must be a non-empty list of {', '.join(allowed)}")
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise RouteConfigError(f"route {route!r}: unknown {key} {unknown}; allowed: {', '.join(allowed)}")
    return frozenset(values)


def _brands(route: str, value: Any) -> frozenset[str] | None:
    if value == "*":
        return None
    if not isinstance(value, list) or not value or not all(isinstance(b, str) and b for b in value):
        raise RouteConfigError(f"route {route!r}: brands must be \"*\" or a non-empty list of brand names")
    return frozenset(value)


def _number(route: str, key: str, value: Any, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (positive and value == 0):
        raise RouteConfigError(f"route {route!r}: {key} must be a {'positive' if positive else 'non-negative'} number")
    return float(value)


def _email_target(name: str, spec: dict, environ: dict[str, str]) -> EmailTarget:
    security = spec.get("security", "starttls")
    if security not in EMAIL_SECURITY:
        raise RouteConfigError(f"route {name!r}: security must be one of {', '.join(EMAIL_SECURITY)}")
    for key in ("host", "from", "to"):
        if key not in spec:
            raise RouteConfigError(f"route {name!r}: email routes need {key!r}")
    recipients = spec["to"] if isinstance(spec["to"], list) else [spec["to"]]
    if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
        raise RouteConfigError(f"route {name!r}: to must be an address or a list of addresses")
    password = read_secret(route=name, key="password", spec=spec, environ=environ) or ""
    username = spec.get("username", "")
    if password and not username:
        raise RouteConfigError(f"route {name!r}: a password needs a username")
    port = spec.get("port", DEFAULT_EMAIL_PORTS[security])
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise RouteConfigError(f"route {name!r}: port must be an integer 1..65535")
    return EmailTarget(
        host=str(spec["host"]), port=port, security=security, sender=str(spec["from"]),
        recipients=tuple(recipients), username=str(username), password=password,
        tls_ca_file=str(spec.get("tls_ca_file", "")),
        timeout_seconds=_number(name, "timeout_seconds", spec.get("timeout_seconds", 30.0), positive=True),
    )


def _target(name: str, channel: str, spec: dict, environ: dict[str, str]):
    if channel == "email":
        return _email_target(name, spec, environ)
    if channel == "webhook":
        url = read_secret(route=name, key="url", spec=spec, environ=environ)
        secret = read_secret(route=name, key="secret", spec=spec, environ=environ)
        if not url or not secret:
            raise RouteConfigError(f"route {name!r}: webhook routes need a url and a signing secret")
        return WebhookTarget(url=_http_url(name, "url", url), secret=secret)
    url = read_secret(route=name, key="webhook_url", spec=spec, environ=environ)
    if not url:
        raise RouteConfigError(f"route {name!r}: {channel} routes need webhook_url (or webhook_url_env/_file)")
    url = _http_url(name, "webhook_url", url)
    return SlackTarget(url) if channel == "slack" else TeamsTarget(url)


def parse_route(spec: Any, environ: dict[str, str]) -> Route:
    """One route from its configuration mapping (see docs/alerting.md for every key)."""
    if not isinstance(spec, dict):
        raise RouteConfigError(f"each route must be a mapping, got {type(spec).__name__}")
    name = spec.get("name")
    if not isinstance(name, str) or not ROUTE_NAME.fullmatch(name):
        raise RouteConfigError(f"route name {name!r} must match {ROUTE_NAME.pattern} (it becomes a metric label)")
    channel = spec.get("channel")
    if channel not in CHANNELS:
        raise RouteConfigError(f"route {name!r}: channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    secret_keys = {f"{k}{suffix}" for k in _SECRET_KEYS[channel] for suffix in ("", "_env", "_file")}
    unknown = sorted(set(spec) - _COMMON_KEYS - _PLAIN_KEYS[channel] - secret_keys)
    if unknown:
        raise RouteConfigError(f"route {name!r}: unknown keys {unknown} for a {channel} route")
    language = spec.get("language", "en")
    if language not in LANGUAGES:
        raise RouteConfigError(f"route {name!r}: language must be one of {', '.join(LANGUAGES)}")
    return Route(
        name=name,
        channel=channel,
        target=_target(name, channel, spec, environ),
        brands=_brands(name, spec.get("brands", "*")),
        min_severity=_number(name, "min_severity", spec.get("min_severity", 0.0), positive=False),
        kinds=_choices(name, "kinds", spec.get("kinds", list(KINDS)), KINDS),
        events=_choices(name, "events", spec.get("events", list(EVENTS)), EVENTS),
        language=language,
        rate_per_second=_number(
            name, "rate_per_second", spec.get("rate_per_second", DEFAULT_RATE_PER_SECOND[channel]), positive=True
        ),
    )


def parse_config(text: str, *, source: str, environ: dict[str, str]) -> list[Route]:
    """Routes from a JSON or YAML document: a list of routes, or a mapping with a ``routes`` list."""
    import yaml  # YAML is a superset of JSON: one parser reads both

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RouteConfigError(f"{source}: not valid YAML or JSON: {exc}") from None
    routes = document.get("routes") if isinstance(document, dict) else document
    if not isinstance(routes, list):
        raise RouteConfigError(f"{source}: expected a list of routes or a mapping with a 'routes' list")
    return [parse_route(spec, environ) for spec in routes]


def env_webhook_route(environ: dict[str, str]) -> Route | None:
    """The simplest setup: ASCOLTA_WEBHOOK_URL and ASCOLTA_WEBHOOK_SECRET (or _FILE) sign and post every event."""
    url = environ.get("ASCOLTA_WEBHOOK_URL", "")
    if not url:
        return None
    spec = {"name": ENV_WEBHOOK_ROUTE, "channel": "webhook", "url": url}
    if environ.get("ASCOLTA_WEBHOOK_SECRET_FILE"):
        spec["secret_file"] = environ["ASCOLTA_WEBHOOK_SECRET_FILE"]
    elif environ.get("ASCOLTA_WEBHOOK_SECRET"):
        spec["secret"] = environ["ASCOLTA_WEBHOOK_SECRET"]
    else:
        raise RouteConfigError("ASCOLTA_WEBHOOK_URL is set but neither ASCOLTA_WEBHOOK_SECRET nor "
                               "ASCOLTA_WEBHOOK_SECRET_FILE is: receivers could not verify the alerts")
    return parse_route(spec, environ)


def load_routes(config_path: str = "", environ: dict[str, str] | None = None) -> list[Route]:
    """Every configured route: those of the config file plus the environment's webhook route."""
    environ = dict(os.environ if environ is None else environ)
    routes: list[Route] = []
    if config_path:
        try:
            text = Path(config_path).read_text(encoding="utf-8")
        except OSError as exc:
            raise RouteConfigError(f"cannot read ASCOLTA_NOTIFY_CONFIG {config_path}: {exc.strerror}") from None
        routes += parse_config(text, source=config_path, environ=environ)
    webhook = env_webhook_route(environ)
    if webhook is not None:
        routes.append(webhook)
    names = [r.name for r in routes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RouteConfigError(f"route names must be unique; repeated: {duplicates}")
    return routes


def describe(routes: list[Route]) -> str:
    """One line per route for the worker's start-up log, without secrets."""
    return "; ".join(
        f"{r.name} ({r.channel}, lang {r.language}, brands {'*' if r.brands is None else sorted(r.brands)}, "
        f"min severity {r.min_severity:g}, {'/'.join(sorted(r.kinds))}, {'/'.join(sorted(r.events))})"
        for r in routes
    ) or "no routes"
