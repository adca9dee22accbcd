"""Microsoft Teams: an Adaptive Card (1.4) in the ``message`` envelope that incoming webhooks and Workflows
accept. Public text is backslash-escaped, so it cannot add Markdown links or formatting."""
from __future__ import annotations

import re
from urllib.parse import quote

from ..render import summarise
from .base import IncomingWebhookChannel

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
        body.append({"type": "TextBlock", "text": teams_escape(s.samples_heading), "weight": "Bolder",
                     "wrap": True, "spacing": "Medium"})
        for sample in s.samples:
            who = teams_escape(sample.author)
            if sample.url:
                who = f"[{who}]({quote(sample.url, safe=':/?&=%#@+,;~!$*')})"
            body.append({"type": "TextBlock", "text": f"{who}: “{teams_escape(sample.text)}”", "wrap": True})
    if s.stories:
        body.append({"type": "TextBlock", "text": teams_escape(s.stories_heading), "weight": "Bolder",
                     "wrap": True, "spacing": "Medium"})
        for story in s.stories:
            body.append({"type": "TextBlock", "text": f"“{teams_escape(story.text)}”", "wrap": True})
            body.append({"type": "TextBlock", "text": teams_escape(story.figures), "isSubtle": True, "wrap": True,
                         "spacing": "None"})
    body.append({"type": "TextBlock", "text": teams_escape(s.footer), "isSubtle": True, "size": "Small", "wrap": True})
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "msteams": {"width": "Full"}, "body": body}
    return {"type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                             "content": card}]}


class TeamsChannel(IncomingWebhookChannel):
    name = "teams"

    def render(self, alert: dict, lang: str) -> dict:
        return teams_message(alert, lang)
