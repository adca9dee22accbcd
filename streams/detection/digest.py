"""What the mentions of a bucket were about, and who said it: the material of every alert's explanation.

A PR team reading an alert needs more than "volume is 8x normal": which new words appeared, in which
languages and channels, and which posts to read first. Detection keeps one :class:`BucketDigest` per
brand and time bucket (stored as JSON in a changelogged table, so its size is bounded whatever the
traffic) and a long-run :class:`TermBaseline` per brand; :mod:`streams.detection.alert` turns them into
the alert's ``explanation``.

Stories (:mod:`streams.stories`, the enriched record's ``story``) make the evidence count people and posts, not
copies: a digest counts unique stories and unique authors (k-minimum-values sketches, exact up to ``SKETCH_K``),
keeps its largest stories (Space-Saving, ``MAX_STORIES``) with copies, authors, reach, languages, tone and first
appearance, quotes one sample per story, and weighs copies down in the detector's input
(:meth:`BucketDigest.evidence`): a story's ``c`` copies in a bucket count as ``log2(1 + c)`` mentions, so 500
bot copies of one post weigh like 9 people, not 500. Mentions without a story (``ascolta detect`` on volume
rows or on mentions enriched before stories) count in full, as before.

Term counts are document frequencies (a mention counts once per term), so one spammy post repeating a
word cannot dominate. They are kept with Filtered Space-Saving (Metwally et al. 2005; Homem and Carvalho
2010): at most ``max_terms`` counters, each with an error bound, plus a small array of hashed counters that
bounds every other term. A term that becomes frequent late in a bucket still enters the digest, one-off
words don't push out the real topics, and every count shown is a guaranteed lower bound.
"""
from __future__ import annotations

import math
import re
import unicodedata
import zlib
from typing import Iterable

from ..stopwords import stop_words

DIGEST_VERSION = 1
BASELINE_VERSION = 1
MAX_TERMS = 64  # terms kept per digest: bounds the state whatever the bucket's traffic
OVERFLOW_SLOTS = 256  # hashed counters bounding the terms a digest doesn't hold (Filtered Space-Saving)
MAX_BASELINE_TERMS = 512
BASELINE_HALF_LIFE_BUCKETS = 2016.0  # one week of five-minute buckets
SAMPLES_PER_LIST = 3
SNIPPET_CHARS = 280
MAX_TOKEN_CHARS = 40  # longer "words" are unsegmented scripts (CJK) or junk, never a readable term
MAX_COUNTER_KEYS = 32  # languages and sources per digest; the rest count under OVERFLOW_KEY
OVERFLOW_KEY = "other"
MAX_ID_CHARS = 256
MAX_AUTHOR_CHARS = 100
MAX_URL_CHARS = 1024  # a longer URL is dropped from the sample rather than cut into a broken link
MAX_KEY_CHARS = 16  # language codes and source names are short; this only bounds malformed input
TOP_TERMS = 8
MIN_TERM_COUNT = 2
MIN_LIFT = 1.5  # "over-represented": at least half again as frequent as usual, not noise around 1
LIFT_PSEUDO_COUNT = 2.0  # added to observed and expected counts, so a term seen once cannot win
PRIOR_SHARE = 0.001  # share of mentions assumed for a term the baseline never saw
PRIOR_WEIGHT = 1.0  # in mentions: how much that assumption weighs against real baseline data
MAX_STORIES = 16  # stories tracked per digest (Space-Saving): the largest ones are what an alert lists
SKETCH_K = 64  # k-minimum-values sketch size: unique counts exact up to this, within about 13% beyond
STORY_SKETCH_K = 32
TOP_STORIES = 5
SAMPLE_SCORE_DECIMALS = 4
MIN_STORY_MENTIONS = 2  # a story told once is no story an alert lists
HASH_SPACE = float(1 << 32)


def _mark_ranges() -> str:
    """Regex class body for Unicode combining marks, which ``\\w`` lacks (Devanagari vowel signs...)."""
    ranges: list[tuple[int, int]] = []
    codes = [*range(0x300, 0x20000), *range(0xE0100, 0xE01F0)]  # no marks elsewhere; scanning all costs 90 ms
    for code in codes:
        if unicodedata.category(chr(code))[0] != "M":
            continue
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" if a != b else re.escape(chr(a)) for a, b in ranges)


_URL = re.compile(r"(?:https?://|www\.)\S+")
_HANDLE = re.compile(r"(?<![\w@])@\w+")
_TOKEN = re.compile(rf"#?[\w{_mark_ranges()}]+")
_NOT_PRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")
_NOT_A_URL = re.compile(rf"\s|{_NOT_PRINTABLE.pattern}")


def tokenize(text: str) -> list[str]:
    """Terms of a mention, in order: lower-cased words and hashtags, without URLs, handles, numbers,
    one-character tokens and stop words of any shipped language."""
    text = unicodedata.normalize("NFC", text).lower()
    if "://" in text or "www." in text:  # what every URL starts with (_URL): most mentions have none
        text = _URL.sub(" ", text)
    if "@" in text:
        text = _HANDLE.sub(" ", text)
    stops = stop_words()
    terms = []
    for token in _TOKEN.findall(text):
        hashtag = token[0] == "#"
        word = token[1:] if hashtag else token
        if not 2 <= len(word) <= MAX_TOKEN_CHARS or (not hashtag and word in stops):
            continue
        letters = word.replace("_", "")
        if letters and not letters.isdigit():
            terms.append(token)
    return terms


def clean_text(text: str) -> str:
    """One line of text safe for a terminal: no control or bidi-override characters, single spaces."""
    if text.isprintable() and "  " not in text:  # most texts: nothing to replace (the only printable space is " ")
        return text.strip()
    return _SPACES.sub(" ", _NOT_PRINTABLE.sub(" ", text)).strip()


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, with an ellipsis when cut."""
    text = clean_text(text)
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    cut = head.rfind(" ")
    if cut >= limit // 2:  # a word boundary not too far back; otherwise cut the long "word" itself
        head = head[:cut]
    return head.rstrip() + "…"


def mention_reach(mention: dict) -> float:
    """How many people a mention could reach: its own reach, else its author's followers, else 0."""
    reach = mention.get("reach")
    if reach is None:
        reach = (mention.get("author") or {}).get("followers")
    return float(reach or 0)


def make_sample(mention: dict) -> dict:
    """A mention quoted as evidence in an alert (the schema's ``sample``), bounded in size; ``story`` says
    which story it stands for, so an alert quotes one mention per story."""
    author = mention.get("author") or {}
    handle = author.get("handle")
    who = "@" + handle.lstrip("@") if handle else str(author.get("id", ""))
    sample = {
        "id": str(mention["id"])[:MAX_ID_CHARS],
        "author": clean_text(who)[:MAX_AUTHOR_CHARS],
        "text": snippet(mention.get("text", "")),
        "reach": mention_reach(mention),
        # to 4 decimals: the model's last digits move with the batch a text was scored in (measured 6e-9), and
        # neither the alert nor which sample it quotes may depend on how many workers scored the brand
        "score": round(float(mention["sentiment"]["score"]), SAMPLE_SCORE_DECIMALS),
    }
    url = mention.get("url")
    if isinstance(url, str) and 0 < len(url) <= MAX_URL_CHARS and not _NOT_A_URL.search(url):
        sample["url"] = url
    story = story_of(mention)
    if story is not None:
        sample["story"] = story["id"]
    return sample


def story_of(mention: dict) -> dict | None:
    """The mention's ``story`` object when it has a usable one (ids bounded like every other key)."""
    story = mention.get("story")
    if isinstance(story, dict) and isinstance(story.get("id"), str) and story["id"]:
        return {"id": story["id"][:MAX_ID_CHARS], "is_copy": story.get("is_copy") is True}
    return None


def _hash32(value: str) -> int:
    return zlib.crc32(value.encode("utf-8", "replace")) & 0xFFFFFFFF


def sketch_add(sketch: list[int], value: str, k: int) -> list[int]:
    """Add ``value`` to a k-minimum-values sketch (sorted list of the ``k`` smallest hashes seen)."""
    return sketch_merge(sketch, [_hash32(value)], k)


def sketch_merge(a: list[int], b: list[int], k: int) -> list[int]:
    return sorted(set(a) | set(b))[:k]


def sketch_count(sketch: list[int], k: int) -> int:
    """Distinct values behind a sketch: exact below ``k``, the KMV estimate (k - 1) / kth-hash beyond."""
    if len(sketch) < k:
        return len(sketch)
    return max(k, round((k - 1) / ((sketch[-1] + 1) / HASH_SPACE)))


def author_key(mention: dict) -> str:
    author = mention.get("author") or {}
    return str(author.get("id") or author.get("handle") or "")


def _new_story(mention: dict) -> dict:
    author = mention.get("author") or {}
    handle = author.get("handle")
    return {"count": 0, "error": 0, "copies": 0, "copies_negative": 0, "copies_positive": 0, "negative": 0,
            "reach": 0.0, "languages": {}, "authors": [],
            "first_at": str(mention.get("created_at", ""))[:40],
            "first_by": clean_text("@" + handle.lstrip("@") if handle else str(author.get("id", "")))[:MAX_AUTHOR_CHARS],
            "sample": None}


def _most_reached_key(sample: dict) -> tuple:
    return (-sample["reach"], sample["score"], sample["id"])


def _most_negative_key(sample: dict) -> tuple:
    return (sample["score"], -sample["reach"], sample["id"])


def _top_samples(samples: Iterable[dict], key) -> list[dict]:
    """The best ``SAMPLES_PER_LIST`` by ``key``, one per story (one per mention where there is no story)."""
    chosen: dict[str, dict] = {}
    for sample in sorted(samples, key=key):
        chosen.setdefault(sample.get("story") or sample["id"], sample)
        if len(chosen) == SAMPLES_PER_LIST:
            break
    return list(chosen.values())


def _slot(term: str, slots: int) -> int:
    """A term's overflow slot; crc32 rather than hash() so it is the same in every process."""
    return zlib.crc32(term.encode("utf-8")) % slots


def _bump(counter: dict[str, int], key: str, amount: int = 1) -> None:
    key = key[:MAX_KEY_CHARS]
    if key not in counter and len(counter) >= MAX_COUNTER_KEYS:
        key = OVERFLOW_KEY
    counter[key] = counter.get(key, 0) + amount


def by_count(counter: dict[str, int]) -> dict[str, int]:
    if len(counter) < 2:  # a bucket's languages and sources, mostly
        return dict(counter)
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


class BucketDigest:
    """One brand's enriched mentions in one time bucket, summarised in bounded space.

    Keeps counts per sentiment label, summed reach, languages and sources, the ``max_terms`` most frequent
    terms (counters ``[count, error]``: ``count`` is an upper and ``count - error`` a guaranteed lower bound
    on the mentions containing the term), and the three most-reached and three most-negative mentions.
    """

    def __init__(self, max_terms: int = MAX_TERMS, overflow_slots: int = OVERFLOW_SLOTS):
        self.max_terms = max_terms
        self.count = 0
        self.negative = 0
        self.neutral = 0
        self.positive = 0
        self.reach = 0.0
        self.negative_reach = 0.0  # the most-reached negative mention's reach (the detector's reach watch)
        self.languages: dict[str, int] = {}
        self.sources: dict[str, int] = {}
        self.terms: dict[str, list[int]] = {}
        self.overflow = [0] * overflow_slots  # per hash slot: upper bound on any term not held
        self.most_reached: list[dict] = []
        self.most_negative: list[dict] = []
        self.copies = 0
        self.storied = 0  # mentions that came with a story
        self.authors: list[int] = []  # KMV sketches
        self.story_ids: list[int] = []
        self.stories: dict[str, dict] = {}  # story id -> its counts here (Space-Saving over MAX_STORIES)

    def add(self, mention: dict) -> None:
        """Count one enriched mention (a dict shaped like ``schemas/mention.enriched.v1.json``).

        A mention without ``sentiment`` (``ascolta detect`` on raw mentions) counts towards volume, reach,
        languages, sources and terms, not towards any label, and is never quoted as a sample."""
        sentiment = mention.get("sentiment")
        label = sentiment["label"] if sentiment else None
        self.count += 1
        if label == "negative":
            self.negative += 1
        elif label == "positive":
            self.positive += 1
        elif label is not None:
            self.neutral += 1
        self.reach += mention_reach(mention)
        _bump(self.languages, str(mention.get("language") or "und"))
        _bump(self.sources, str(mention.get("source") or "other"))
        for term in dict.fromkeys(tokenize(mention.get("text", ""))):  # once per mention, in a stable order
            self._count_term(term)
        self.authors = sketch_add(self.authors, author_key(mention), SKETCH_K)
        story = story_of(mention)
        if story is not None:
            self._count_story(story, mention, label)
        if label is None:
            return
        sample = make_sample(mention)
        self.most_reached = _top_samples([*self.most_reached, sample], _most_reached_key)
        if label == "negative":
            self.most_negative = _top_samples([*self.most_negative, sample], _most_negative_key)
            self.negative_reach = max(self.negative_reach, sample["reach"])

    def _count_story(self, story: dict, mention: dict, label: str | None) -> None:
        self.storied += 1
        self.copies += story["is_copy"]
        self.story_ids = sketch_add(self.story_ids, story["id"], SKETCH_K)
        entry = self.stories.get(story["id"])
        if entry is None:
            entry = _new_story(mention)
            if len(self.stories) >= MAX_STORIES:  # Space-Saving: the newcomer inherits the smallest count
                victim = min(self.stories, key=lambda sid: (self.stories[sid]["count"], sid))
                floor = self.stories.pop(victim)["count"]
                entry["count"] = entry["error"] = floor
            self.stories[story["id"]] = entry
        entry["count"] += 1
        entry["reach"] += mention_reach(mention)
        _bump(entry["languages"], str(mention.get("language") or "und"))
        entry["authors"] = sketch_add(entry["authors"], author_key(mention), STORY_SKETCH_K)
        if label == "negative":
            entry["negative"] += 1
        if story["is_copy"]:
            entry["copies"] += 1
            entry["copies_negative"] += label == "negative"
            entry["copies_positive"] += label == "positive"
        if label is not None:
            candidate = make_sample(mention)
            if entry["sample"] is None or _most_reached_key(candidate) < _most_reached_key(entry["sample"]):
                entry["sample"] = candidate

    def evidence(self) -> tuple[int, int, int]:
        """(mentions, negative, positive) as the detector should weigh them: each tracked story's ``c`` copies
        count as ``log2(1 + c)`` mentions, tone scaled alike; everything else counts in full."""
        count, negative, positive = float(self.count), float(self.negative), float(self.positive)
        for entry in self.stories.values():
            copies = entry["copies"]
            if copies:
                weight = math.log2(1 + copies) / copies
                count -= copies * (1 - weight)
                negative -= entry["copies_negative"] * (1 - weight)
                positive -= entry["copies_positive"] * (1 - weight)
        count = round(count)
        negative = min(round(negative), count)
        return count, negative, min(round(positive), count - negative)

    @property
    def unique_authors(self) -> int:
        return sketch_count(self.authors, SKETCH_K)

    @property
    def unique_stories(self) -> int:
        return sketch_count(self.story_ids, SKETCH_K)

    def top_stories(self, limit: int = TOP_STORIES) -> list[dict]:
        """The largest stories (told at least ``MIN_STORY_MENTIONS`` times), as an alert's ``top_stories``."""
        ranked = sorted(self.stories.items(), key=lambda item: (-item[1]["count"], item[1]["first_at"], item[0]))
        top = []
        for sid, entry in ranked:
            if entry["count"] - entry["error"] < MIN_STORY_MENTIONS or entry["sample"] is None:
                continue
            top.append({
                "id": sid, "text": entry["sample"]["text"], "sample": entry["sample"],
                "mentions": entry["count"] - entry["error"], "copies": entry["copies"],
                "unique_authors": sketch_count(entry["authors"], STORY_SKETCH_K), "reach": round(entry["reach"], 1),
                "languages": by_count(entry["languages"]), "first_seen_at": entry["first_at"],
                "first_by": entry["first_by"],
                "negative_share": round(entry["negative"] / entry["count"], 4) if entry["count"] else 0.0,
            })
            if len(top) == limit:
                break
        return top

    def _count_term(self, term: str) -> None:
        entry = self.terms.get(term)
        if entry is not None:
            entry[0] += 1
        elif len(self.terms) < self.max_terms:
            self.terms[term] = [1, 0]
        else:
            self._count_unmonitored(term)

    def _count_unmonitored(self, term: str) -> None:
        """Filtered Space-Saving: a new term takes over the smallest counter only once its hash slot says
        it may be more frequent than that counter, so one-off words don't churn out the real topics."""
        slot = _slot(term, len(self.overflow))
        self.overflow[slot] += 1
        victim = min(self.terms, key=lambda t: (self.terms[t][0], t))
        if self.overflow[slot] > self.terms[victim][0]:
            self._evict(victim)
            self.terms[term] = [self.overflow[slot], self.overflow[slot] - 1]

    def _evict(self, term: str) -> None:
        count, _ = self.terms.pop(term)
        slot = _slot(term, len(self.overflow))
        self.overflow[slot] = max(self.overflow[slot], count)

    @property
    def labelled(self) -> int:
        """Mentions with a sentiment label (all of them in the stream, which scores every mention)."""
        return self.negative + self.neutral + self.positive

    def term_counts(self) -> dict[str, int]:
        """Guaranteed (lower-bound) mention counts of the terms held, most frequent first."""
        return by_count({term: count - error for term, (count, error) in self.terms.items()})

    def merge(self, other: BucketDigest) -> BucketDigest:
        """Add ``other`` into this digest (e.g. the buckets of one incident) and return self."""
        self.count += other.count
        self.negative += other.negative
        self.neutral += other.neutral
        self.positive += other.positive
        self.reach += other.reach
        self.negative_reach = max(self.negative_reach, other.negative_reach)
        for key, amount in other.languages.items():
            _bump(self.languages, key, amount)
        for key, amount in other.sources.items():
            _bump(self.sources, key, amount)
        slots = len(self.overflow)
        if len(other.overflow) != slots:
            raise ValueError(f"cannot merge digests with {slots} and {len(other.overflow)} overflow slots")
        merged = {}
        for term in {**self.terms, **other.terms}:  # a term one side doesn't hold may have had its slot's count
            upper = self.overflow[_slot(term, slots)]
            count_a, error_a = self.terms.get(term, (upper, upper))
            upper = other.overflow[_slot(term, slots)]
            count_b, error_b = other.terms.get(term, (upper, upper))
            merged[term] = [count_a + count_b, error_a + error_b]
        self.overflow = [mine + theirs for mine, theirs in zip(self.overflow, other.overflow)]
        ranked = sorted(merged, key=lambda t: (-merged[t][0], t))
        self.terms = {term: merged[term] for term in ranked[: self.max_terms]}
        for term in ranked[self.max_terms :]:
            slot = _slot(term, slots)
            self.overflow[slot] = max(self.overflow[slot], merged[term][0])
        self.most_reached = _top_samples([*self.most_reached, *other.most_reached], _most_reached_key)
        self.most_negative = _top_samples([*self.most_negative, *other.most_negative], _most_negative_key)
        self.copies += other.copies
        self.storied += other.storied
        self.authors = sketch_merge(self.authors, other.authors, SKETCH_K)
        self.story_ids = sketch_merge(self.story_ids, other.story_ids, SKETCH_K)
        self._merge_stories(other.stories)
        return self

    def _merge_stories(self, others: dict[str, dict]) -> None:
        merged = {sid: dict(entry) for sid, entry in self.stories.items()}
        for sid, theirs in others.items():
            mine = merged.get(sid)
            if mine is None:
                merged[sid] = dict(theirs, languages=dict(theirs["languages"]))
                continue
            for name in ("count", "error", "copies", "copies_negative", "copies_positive", "negative", "reach"):
                mine[name] += theirs[name]
            mine["languages"] = dict(mine["languages"])
            for key, amount in theirs["languages"].items():
                _bump(mine["languages"], key, amount)
            mine["authors"] = sketch_merge(mine["authors"], theirs["authors"], STORY_SKETCH_K)
            if theirs["first_at"] < mine["first_at"]:
                mine["first_at"], mine["first_by"] = theirs["first_at"], theirs["first_by"]
            if mine["sample"] is None or (theirs["sample"] is not None and
                                          _most_reached_key(theirs["sample"]) < _most_reached_key(mine["sample"])):
                mine["sample"] = theirs["sample"]
        ranked = sorted(merged, key=lambda sid: (-merged[sid]["count"], sid))
        self.stories = {sid: merged[sid] for sid in ranked[:MAX_STORIES]}

    def to_dict(self) -> dict:
        """JSON-safe state; restoring it with :meth:`from_dict` continues identically."""
        return {
            "version": DIGEST_VERSION,
            "count": self.count,
            "negative": self.negative,
            "neutral": self.neutral,
            "positive": self.positive,
            "reach": self.reach,
            "negative_reach": self.negative_reach,
            "languages": by_count(self.languages),
            "sources": by_count(self.sources),
            "terms": {term: list(self.terms[term]) for term in self._ranked_terms()},
            "overflow": list(self.overflow) if any(self.overflow) else [],  # quiet buckets never overflow
            "most_reached": [dict(s) for s in self.most_reached],
            "most_negative": [dict(s) for s in self.most_negative],
            "copies": self.copies,
            "storied": self.storied,
            "authors": list(self.authors),
            "story_ids": list(self.story_ids),
            "stories": {sid: dict(entry) for sid, entry in self.stories.items()},
        }

    def _ranked_terms(self) -> list[str]:
        """The terms held, most counted first, then by term."""
        ranked = sorted(self.terms)  # by term, then (a stable sort) by count
        ranked.sort(key=lambda term: self.terms[term][0], reverse=True)
        return ranked

    @classmethod
    def from_dict(cls, data: dict, max_terms: int = MAX_TERMS, overflow_slots: int = OVERFLOW_SLOTS) -> BucketDigest:
        """Restore :meth:`to_dict` output (raises ValueError for another state version)."""
        if data.get("version") != DIGEST_VERSION:
            raise ValueError(f"unsupported BucketDigest state version {data.get('version')!r}, expected {DIGEST_VERSION}")
        digest = cls(max_terms, overflow_slots)
        digest.count = int(data["count"])
        digest.negative = int(data["negative"])
        digest.neutral = int(data["neutral"])
        digest.positive = int(data["positive"])
        digest.reach = float(data["reach"])
        digest.negative_reach = float(data.get("negative_reach", 0.0))  # absent from states saved before it
        digest.languages = dict(data["languages"])
        digest.sources = dict(data["sources"])
        digest.terms = {term: [int(count), int(error)] for term, (count, error) in data["terms"].items()}
        if data["overflow"]:
            if len(data["overflow"]) != overflow_slots:
                raise ValueError(f"BucketDigest state has {len(data['overflow'])} overflow slots, expected {overflow_slots}")
            digest.overflow = [int(value) for value in data["overflow"]]
        digest.most_reached = [dict(s) for s in data["most_reached"]]
        digest.most_negative = [dict(s) for s in data["most_negative"]]
        # story fields were added within version 1: digests stored before them have none
        digest.copies = int(data.get("copies", 0))
        digest.storied = int(data.get("storied", 0))
        digest.authors = [int(h) for h in data.get("authors", [])][:SKETCH_K]
        digest.story_ids = [int(h) for h in data.get("story_ids", [])][:SKETCH_K]
        digest.stories = {str(sid): dict(entry, languages=dict(entry["languages"]))
                          for sid, entry in list(data.get("stories", {}).items())[:MAX_STORIES]}
        return digest


class TermBaseline:
    """A brand's usual vocabulary: the decayed share of its mentions that contain each term.

    Updated once per closed bucket (empty buckets included, so decay follows time). Only the
    ``max_terms`` most frequent terms are kept; ``floor`` remembers the largest frequency dropped, and a
    term the baseline does not hold is assumed that frequent, so pruning never makes a word look new.
    """

    def __init__(self, max_terms: int = MAX_BASELINE_TERMS, half_life_buckets: float = BASELINE_HALF_LIFE_BUCKETS):
        self.max_terms = max_terms
        self.half_life_buckets = half_life_buckets
        self.mentions = 0.0  # decayed number of mentions seen
        self.frequencies: dict[str, float] = {}  # decayed number of mentions containing each term
        self.floor = 0.0

    def update(self, digest: BucketDigest) -> None:
        decay = 0.5 ** (1.0 / self.half_life_buckets)
        self.mentions = self.mentions * decay + digest.count
        self.floor *= decay
        frequencies = {term: value * decay for term, value in self.frequencies.items()}
        for term, (count, error) in digest.terms.items():  # the guaranteed counts; ranked below, in any order
            frequencies[term] = frequencies.get(term, 0.0) + (count - error)
        ranked = sorted(frequencies)  # by term, then (a stable sort) by frequency, highest first
        ranked.sort(key=frequencies.__getitem__, reverse=True)
        dropped = ranked[self.max_terms :]
        if dropped:
            self.floor = max(self.floor, frequencies[dropped[0]])
        self.frequencies = {term: frequencies[term] for term in ranked[: self.max_terms]}

    def skip(self, buckets: int) -> None:
        """``buckets`` empty buckets at once: what as many updates with an empty digest do (decay only)."""
        decay = 0.5 ** (buckets / self.half_life_buckets)
        self.mentions *= decay
        self.floor *= decay
        self.frequencies = {term: value * decay for term, value in self.frequencies.items()}

    def share(self, term: str) -> float:
        """Usual share of mentions containing ``term``, smoothed towards a small prior."""
        seen = self.frequencies.get(term, self.floor)
        return (seen + PRIOR_WEIGHT * PRIOR_SHARE) / (self.mentions + PRIOR_WEIGHT)

    def to_dict(self) -> dict:
        return {
            "version": BASELINE_VERSION,
            "half_life_buckets": self.half_life_buckets,
            "mentions": self.mentions,
            "floor": self.floor,
            "frequencies": dict(self.frequencies),
        }

    @classmethod
    def from_dict(cls, data: dict, max_terms: int = MAX_BASELINE_TERMS) -> TermBaseline:
        if data.get("version") != BASELINE_VERSION:
            raise ValueError(f"unsupported TermBaseline state version {data.get('version')!r}, expected {BASELINE_VERSION}")
        baseline = cls(max_terms, float(data["half_life_buckets"]))
        baseline.mentions = float(data["mentions"])
        baseline.floor = float(data["floor"])
        baseline.frequencies = {term: float(value) for term, value in data["frequencies"].items()}
        return baseline


def term_lift(count: int, mentions: int, usual_share: float) -> float:
    """How over-represented a term is: observed over expected mentions, both padded by a pseudo-count."""
    return (count + LIFT_PSEUDO_COUNT) / (mentions * usual_share + LIFT_PSEUDO_COUNT)


def top_terms(digest: BucketDigest, baseline: TermBaseline, limit: int = TOP_TERMS) -> list[dict]:
    """Terms most over-represented in ``digest`` compared with the brand's usual vocabulary."""
    scored = []
    for term, count in digest.term_counts().items():
        if count < MIN_TERM_COUNT:
            continue
        lift = term_lift(count, digest.count, baseline.share(term))
        if lift >= MIN_LIFT:
            scored.append((lift, count, term))
    scored.sort(key=lambda item: (-item[0], -item[1], item[2]))
    return [{"term": term, "count": count, "lift": round(lift, 2)} for lift, count, term in scored[:limit]]
