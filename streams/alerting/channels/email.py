"""Email over SMTP: a ``multipart/alternative`` mail with the terminal rendering as text and an escaped HTML
table, submitted with implicit TLS (465), STARTTLS (587, required, never silently skipped) or in plain."""
from __future__ import annotations

import asyncio
import hashlib
import html
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime

from ...detection.digest import clean_text
from ..render import Summary, format_alert, summarise
from .base import Channel, DeliveryError, RouteConfigError, config_number, read_secret

EMAIL_SECURITY = ("starttls", "tls", "none")
DEFAULT_EMAIL_PORTS = {"starttls": 587, "tls": 465, "none": 25}


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


def _html_body(s: Summary, lang: str) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{e(k)}</th><td>{e(v)}</td></tr>' for k, v in s.facts
    )
    items = []
    for sample in s.samples:
        who = f'<a href="{e(sample.url)}">{e(sample.author)}</a>' if sample.url else e(sample.author)
        items.append(f"<li>{who}: “{e(sample.text)}”</li>")
    samples = f"<h3>{e(s.samples_heading)}</h3><ul>{''.join(items)}</ul>" if items else ""
    stories = "".join(f"<li>“{e(story.text)}”<br><small>{e(story.figures)}</small></li>" for story in s.stories)
    stories = f"<h3>{e(s.stories_heading)}</h3><ul>{stories}</ul>" if stories else ""
    return (f'<!DOCTYPE html><html lang="{lang}"><body style="font-family:sans-serif">'
            f"<h2>{e(s.title)}</h2><table>{rows}</table>{stories}{samples}"
            f'<p style="color:#666;font-size:small">{e(s.footer)}</p></body></html>')


def email_message(alert: dict, lang: str, target: EmailTarget, route_name: str) -> EmailMessage:
    """A multipart/alternative mail: the terminal rendering as text, an escaped HTML table as HTML. The
    Message-ID is derived from event and route, so a re-sent alert threads as the same message."""
    s = summarise(alert, lang)
    severity_label, severity = s.facts[0]
    message = EmailMessage()
    message["Subject"] = f"[Ascolta] {s.title} ({severity_label.lower()} {severity})"
    message["From"] = target.sender
    message["To"] = ", ".join(target.recipients)
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    digest = hashlib.sha256(f"{alert.get('event_id')}|{route_name}".encode()).hexdigest()[:32]
    message["Message-ID"] = f"<{digest}@ascolta.alerts>"
    message["X-Ascolta-Event-Id"] = clean_text(str(alert.get("event_id", "")))
    message.set_content(format_alert(alert, lang) + "\n\n" + s.footer + "\n")
    message.add_alternative(_html_body(s, lang), subtype="html")
    return message


async def send_email(message: EmailMessage, target: EmailTarget) -> None:
    """Submit over SMTP; every failure becomes a DeliveryError saying whether a retry can help."""
    import aiosmtplib

    try:
        await aiosmtplib.send(
            message,
            hostname=target.host, port=target.port,
            username=target.username or None, password=target.password or None,
            use_tls=target.security == "tls", start_tls=target.security == "starttls",
            tls_context=ssl.create_default_context(cafile=target.tls_ca_file or None)
            if target.security != "none" else None,
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


class EmailChannel(Channel):
    name = "email"
    secret_keys = frozenset({"password"})
    plain_keys = frozenset({"host", "port", "security", "username", "from", "to", "tls_ca_file", "timeout_seconds"})

    def parse_target(self, route: str, spec: dict, environ: Mapping[str, str]) -> EmailTarget:
        security = spec.get("security", "starttls")
        if security not in EMAIL_SECURITY:
            raise RouteConfigError(f"route {route!r}: security must be one of {', '.join(EMAIL_SECURITY)}")
        for key in ("host", "from", "to"):
            if key not in spec:
                raise RouteConfigError(f"route {route!r}: email routes need {key!r}")
        recipients = spec["to"] if isinstance(spec["to"], list) else [spec["to"]]
        if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
            raise RouteConfigError(f"route {route!r}: to must be an address or a list of addresses")
        password = read_secret(route=route, key="password", spec=spec, environ=environ) or ""
        username = spec.get("username", "")
        if password and not username:
            raise RouteConfigError(f"route {route!r}: a password needs a username")
        port = spec.get("port", DEFAULT_EMAIL_PORTS[security])
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise RouteConfigError(f"route {route!r}: port must be an integer 1..65535")
        return EmailTarget(
            host=str(spec["host"]), port=port, security=security, sender=str(spec["from"]),
            recipients=tuple(recipients), username=str(username), password=password,
            tls_ca_file=str(spec.get("tls_ca_file", "")),
            timeout_seconds=config_number(route, "timeout_seconds", spec.get("timeout_seconds", 30.0), positive=True),
        )

    async def send(self, target: EmailTarget, alert: dict, *, language: str, route_name: str, session,
                   timeout_s: float) -> None:
        await send_email(email_message(alert, language, target, route_name), target)
