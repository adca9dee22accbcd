"""The channel registry: a route's ``channel`` names one of these. A new channel is one module here (a
:class:`~streams.alerting.channels.base.Channel` subclass) plus one line in :data:`CHANNELS`."""
from __future__ import annotations

from .base import Channel
from .email import EmailChannel
from .slack import SlackChannel
from .teams import TeamsChannel
from .webhook import WebhookChannel

CHANNELS: dict[str, Channel] = {
    channel.name: channel
    for channel in (
        SlackChannel(),
        TeamsChannel(),
        EmailChannel(),
        WebhookChannel(),
    )
}
