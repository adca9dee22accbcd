"""Slack: a Block Kit message to an incoming webhook, with a plain ``text`` fallback for notifications.

Public text is escaped as Slack's mrkdwn requires (``&``, ``<``, ``>``), so a tweet's ``<!channel>``,
``<@U…>`` or fake ``<url|label>`` link stays text.
"""
from __future__ import annotations

from ..render import summarise
from .base import IncomingWebhookChannel

SLACK_LINK_CHARS = 1500  # with a 280-character quote and the heading, well within a section's 3000


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
        heading = f"*{slack_escape(s.samples_heading)}*\n" if index == 0 else ""
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"{heading}• {who}: “{slack_escape(sample.text)}”"}})
    for index, story in enumerate(s.stories):
        heading = f"*{slack_escape(s.stories_heading)}*\n" if index == 0 else ""
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text":
                       f"{heading}• “{slack_escape(story.text)}”\n_{slack_escape(story.figures)}_"}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(s.footer)}]})
    return {"text": f"{emoji} {slack_escape(s.title)}", "blocks": blocks}


class SlackChannel(IncomingWebhookChannel):
    name = "slack"

    def render(self, alert: dict, lang: str) -> dict:
        return slack_message(alert, lang)
