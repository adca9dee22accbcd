"""Multilingual stop words, shipped as plain-text data under ``streams/assets/stopwords/``.

Mentions mix languages and short texts are often mis-detected, so callers use the union of all lists
rather than the list of the detected language. The lists leave out words that are content words in
another supported language (German "war", "hat") so that the union doesn't hide real topics.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib.resources import files

LANGUAGES = ("en", "it", "es", "fr", "de", "pt", "social")


def _read_list(name: str) -> frozenset[str]:
    text = files("streams").joinpath("assets", "stopwords", f"{name}.txt").read_text(encoding="utf-8")
    words = (
        word
        for line in text.splitlines()
        if not line.lstrip().startswith("#")
        for word in line.split()
    )
    return frozenset(unicodedata.normalize("NFC", word.lower()) for word in words)


@lru_cache(maxsize=None)
def stop_words(languages: tuple[str, ...] = LANGUAGES) -> frozenset[str]:
    """The union of the stop-word lists of ``languages`` (all shipped lists by default)."""
    unknown = set(languages) - set(LANGUAGES)
    if unknown:
        raise ValueError(f"no stop-word list for {sorted(unknown)}; available: {list(LANGUAGES)}")
    return frozenset().union(*(_read_list(name) for name in languages))
