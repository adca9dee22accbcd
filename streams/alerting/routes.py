"""Which alert events go where: routes read from the routes file (JSON or YAML) and the environment.

A route is one destination (a Slack or Teams channel, a mailbox list, a webhook URL) with a filter on brand,
kind, event and severity, a language for the message, and a rate limit. Secrets (webhook URLs of Slack and
Teams, which embed a token; SMTP passwords; webhook signing secrets) can be given inline, as the name of an
environment variable (``<key>_env``) or as a mounted file (``<key>_file``), and are kept out of ``repr`` so
they never reach a log line. Parsing is strict: an unknown key is a typo that would silently drop alerts.
Each channel's own keys are its business (:mod:`streams.alerting.channels`); the environment is always
passed in as a mapping, never read here.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..detection.incidents import KINDS
from .channels import CHANNELS
from .channels.base import RouteConfigError, config_number
from .render import LANGUAGES

DEFAULT_KINDS = ("crisis", "opportunity")  # a watch (reach-led heads-up) goes only to routes that ask for it
EVENTS = ("opened", "updated", "resolved")
ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # a metric label: short and bounded
ENV_WEBHOOK_ROUTE = "webhook"

_COMMON_KEYS = {"name", "channel", "brands", "min_severity", "kinds", "events", "language", "rate_per_second"}


@dataclass(frozen=True)
class Route:
    name: str
    channel: str  # a key of CHANNELS
    target: Any  # the channel's target, e.g. WebhookTarget; its secrets are repr=False
    brands: frozenset[str] | None = None  # None: every brand
    min_severity: float = 0.0
    kinds: frozenset[str] = frozenset(DEFAULT_KINDS)
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


def parse_route(spec: Any, environ: Mapping[str, str]) -> Route:
    """One route from its configuration mapping (see docs/alerting.md for every key)."""
    if not isinstance(spec, dict):
        raise RouteConfigError(f"each route must be a mapping, got {type(spec).__name__}")
    name = spec.get("name")
    if not isinstance(name, str) or not ROUTE_NAME.fullmatch(name):
        raise RouteConfigError(f"route name {name!r} must match {ROUTE_NAME.pattern} (it becomes a metric label)")
    channel = CHANNELS.get(spec.get("channel"))  # type: ignore[arg-type]
    if channel is None:
        raise RouteConfigError(
            f"route {name!r}: channel must be one of {', '.join(CHANNELS)}, got {spec.get('channel')!r}")
    unknown = sorted(set(spec) - _COMMON_KEYS - channel.route_keys())
    if unknown:
        raise RouteConfigError(f"route {name!r}: unknown keys {unknown} for a {channel.name} route")
    language = spec.get("language", "en")
    if language not in LANGUAGES:
        raise RouteConfigError(f"route {name!r}: language must be one of {', '.join(LANGUAGES)}")
    return Route(
        name=name,
        channel=channel.name,
        target=channel.parse_target(name, spec, environ),
        brands=_brands(name, spec.get("brands", "*")),
        min_severity=config_number(name, "min_severity", spec.get("min_severity", 0.0), positive=False),
        kinds=_choices(name, "kinds", spec.get("kinds", list(DEFAULT_KINDS)), KINDS),
        events=_choices(name, "events", spec.get("events", list(EVENTS)), EVENTS),
        language=language,
        rate_per_second=config_number(
            name, "rate_per_second", spec.get("rate_per_second", channel.default_rate_per_second), positive=True
        ),
    )


def parse_config(text: str, *, source: str, environ: Mapping[str, str]) -> list[Route]:
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


def env_webhook_route(environ: Mapping[str, str]) -> Route | None:
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


def load_routes(config_path: str, environ: Mapping[str, str]) -> list[Route]:
    """Every configured route: those of the file at ``config_path`` (none when empty) plus the environment's
    webhook route. ``environ`` resolves ``<key>_env`` secrets (the worker passes ``Settings.environ``)."""
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
