"""Kafka connection options shared by the Faust app and the plain aiokafka clients (replay, demo, tests).

One place turns ``Settings`` into TLS/SASL options so every client reaches the same cluster the same way.
"""
from __future__ import annotations

import logging
import ssl
from typing import Any

import faust

from .settings import Settings

_PROTOCOLS = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
    if settings.ssl_certfile:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile or None)
    return context


def _check_protocol(settings: Settings) -> None:
    if settings.security_protocol not in _PROTOCOLS:
        raise ValueError(
            f"ASCOLTA_SECURITY_PROTOCOL must be one of {sorted(_PROTOCOLS)}, got {settings.security_protocol!r}"
        )


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Credentials for ``faust.App(broker_credentials=...)``; None for PLAINTEXT."""
    _check_protocol(settings)
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(settings))
    return faust.SASLCredentials(
        username=settings.sasl_username,
        password=settings.sasl_password,
        mechanism=settings.sasl_mechanism,
        ssl_context=_ssl_context(settings) if protocol == "SASL_SSL" else None,
    )


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaProducer``/``AIOKafkaConsumer`` matching the worker's connection."""
    _check_protocol(settings)
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in {"SSL", "SASL_SSL"}:
        options["ssl_context"] = _ssl_context(settings)
    if settings.security_protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password,
        )
    return options


async def resolve_raw_topic_pattern(settings: Settings) -> Settings:
    """``settings`` with ``ASCOLTA_RAW_TOPIC_PATTERN`` turned into the explicit list of matching topics.

    ``app.topic(pattern=...)`` never reached the consumer's subscription (measured with faust-streaming
    0.15.3 on the embedded broker: the worker subscribed to no raw topic; not checked on Apache Kafka), so
    the pattern is matched against the broker's topics when the worker starts; a topic created later is
    picked up by the next (rolling) restart.
    """
    import dataclasses
    import re

    from aiokafka.admin import AIOKafkaAdminClient

    if not settings.raw_topic_pattern:
        return settings
    pattern = re.compile(settings.raw_topic_pattern)
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        matching = sorted(t for t in await admin.list_topics() if pattern.fullmatch(t))
    finally:
        await admin.close()
    if not matching:
        raise ValueError(f"no topic matches ASCOLTA_RAW_TOPIC_PATTERN={settings.raw_topic_pattern!r}")
    logging.getLogger(__name__).info("raw topics matching %r: %s", settings.raw_topic_pattern, ", ".join(matching))
    return dataclasses.replace(settings, raw_topics=tuple(matching), raw_topic_pattern="")
