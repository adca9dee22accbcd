"""Text helpers shared by ingest and the stages after it: invisible characters, brand names, language codes.

Brand names come from outside and become table keys, metric labels and alert titles, so one brand must have
one spelling: the same name typed with a decomposed accent, a zero-width space or doubled spaces is the same
brand, and a name made only of invisible characters is no brand at all.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

# Characters that take no space and show nothing, beyond Unicode's format (Cf) and control (Cc) categories:
# variation selectors, the combining grapheme joiner, Hangul fillers and the blank Braille pattern, all of
# which render as nothing (or as blank) yet make a string look non-empty.
_BLANK_LETTERS = frozenset("\u034f\u115f\u1160\u3164\uffa0\u2800")
_WHITESPACE_RUN = re.compile(r"\s+")

# ISO 639-1, the two-letter codes a language hint may carry ('zz' or 'qq' are none).
ISO_639_1 = frozenset(
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz "
    "ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik "
    "io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml "
    "mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd "
    "se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi "
    "vo wa wo xh yi yo za zh zu".split()
)


def is_invisible(ch: str) -> bool:
    """True for a character that shows nothing on its own: controls, format characters (zero-width
    spaces and joiners, bidi marks and overrides, the BOM, tags), variation selectors, blank letters."""
    return (unicodedata.category(ch) in {"Cc", "Cf"} or ch in _BLANK_LETTERS
            or "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef")


def has_visible(text: str) -> bool:
    """Whether anything in ``text`` would show: a text of only whitespace and invisible characters is empty."""
    return any(not ch.isspace() and not is_invisible(ch) for ch in text)


def normalise_brand(name: str) -> str:
    """NFC, invisible characters removed, whitespace runs collapsed to one space, ends stripped; case kept
    for display. '' means the name held nothing visible."""
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if ch.isspace() or not is_invisible(ch))
    return _WHITESPACE_RUN.sub(" ", name).strip()


def brand_key(name: str) -> str:
    """The identity of a brand: its normalised name case-folded, so 'ACME', 'Acme' and 'acme' are one brand."""
    return unicodedata.normalize("NFC", normalise_brand(name).casefold())


def brand_allow_list(spec: str) -> dict[str, str] | None:
    """ASCOLTA_BRANDS as {brand key: display name}: a comma-separated list, or '@/path' to a file with one
    brand per line ('#' starts a comment). None when ``spec`` is empty: every brand is accepted."""
    spec = spec.strip()
    if not spec:
        return None
    if spec.startswith("@"):
        path = Path(spec[1:])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise ValueError(f"ASCOLTA_BRANDS: cannot read the brand list {str(path)!r}: {error}") from None
        names = [line.split("#", 1)[0] for line in lines]
    else:
        names = spec.split(",")
    allowed = {brand_key(name): normalise_brand(name) for name in names if normalise_brand(name)}
    if not allowed:
        raise ValueError(f"ASCOLTA_BRANDS names no brand: {spec!r}")
    return allowed
