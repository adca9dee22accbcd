"""A generic webhook: the alert event JSON unchanged (``schemas/alert.v1.json``), signed with HMAC-SHA256
over ``"<timestamp>.<body>"`` so receivers can tell real alerts from forged or replayed ones."""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from .base import Channel, RouteConfigError, http_url, json_headers, post, read_secret

SIGNATURE_TOLERANCE_S = 300  # receivers reject timestamps further than this from their clock


@dataclass(frozen=True)
class WebhookTarget:
    url: str = field(repr=False)  # may carry a token in its path or query
    secret: str = field(repr=False)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``: the timestamp is signed so it cannot be replayed
    with a fresh one."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, *,
           now: float | None = None, tolerance_s: float = SIGNATURE_TOLERANCE_S) -> bool:
    """What a receiver does: a fresh timestamp and a matching signature, compared in constant time."""
    if not timestamp or not signature:
        return False
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def webhook_request(alert: dict, secret: str, *, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """The body (the alert as JSON, per schemas/alert.v1.json) and the signed headers; re-signed per attempt."""
    body = orjson.dumps(alert)
    timestamp = str(int(time.time() if now is None else now))
    return body, {
        **json_headers(alert),
        "X-Ascolta-Timestamp": timestamp,
        "X-Ascolta-Signature": sign(secret, timestamp, body),
    }


class WebhookChannel(Channel):
    name = "webhook"
    default_rate_per_second = 10.0
    secret_keys = frozenset({"url", "secret"})

    def parse_target(self, route: str, spec: dict, environ: Mapping[str, str]) -> WebhookTarget:
        url = read_secret(route=route, key="url", spec=spec, environ=environ)
        secret = read_secret(route=route, key="secret", spec=spec, environ=environ)
        if not url or not secret:
            raise RouteConfigError(f"route {route!r}: webhook routes need a url and a signing secret")
        return WebhookTarget(url=http_url(route, "url", url), secret=secret)

    async def send(self, target: WebhookTarget, alert: dict, *, language: str, route_name: str, session,
                   timeout_s: float) -> None:
        body, headers = webhook_request(alert, target.secret)
        await post(session, target.url, body, headers, timeout_s)
