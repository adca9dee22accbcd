"""Alert messages for each channel, the clients that send them, and the retry loop around a send.

Rendering is pure (alert dict in, payload out) so it is tested byte for byte. Everything that came from the
public (mention text, author handles, URLs, terms, even brand names) is escaped for the channel it goes to:
Slack mrkdwn (``&``, ``<``, ``>``: no ``<!channel>`` or fake links), Teams markdown (backslash escapes), and
email HTML (``html.escape``). Error details name the host, never a URL: Slack and Teams URLs are secrets.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import random
import re
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Awaitable, Callable
from urllib.parse import quote, urlsplit

import orjson

from .explain import clean_text, format_alert, moment, percent, shares, snippet
from .routing import EmailTarget, Route, SlackTarget, TeamsTarget, WebhookTarget

SIGNATURE_TOLERANCE_S = 300  # receivers reject timestamps further than this from their clock
SAMPLE_CHARS = 280
SAMPLES_SHOWN = 4
SLACK_LINK_CHARS = 1500  # with a 280-character quote and the heading, well within a section's 3000

_LABELS = {
    "en": {
        ("crisis", "opened"): "Crisis opened", ("crisis", "updated"): "Crisis updated",
        ("crisis", "resolved"): "Crisis resolved", ("opportunity", "opened"): "Opportunity opened",
        ("opportunity", "updated"): "Opportunity updated", ("opportunity", "resolved"): "Opportunity resolved",
        "severity": "Severity", "volume": "Volume", "volume_value": "{observed} mentions vs {expected} expected ({ratio}×)",
        "negative": "Negative", "negative_value": "{share} vs {usual} usual", "reach": "Reach",
        "reach_value": "{reach} vs {usual} usual", "top_terms": "Top terms", "no_terms": "no unusual terms",
        "languages": "Languages", "sources": "Sources", "samples": "Mentions to read first",
        "incident": "Incident", "state": "State", "open": "open", "resolved": "resolved", "since": "since",
        "event": "event", "date": "%Y-%m-%d %H:%M UTC",
    },
    "it": {
        ("crisis", "opened"): "Crisi aperta", ("crisis", "updated"): "Crisi aggiornata",
        ("crisis", "resolved"): "Crisi risolta", ("opportunity", "opened"): "Opportunità aperta",
        ("opportunity", "updated"): "Opportunità aggiornata", ("opportunity", "resolved"): "Opportunità risolta",
        "severity": "Gravità", "volume": "Volume",
        "volume_value": "{observed} menzioni contro {expected} attese ({ratio}×)",
        "negative": "Negative", "negative_value": "{share} contro il {usual} abituale", "reach": "Copertura",
        "reach_value": "{reach} contro {usual} abituale", "top_terms": "Termini principali",
        "no_terms": "nessun termine insolito", "languages": "Lingue", "sources": "Fonti",
        "samples": "Menzioni da leggere per prime", "incident": "Incidente", "state": "Stato", "open": "aperto",
        "resolved": "risolto", "since": "dalle", "event": "evento", "date": "%d/%m/%Y %H:%M UTC",
    },
}


# --- what every message says -----------------------------------------------------------------------------

def _number(value: float, lang: str, digits: int = 1) -> str:
    text = f"{float(value):,.{digits}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".") if lang == "it" else text


def safe_url(url: object) -> str | None:
    """A sample's link if it is a plain http(s) URL; anything else (javascript:, data:) is not linked."""
    if not isinstance(url, str) or any(c.isspace() for c in url):
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


@dataclass(frozen=True)
class Sample:
    author: str
    text: str
    url: str | None


@dataclass(frozen=True)
class Summary:
    """An alert reduced to plain, unescaped strings in one language; each channel escapes them its way."""

    title: str
    kind: str
    event: str
    facts: list[tuple[str, str]]
    samples: list[Sample]
    footer: str


def summarise(alert: dict, lang: str) -> Summary:
    labels = _LABELS[lang]
    ex = alert.get("explanation", {})
    kind, event = alert.get("kind"), alert.get("event")
    title = f"{labels.get((kind, event), f'{kind} {event}')}: {clean_text(str(alert.get('brand', '')))}"
    terms = ", ".join(
        f"{clean_text(str(t['term']))} ({t['count']})" for t in ex.get("top_terms", [])[:8]
    ) or labels["no_terms"]
    state = labels["resolved"] if event == "resolved" else labels["open"]
    facts = [
        (labels["severity"], _number(alert.get("severity", 0), lang)),
        (labels["volume"], labels["volume_value"].format(
            observed=_number(ex.get("observed", 0), lang, 0), expected=_number(ex.get("expected", 0), lang),
            ratio=_number(ex.get("volume_ratio", 0), lang))),
        (labels["negative"], labels["negative_value"].format(
            share=percent(ex.get("negative_share", 0)), usual=percent(ex.get("baseline_negative_share", 0)))),
        (labels["reach"], labels["reach_value"].format(
            reach=_number(ex.get("reach", 0), lang, 0), usual=_number(ex.get("baseline_reach", 0), lang, 0))),
        (labels["top_terms"], terms),
        (labels["languages"], shares(ex.get("languages", {}))),
        (labels["sources"], shares(ex.get("sources", {}))),
        (labels["state"], f"{state}, {labels['since']} {moment(alert.get('started_at', ''), labels['date'])}"),
    ]
    seen: set[str] = set()
    samples = []
    for sample in [*ex.get("most_negative", []), *ex.get("most_reached", [])]:
        if sample.get("id") in seen or len(samples) == SAMPLES_SHOWN:
            continue
        seen.add(sample.get("id"))
        samples.append(Sample(author=clean_text(str(sample.get("author", ""))),
                              text=snippet(str(sample.get("text", "")), SAMPLE_CHARS), url=safe_url(sample.get("url"))))
    footer = (f"{labels['incident']} {clean_text(str(alert.get('incident_id', '')))} · {labels['event']} "
              f"{clean_text(str(alert.get('event_id', '')))} · {moment(alert.get('at', ''), labels['date'])}")
    return Summary(title=title, kind=str(kind), event=str(event), facts=facts, samples=samples, footer=footer)


# --- Slack (Block Kit) -----------------------------------------------------------------------------------

def slack_escape(text: str) -> str:
    """Slack's required escaping for mrkdwn: without it ``<!channel>`` pings everyone and ``<url|x>`` fakes a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str, label: str) -> str:
    target = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{target}|{slack_escape(label).replace('|', '¦')}>"


def slack_message(alert: dict, lang: str = "en") -> dict:
    """A Block Kit message for a Slack incoming webhook, with a plain ``text`` fallback for notifications."""
    s = summarise(alert, lang)
    emoji = ":rotating_light:" if s.kind == "crisis" else ":chart_with_upwards_trend:"
    if s.event == "resolved":
        emoji = ":white_check_mark:"
    fields = [{"type": "mrkdwn", "text": f"*{slack_escape(k)}*\n{slack_escape(v)[:1900]}"} for k, v in s.facts]
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": s.title[:150], "emoji": False}},
        {"type": "section", "fields": fields[:10]},
    ]
    for index, sample in enumerate(s.samples):  # a section each: one section's text is limited to 3000 chars
        who = _slack_link(sample.url, sample.author) if sample.url else slack_escape(sample.author)
        if len(who) > SLACK_LINK_CHARS:  # a URL bloated by escaping would break the limit: name the author only
            who = slack_escape(sample.author)
        heading = f"*{slack_escape(_LABELS[lang]['samples'])}*\n" if index == 0 else ""
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"{heading}• {who}: “{slack_escape(sample.text)}”"}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(s.footer)}]})
    return {"text": f"{emoji} {slack_escape(s.title)}", "blocks": blocks}


# --- Microsoft Teams (Adaptive Card) ---------------------------------------------------------------------

_TEAMS_MARKDOWN = re.compile(r"([\\`*_~\[\](){}#+\-.!|<>])")


def teams_escape(text: str) -> str:
    """Backslash-escape Markdown in Adaptive Card text, so public text cannot add links or formatting."""
    return _TEAMS_MARKDOWN.sub(r"\\\1", text)


def teams_message(alert: dict, lang: str = "en") -> dict:
    """An Adaptive Card (1.4) in the message envelope that Teams incoming webhooks and Workflows accept."""
    s = summarise(alert, lang)
    color = "Good" if s.event == "resolved" or s.kind == "opportunity" else "Attention"
    body: list[dict] = [
        {"type": "TextBlock", "text": teams_escape(s.title), "size": "Large", "weight": "Bolder", "color": color,
         "wrap": True},
        {"type": "FactSet", "facts": [{"title": teams_escape(k), "value": teams_escape(v)} for k, v in s.facts]},
    ]
    if s.samples:
        body.append({"type": "TextBlock", "text": teams_escape(_LABELS[lang]["samples"]), "weight": "Bolder",
                     "wrap": True, "spacing": "Medium"})
        for sample in s.samples:
            who = teams_escape(sample.author)
            if sample.url:
                who = f"[{who}]({quote(sample.url, safe=':/?&=%#@+,;~!$*')})"
            body.append({"type": "TextBlock", "text": f"{who}: “{teams_escape(sample.text)}”", "wrap": True})
    body.append({"type": "TextBlock", "text": teams_escape(s.footer), "isSubtle": True, "size": "Small", "wrap": True})
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "msteams": {"width": "Full"}, "body": body}
    return {"type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                             "content": card}]}


# --- email -----------------------------------------------------------------------------------------------

def _html_body(s: Summary, lang: str) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{e(k)}</th><td>{e(v)}</td></tr>' for k, v in s.facts
    )
    items = []
    for sample in s.samples:
        who = f'<a href="{e(sample.url)}">{e(sample.author)}</a>' if sample.url else e(sample.author)
        items.append(f"<li>{who}: “{e(sample.text)}”</li>")
    samples = f"<h3>{e(_LABELS[lang]['samples'])}</h3><ul>{''.join(items)}</ul>" if items else ""
    return (f'<!DOCTYPE html><html lang="{lang}"><body style="font-family:sans-serif">'
            f"<h2>{e(s.title)}</h2><table>{rows}</table>{samples}"
            f'<p style="color:#666;font-size:small">{e(s.footer)}</p></body></html>')


def email_message(alert: dict, lang: str, target: EmailTarget, route_name: str) -> EmailMessage:
    """A multipart/alternative mail: the terminal rendering as text, an escaped HTML table as HTML. The
    Message-ID is derived from event and route, so a re-sent alert threads as the same message."""
    s = summarise(alert, lang)
    message = EmailMessage()
    message["Subject"] = f"[Ascolta] {s.title} ({_LABELS[lang]['severity'].lower()} {s.facts[0][1]})"
    message["From"] = target.sender
    message["To"] = ", ".join(target.recipients)
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    digest = hashlib.sha256(f"{alert.get('event_id')}|{route_name}".encode()).hexdigest()[:32]
    message["Message-ID"] = f"<{digest}@ascolta.alerts>"
    message["X-Ascolta-Event-Id"] = clean_text(str(alert.get("event_id", "")))
    message.set_content(format_alert(alert, lang) + "\n\n" + s.footer + "\n")
    message.add_alternative(_html_body(s, lang), subtype="html")
    return message


# --- generic webhook -------------------------------------------------------------------------------------

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
        "Content-Type": "application/json",
        "X-Ascolta-Event-Id": str(alert.get("event_id", "")),
        "X-Ascolta-Timestamp": timestamp,
        "X-Ascolta-Signature": sign(secret, timestamp, body),
    }


# --- sending ---------------------------------------------------------------------------------------------

class DeliveryError(Exception):
    """One failed attempt. ``reason`` is a short code (a metric label); ``detail`` is safe to log."""

    def __init__(self, reason: str, detail: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


async def post(session, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> None:
    """POST once; success is any 2xx. 429, 408 and 5xx are worth retrying, other 4xx are not."""
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


def _tls_context(target: EmailTarget) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=target.tls_ca_file or None)


async def send_email(message: EmailMessage, target: EmailTarget) -> None:
    """Submit over SMTP: implicit TLS (465), STARTTLS (587, required, never silently skipped) or plain."""
    import aiosmtplib

    try:
        await aiosmtplib.send(
            message,
            hostname=target.host, port=target.port,
            username=target.username or None, password=target.password or None,
            use_tls=target.security == "tls", start_tls=target.security == "starttls",
            tls_context=_tls_context(target) if target.security != "none" else None,
            timeout=target.timeout_seconds,
        )
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise DeliveryError("smtp_auth", f"{target.host} refused the login ({exc.code})", retryable=False) from None
    except aiosmtplib.SMTPResponseException as exc:
        temporary = 400 <= exc.code < 500
        raise DeliveryError("smtp_temporary" if temporary else "smtp_rejected",
                            f"{target.host} answered {exc.code} {clean_text(str(exc.message))[:200]}",
                            retryable=temporary) from None
    except (aiosmtplib.SMTPTimeoutError, asyncio.TimeoutError):
        raise DeliveryError("timeout", f"{target.host} did not answer within {target.timeout_seconds:g} s",
                            retryable=True) from None
    except ssl.SSLError as exc:
        raise DeliveryError("tls", f"TLS with {target.host} failed: {exc.reason}", retryable=False) from None
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError) as exc:
        raise DeliveryError("connection", f"cannot reach {target.host}:{target.port}: {type(exc).__name__}",
                            retryable=True) from None
    except aiosmtplib.SMTPException as exc:  # e.g. no STARTTLS or AUTH offered: a configuration mismatch
        raise DeliveryError("smtp_unsupported", f"{target.host}: {clean_text(str(exc))[:200]}",
                            retryable=False) from None


async def send_alert(route: Route, alert: dict, session, timeout_s: float) -> None:
    """One attempt at delivering ``alert`` over ``route``; raises DeliveryError when it fails."""
    target = route.target
    event_header = {"X-Ascolta-Event-Id": str(alert.get("event_id", ""))}
    if isinstance(target, WebhookTarget):
        body, headers = webhook_request(alert, target.secret)
        await post(session, target.url, body, headers, timeout_s)
    elif isinstance(target, SlackTarget):
        body = orjson.dumps(slack_message(alert, route.language))
        await post(session, target.webhook_url, body, {"Content-Type": "application/json", **event_header}, timeout_s)
    elif isinstance(target, TeamsTarget):
        body = orjson.dumps(teams_message(alert, route.language))
        await post(session, target.webhook_url, body, {"Content-Type": "application/json", **event_header}, timeout_s)
    else:
        await send_email(email_message(alert, route.language, target, route.name), target)


# --- retries and rate limits -----------------------------------------------------------------------------

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
