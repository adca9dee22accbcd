"""Channel messages, escaping, signatures, retries and rate limits, sent to real HTTP and SMTP servers."""
from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import ipaddress
import logging
import ssl

import aiohttp
import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from streams.alerting.channels.base import DeliveryError, IncomingWebhookTarget, parse_retry_after
from streams.alerting.channels.email import EmailTarget, email_message
from streams.alerting.channels.slack import slack_message
from streams.alerting.channels.teams import teams_message
from streams.alerting.channels.webhook import WebhookTarget, sign, verify, webhook_request
from streams.alerting.delivery import RateLimiter, RetryPolicy, deliver_with_retries, send_alert
from streams.alerting.receiver import make_app
from streams.alerting.routes import Route
from streams.tools.broker import free_port

from .fixtures import NASTY, http_server, make_alert, recording_app

SECRET = "whsec-Never-In-Logs-9d3a"
PASSWORD = "smtp-Pass-Never-In-Logs-51e"


def mrkdwn_texts(message: dict) -> list[str]:
    texts = [message["text"]]
    for block in message["blocks"]:
        if block["type"] == "section":
            texts += [f["text"] for f in block.get("fields", [])] + ([block["text"]["text"]] if "text" in block else [])
        elif block["type"] == "context":
            texts += [e["text"] for e in block["elements"]]
    return texts


# --- rendering -------------------------------------------------------------------------------------------

def test_slack_block_kit_escapes_public_text():
    message = slack_message(make_alert(), "en")
    assert [b["type"] for b in message["blocks"]] == ["header", "section", "section", "section", "context"]
    assert all(len(t) <= 3000 for t in mrkdwn_texts(message))  # Slack's limit per text
    assert message["blocks"][0]["text"] == {"type": "plain_text", "text": "Crisis opened: Caffè <Aurora>", "emoji": False}
    texts = mrkdwn_texts(message)
    joined = "\n".join(texts)
    for control in ("<!channel>", "<@U123>", "<!here>", "<script>", "<http://x|y>"):
        assert control not in joined
    assert "&lt;!channel&gt; &lt;@U123&gt;" in joined and "&amp; &lt;http://x|y&gt;" in joined
    assert "*Volume*\n1,234 mentions vs 101.5 expected (12.2×)" in texts
    assert "*Negative*\n83% vs 14% usual" in texts
    assert "<https://example.org/post?a=1&amp;b=%3C2%3E%7C3|@angry&lt;b&gt;>" in joined  # one link, safe target
    assert "javascript:" not in joined  # not a link: shown as plain author
    assert "inc-7" in texts[-1] and "inc-7:2" in texts[-1]


def test_slack_sections_stay_within_limits_whatever_the_urls():
    alert = make_alert()
    alert["explanation"]["most_negative"][0]["url"] = "https://example.org/?" + "&<" * 500
    assert all(len(t) <= 3000 for t in mrkdwn_texts(slack_message(alert)))


def test_slack_message_in_italian():
    message = slack_message(make_alert("resolved"), "it")
    assert message["blocks"][0]["text"]["text"] == "Crisi risolta: Caffè <Aurora>"
    texts = mrkdwn_texts(message)
    assert "*Volume*\n1.234 menzioni contro 101,5 attese (12,2×)" in texts
    assert any(t.startswith("*Stato*\nrisolto, dalle 04/05/2026 13:00 UTC") for t in texts)
    assert message["text"].startswith(":white_check_mark:")


def test_teams_adaptive_card_escapes_markdown():
    message = teams_message(make_alert(), "en")
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Severity"] == r"9\.2" or facts["Severity"] == r"9\.3"
    texts = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    quoted = next(t for t in texts if "phish" in t)
    assert r"\*\*bold\*\* \[phish\]\(http://evil\.example\)" in quoted  # no link, no bold
    assert quoted.startswith(r"[@angry\<b\>](https://example.org/post?a=1&b=%3C2%3E%7C3)")
    assert not any("javascript" in t and "](" in t for t in texts)


def test_email_has_plain_and_escaped_html_parts():
    target = EmailTarget(host="h", port=25, security="none", sender="alerts@example.org",
                         recipients=("pr@example.org", "ops@example.org"))
    message = email_message(make_alert(), "it", target, "pr-mail")
    assert message["Subject"] == "[Ascolta] Crisi aperta: Caffè <Aurora> (gravità 9,2)" or "9,3" in message["Subject"]
    assert message["To"] == "pr@example.org, ops@example.org" and message["X-Ascolta-Event-Id"] == "inc-7:2"
    assert message["Message-ID"] == email_message(make_alert(), "it", target, "pr-mail")["Message-ID"]
    plain = message.get_body(("plain",)).get_content()
    html_part = message.get_body(("html",)).get_content()
    assert "CRISI APERTA" in plain and NASTY in plain  # plain text needs no escaping
    assert "<script>" not in html_part and "&lt;script&gt;alert(1)&lt;/script&gt;" in html_part
    assert '<a href="https://example.org/post?a=1&amp;b=&lt;2&gt;|3">@angry&lt;b&gt;</a>' in html_part
    assert "javascript:" not in html_part


# --- signatures and Retry-After -----------------------------------------------------------------------

def test_webhook_signature_round_trip_and_rejections():
    alert = make_alert()
    body, headers = webhook_request(alert, SECRET, now=1_800_000_000)
    assert orjson.loads(body) == alert and headers["X-Ascolta-Event-Id"] == "inc-7:2"
    assert headers["X-Ascolta-Timestamp"] == "1800000000"
    assert headers["X-Ascolta-Signature"] == sign(SECRET, "1800000000", body)
    assert verify(SECRET, "1800000000", headers["X-Ascolta-Signature"], body, now=1_800_000_100)
    assert not verify(SECRET, "1800000000", headers["X-Ascolta-Signature"], body, now=1_800_000_301)  # stale
    assert not verify(SECRET, "1800000000", headers["X-Ascolta-Signature"], body + b" ", now=1_800_000_000)
    assert not verify("other", "1800000000", headers["X-Ascolta-Signature"], body, now=1_800_000_000)
    assert not verify(SECRET, "1800000001", headers["X-Ascolta-Signature"], body, now=1_800_000_000)
    assert not verify(SECRET, None, headers["X-Ascolta-Signature"], body)


def test_retry_after_header_forms():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


# --- real servers ----------------------------------------------------------------------------------------

def route(channel: str, target, language: str = "en") -> Route:
    return Route(name=f"test-{channel}", channel=channel, target=target, language=language)


async def test_slack_teams_and_webhook_reach_a_real_receiver():
    requests: list = []
    verified: list = []
    async with http_server(recording_app(requests)) as base, http_server(make_app(SECRET, verified.append)) as hook:
        async with aiohttp.ClientSession() as session:
            await send_alert(route("slack", IncomingWebhookTarget(f"{base}/slack"), "it"), make_alert(), session, 5)
            await send_alert(route("teams", IncomingWebhookTarget(f"{base}/teams")), make_alert(), session, 5)
            await send_alert(route("webhook", WebhookTarget(f"{hook}/alerts", SECRET)), make_alert(), session, 5)
            await send_alert(route("webhook", WebhookTarget(f"{hook}/alerts", SECRET)), make_alert(), session, 5)
            with pytest.raises(DeliveryError) as wrong_secret:
                await send_alert(route("webhook", WebhookTarget(f"{hook}/alerts", "wrong")), make_alert(), session, 5)
    (slack_path, slack_headers, slack_body, _), (teams_path, teams_headers, teams_body, _) = requests
    assert slack_path == "/slack" and slack_headers["Content-Type"] == "application/json"
    assert slack_headers["X-Ascolta-Event-Id"] == "inc-7:2"
    assert orjson.loads(slack_body) == slack_message(make_alert(), "it")
    assert teams_path == "/teams" and orjson.loads(teams_body) == teams_message(make_alert(), "en")
    assert verified == [make_alert()]  # verified once; the second copy was recognised as a duplicate
    assert (wrong_secret.value.reason, wrong_secret.value.retryable) == ("http_4xx", False)


# --- SMTP ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made here, so TLS is verified for real (no 'insecure' mode)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ascolta test smtp")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.original_content or envelope.content))
        return "250 OK"


def check_login(server, session, envelope, mechanism, auth_data) -> AuthResult:
    return AuthResult(success=(auth_data.login, auth_data.password) == (b"alerts", PASSWORD.encode()), handled=False)


@contextlib.contextmanager
def smtp_server(tls_files, *, implicit_tls: bool):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, tls_files))
    mailbox = Mailbox()
    port = free_port()
    # With implicit TLS the whole session is encrypted, but aiosmtpd only counts STARTTLS as "TLS" for AUTH.
    options = ({"ssl_context": context, "auth_require_tls": False} if implicit_tls
               else {"tls_context": context, "require_starttls": True, "auth_require_tls": True})
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, authenticator=check_login,
                            auth_required=True, **options)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def mail_route(port: int, security: str, cert, password: str = PASSWORD) -> Route:
    target = EmailTarget(host="127.0.0.1", port=port, security=security, sender="alerts@ascolta.example",
                         recipients=("pr@example.org",), username="alerts", password=password,
                         tls_ca_file=str(cert), timeout_seconds=10)
    return route("email", target, "it")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # it is TLS: implicit
@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_email_over_tls_with_login(tls_files, security):
    with smtp_server(tls_files, implicit_tls=security == "tls") as (mailbox, port):
        await send_alert(mail_route(port, security, tls_files[0]), make_alert(), None, 10)
    ((sender, recipients, raw),) = mailbox.messages
    assert sender == "alerts@ascolta.example" and recipients == ["pr@example.org"]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert message["X-Ascolta-Event-Id"] == "inc-7:2" and message["Subject"].startswith("[Ascolta] Crisi aperta")
    assert "&lt;script&gt;" in message.get_body(("html",)).get_content()
    assert "CRISI APERTA" in message.get_body(("plain",)).get_content()


async def test_email_errors_are_classified(tls_files):
    with smtp_server(tls_files, implicit_tls=False) as (mailbox, port):
        with pytest.raises(DeliveryError) as refused:
            await send_alert(mail_route(port, "starttls", tls_files[0], password="wrong"), make_alert(), None, 10)
        with pytest.raises(DeliveryError) as untrusted:
            await send_alert(mail_route(port, "starttls", ""), make_alert(), None, 10)  # system CAs only
    assert (refused.value.reason, refused.value.retryable) == ("smtp_auth", False)
    assert (untrusted.value.reason, untrusted.value.retryable) == ("tls", False)
    assert mailbox.messages == []
    with pytest.raises(DeliveryError) as down:
        await send_alert(mail_route(free_port(), "starttls", tls_files[0]), make_alert(), None, 3)
    assert (down.value.reason, down.value.retryable) == ("connection", True)


# --- secrets ---------------------------------------------------------------------------------------------

async def test_secrets_never_reach_the_logs(caplog, tls_files):
    caplog.set_level(logging.DEBUG)
    token_url_path = "/services/T000/B000/SecretToken123"
    policy = RetryPolicy(max_attempts=2, backoff_s=0.01, max_backoff_s=0.01, deadline_s=5)
    async with http_server(recording_app([], [(500, {}), (500, {})])) as base, aiohttp.ClientSession() as session:
        for target_route in (route("slack", IncomingWebhookTarget(base + token_url_path)),
                             route("webhook", WebhookTarget(base + "/h?token=SecretToken123", SECRET))):
            outcome = await deliver_with_retries(lambda: send_alert(target_route, make_alert(), session, 2), policy,
                                                 RateLimiter(100))
            logging.getLogger("streams.notify").error("route %r: %s", target_route, outcome)
            await send_alert(target_route, make_alert(), session, 2)
    with smtp_server(tls_files, implicit_tls=False) as (_, port):
        await send_alert(mail_route(port, "starttls", tls_files[0]), make_alert(), None, 10)
        with pytest.raises(DeliveryError) as refused:
            await send_alert(mail_route(port, "starttls", tls_files[0], password=PASSWORD + "x"), make_alert(), None, 10)
        logging.getLogger("streams.notify").error("%s", refused.value.detail)
    logged = caplog.text  # the SMTP server logs too; it masks AUTH, as it should
    assert "attempts_exhausted" in logged and "refused the login" in logged
    for secret in (SECRET, PASSWORD, "SecretToken123"):
        assert secret not in logged
