"""The words of a mention that survive copying, and the keys under which its copies are found.

A retweet, a syndicated article or a truncated repost differs from its original only in what copying adds
or cuts: an "RT @user:" prefix, links, @handles, hashtags, emoji, an outlet suffix (" - Reuters",
" | BBC News"), a "…" where the text was cut. :func:`signature` removes exactly those, so copies share all
their words, or, when one was cut short, their first ``KEY_TOKENS`` words; they are found by a dictionary
lookup, never by a scan of the brand's history. Two different posts that merely open alike (templates,
"Just landed in ...") are not copies: first words count only against a truncated text.
"""
from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass

import numpy as np

from ..stopwords import stop_words

MAX_TEXT_CHARS = 4000  # a long article is matched on its opening; bounds the work per mention
LEXICAL_DIM = 256  # hashed term buckets of a story's lexical centroid
KEY_TOKENS = 6  # a copy shares this many leading (or trailing) words with its original
OUTLET_WORDS = 5  # a trailing " - Name" of at most this many words is an outlet suffix

_RETWEET = re.compile(r"^\s*(?:rt|mt)\s*@\w+\s*:?\s*", re.IGNORECASE)
_QUOTED_RETWEET = re.compile(r"\b(?:rt|mt)\s*@\w+\s*:\s*", re.IGNORECASE)
_URL = re.compile(r"(?:https?://|www\.)\S*")
_HANDLE = re.compile(r"(?<![\w@])[@＠]\w+")
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_VIA = re.compile(r"\(?\bvia\s+@\w+\)?\s*$", re.IGNORECASE)
_OUTLET = re.compile(r"\s+[-–—|]\s+([^-–—|]+)$")
_TRUNCATED = re.compile(r"(?:…|\.\.\.+)\s*$")
WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Signature:
    """``tokens``: the copy-stable words; ``quoted``: the signature of a post quoted after "RT @x:" with a comment
    before it (a quote is the same story, not a copy); ``truncated``: the text ended in an ellipsis."""

    tokens: tuple[str, ...]
    quoted: Signature | None
    truncated: bool
    raw_key: str  # identical texts (emoji-only ones included) are copies whatever their words
    tags: tuple[str, ...] = ()  # hashtag words: no part of a copy's identity, much of its topic

    def keys(self) -> list[str]:
        """Where this text is filed for its copies to find: the raw text, its words, and its first ``KEY_TOKENS``
        words, marked "H" when the text was cut short and "h" when not (see :meth:`lookups`)."""
        keys = [self.raw_key]
        if self.tokens:
            keys.append("w" + _hash(self.tokens))
        if len(self.tokens) >= KEY_TOKENS:
            keys.append(("H" if self.truncated else "h") + _hash(self.tokens[:KEY_TOKENS]))
        return keys

    def lookups(self) -> list[str]:
        """The keys under which an earlier original of this text may be filed, most specific first. First words
        prove a copy only when one side was cut short: a truncated text looks for both marks, a whole one only
        for a truncated original."""
        keys = self.keys()
        if len(self.tokens) >= KEY_TOKENS:
            head = _hash(self.tokens[:KEY_TOKENS])
            keys = keys[:-1] + (["h" + head, "H" + head] if self.truncated else ["H" + head])
        return keys

    @property
    def words(self) -> int:
        return len(self.tokens) + (self.quoted.words if self.quoted else 0)

    def terms(self) -> set[str]:
        """Content words and hashtag words, the quoted post's included: what :func:`lexical` hashes."""
        stops = stop_words()
        words = {w for w in (*self.tokens, *self.tags) if len(w) > 2 and not w.isdigit() and w not in stops}
        return words | (self.quoted.terms() if self.quoted else set())


def lexical(sig: Signature, leave_out: frozenset[str] = frozenset(), dim: int = LEXICAL_DIM) -> np.ndarray:
    """The signature's terms (but ``leave_out``) hashed into ``dim`` buckets, L2-normalised: cosine = shared-term
    overlap."""
    vector = np.zeros(dim, np.float32)
    for term in sig.terms() - leave_out:
        vector[zlib.crc32(term.encode("utf-8")) % dim] = 1.0
    norm = float(np.sqrt(vector @ vector))
    return vector / norm if norm else vector


def _hash(tokens: tuple[str, ...]) -> str:
    return format(zlib.crc32(" ".join(tokens).encode("utf-8")) & 0xFFFFFFFF, "08x") + str(len(tokens) % 10)


def _words(text: str) -> tuple[str, ...]:
    text = _URL.sub(" ", text)
    text = _HASHTAG.sub(" ", _HANDLE.sub(" ", text))
    return tuple(WORD.findall(text))


def signature(text: str) -> Signature:
    """The copy-stable form of ``text`` (see the module doc); bounded work for any length."""
    text = unicodedata.normalize("NFKC", text[:MAX_TEXT_CHARS]).casefold()
    raw_key = "r" + format(zlib.crc32(" ".join(text.split()).encode("utf-8")) & 0xFFFFFFFF, "08x")
    quoted = None
    stripped = _RETWEET.sub("", text, count=1)
    while stripped != text:  # "RT @a: RT @b: ..." nests
        text, stripped = stripped, _RETWEET.sub("", stripped, count=1)
    match = _QUOTED_RETWEET.search(text)
    if match:  # "comment RT @x: original": the original's words decide its story
        quoted = signature(text[match.end():])
        text = text[: match.start()]
    text = _VIA.sub("", _URL.sub(" ", text)).rstrip()
    truncated = bool(_TRUNCATED.search(text))
    text = _TRUNCATED.sub("", text)
    outlet = _OUTLET.search(text)
    if outlet and len(WORD.findall(outlet.group(1))) <= OUTLET_WORDS and len(_words(text[: outlet.start()])) >= KEY_TOKENS:
        text = text[: outlet.start()]
    tags = tuple(tag[1:] for tag in _HASHTAG.findall(text))
    tokens = _words(text)
    if truncated and tokens:
        tokens = tokens[:-1]  # the last word may be cut mid-way
    return Signature(tokens=tokens, quoted=quoted, truncated=truncated, raw_key=raw_key, tags=tags)
