"""Route configuration: JSON and YAML files, secrets from the environment and files, strict errors."""
from __future__ import annotations

import json

import pytest

from streams.alerting.channels.email import EmailTarget
from streams.alerting.channels.webhook import WebhookTarget
from streams.alerting.routes import (
    RouteConfigError, describe, env_webhook_route, load_routes, parse_config, wants,
)

YAML = """
routes:
  - name: pr-team
    channel: slack
    brands: ["Caffè Aurora", "Lumen Bank"]
    min_severity: 6
    kinds: [crisis]
    language: it
    webhook_url_env: SLACK_URL
  - name: ops-mail
    channel: email
    host: smtp.example.com
    security: tls
    username: alerts@example.com
    password_file: {password_file}
    from: alerts@example.com
    to: [pr@example.com, ops@example.com]
  - name: siem
    channel: webhook
    events: [opened, resolved]
    url: https://siem.example.com/hooks/ascolta?token=abc
    secret_env: SIEM_SECRET
"""
ENV = {"SLACK_URL": "https://hooks.slack.com/services/T0/B0/XyZ", "SIEM_SECRET": "siem-secret"}


def alert(brand="Caffè Aurora", kind="crisis", event="opened", severity=7.0) -> dict:
    return {"brand": brand, "kind": kind, "event": event, "severity": severity, "incident_id": "i", "event_id": "i:0"}


@pytest.fixture
def routes(tmp_path):
    password = tmp_path / "smtp_password"
    password.write_text("hunter2\n")
    return parse_config(YAML.format(password_file=password), source="routes.yaml", environ=ENV)


def test_yaml_routes_with_defaults_and_secrets(routes):
    slack, mail, siem = routes
    assert (slack.name, slack.channel, slack.language, slack.min_severity) == ("pr-team", "slack", "it", 6.0)
    assert slack.brands == {"Caffè Aurora", "Lumen Bank"} and slack.kinds == {"crisis"}
    assert slack.target.webhook_url == ENV["SLACK_URL"] and slack.rate_per_second == 1.0
    assert isinstance(mail.target, EmailTarget)
    assert (mail.target.port, mail.target.security, mail.target.password) == (465, "tls", "hunter2")
    assert mail.target.recipients == ("pr@example.com", "ops@example.com") and mail.brands is None
    assert mail.events == {"opened", "updated", "resolved"} and mail.language == "en"
    assert isinstance(siem.target, WebhookTarget) and siem.target.secret == "siem-secret"
    assert siem.events == {"opened", "resolved"} and siem.rate_per_second == 10.0


def test_secrets_stay_out_of_repr_and_descriptions(routes):
    text = repr(routes) + describe(routes)
    for secret in ("XyZ", "hunter2", "siem-secret", "token=abc"):
        assert secret not in text


def test_json_config_is_read_too(tmp_path):
    path = tmp_path / "routes.json"
    path.write_text(json.dumps([{"name": "hook", "channel": "webhook", "url": "http://127.0.0.1:1/", "secret": "s"}]))
    (route,) = load_routes(str(path), environ={})
    assert route.name == "hook" and route.target.url == "http://127.0.0.1:1/"


def test_environment_alone_configures_a_signed_webhook(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    route = env_webhook_route({"ASCOLTA_WEBHOOK_URL": "https://example.org/hook",
                               "ASCOLTA_WEBHOOK_SECRET_FILE": str(secret_file)})
    assert route.name == "webhook" and route.target.secret == "from-a-file" and route.brands is None
    assert load_routes("", environ={}) == []
    with pytest.raises(RouteConfigError, match="ASCOLTA_WEBHOOK_SECRET"):
        env_webhook_route({"ASCOLTA_WEBHOOK_URL": "https://example.org/hook"})


@pytest.mark.parametrize("route, message", [
    ({"name": "x", "channel": "pager", "url": "u"}, "channel must be one of"),
    ({"name": "bad name!", "channel": "webhook"}, "route name"),
    ({"name": "x", "channel": "slack", "webhook_url": "https://h/x", "min_severty": 3}, r"unknown keys \['min_severty'\]"),
    ({"name": "x", "channel": "slack", "webhook_url_env": "NOPE"}, "NOPE .* is not set"),
    ({"name": "x", "channel": "slack", "webhook_url": "ftp://h/x"}, "http"),
    ({"name": "x", "channel": "slack", "webhook_url": "https://h/x", "webhook_url_env": "A"}, "only one of"),
    ({"name": "x", "channel": "webhook", "url": "https://h/x"}, "signing secret"),
    ({"name": "x", "channel": "slack", "webhook_url": "https://h/x", "kinds": ["crisis", "gossip"]}, "unknown kinds"),
    ({"name": "x", "channel": "slack", "webhook_url": "https://h/x", "language": "fr"}, "language"),
    ({"name": "x", "channel": "slack", "webhook_url": "https://h/x", "brands": []}, "brands"),
    ({"name": "x", "channel": "slack", "webhook_url": "https://h/x", "min_severity": -1}, "min_severity"),
    ({"name": "x", "channel": "email", "host": "h", "from": "a@b"}, "'to'"),
    ({"name": "x", "channel": "email", "host": "h", "from": "a@b", "to": "c@d", "password": "p"}, "username"),
    ({"name": "x", "channel": "email", "host": "h", "from": "a@b", "to": "c@d", "security": "ssl"}, "security"),
])
def test_mistakes_are_reported_precisely(route, message):
    with pytest.raises(RouteConfigError, match=message):
        parse_config(json.dumps([route]), source="t", environ={})


def test_route_names_are_unique(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("- {name: webhook, channel: webhook, url: 'http://h/', secret: s}\n")
    with pytest.raises(RouteConfigError, match="unique"):
        load_routes(str(path), environ={"ASCOLTA_WEBHOOK_URL": "http://h/2", "ASCOLTA_WEBHOOK_SECRET": "s"})


def test_unreadable_config_says_which_file(tmp_path):
    with pytest.raises(RouteConfigError, match="cannot read ASCOLTA_NOTIFY_CONFIG"):
        load_routes(str(tmp_path / "missing.yaml"), environ={})
    (tmp_path / "bad.yaml").write_text("routes: {name: [")
    with pytest.raises(RouteConfigError, match="not valid YAML"):
        load_routes(str(tmp_path / "bad.yaml"), environ={})


def test_brand_kind_event_and_severity_filters(routes):
    slack, mail, siem = routes
    assert wants(slack, alert(), False)
    assert not wants(slack, alert(brand="Velo Motors"), False)
    assert not wants(slack, alert(kind="opportunity"), False)
    assert not wants(slack, alert(severity=5.9), False)
    assert not wants(siem, alert(event="updated"), False)
    assert wants(mail, alert(brand="anything", kind="opportunity", severity=0.0), False)


def test_an_incident_a_route_was_told_about_is_followed_to_its_end(routes):
    slack = routes[0]
    resolved = alert(event="resolved", severity=0.3)
    assert not wants(slack, resolved, incident_already_notified=False)
    assert wants(slack, resolved, incident_already_notified=True)
    assert not wants(slack, alert(brand="Velo Motors", event="resolved"), incident_already_notified=True)


def test_routes_never_read_the_process_environment(monkeypatch):
    monkeypatch.setenv("ASCOLTA_WEBHOOK_URL", "https://example.org/hook")
    monkeypatch.setenv("ASCOLTA_WEBHOOK_SECRET", "s")
    assert load_routes("", environ={}) == []  # only the mapping given (the worker's Settings.environ) counts
