"""Online story assignment for one brand's mentions: copies join their original, look-alikes join a story.

Why per brand and online: an alert explains one brand's burst, as it happens, and its mentions arrive in
order on one partition. A mention is, in this order:

1. a *copy* when its :func:`~.signature.signature` shares a copy key with an earlier mention (retweet,
   syndicated or truncated article, repost with added links, handles, hashtags or emoji): it takes that
   mention's story, ``is_copy`` true and ``copy_of`` the first mention of the copy group;
2. a *quote* ("comment RT @x: original") takes the story of the post it quotes, if that is still known;
3. otherwise it joins the active story whose centroid is closest, if the cosine similarity of the sentence
   embeddings reaches ``threshold`` *and* that of their terms (words and hashtags, stop words and the brand's
   own name left out, hashed) reaches ``lexical_threshold``; or it starts a new story. Both must agree: the
   encoder was fine-tuned for sentiment and alone groups by tone (``benchmarks/stories.py`` measured it, and
   chose both thresholds on CrisisLexT26).

State is bounded per brand (``max_stories`` active stories, ``max_copy_keys`` copy keys, ``horizon_s`` of
event time) and JSON-safe (:meth:`BrandStories.to_state`): the enrich stage keeps it in a changelogged
table, so a restart resumes with the same ids. Centroids are int8 in memory as in the stored state, so a
restored brand continues exactly as one that never stopped: same input order, same ids. When a limit cuts
in, the least recently active story (or copy key) is forgotten and a log line says so; the mention is
never lost, at worst a later copy of a forgotten story starts a new one.
"""
from __future__ import annotations

import base64
import hashlib
import logging
from collections import OrderedDict
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import orjson

from ..contracts import format_rfc3339, parse_rfc3339
from ..text import brand_key
from .signature import LEXICAL_DIM, WORD, lexical, signature

log = logging.getLogger(__name__)

STATE_VERSION = 1
HORIZON_S = 48 * 3600.0  # a story silent this long (event time) is over
MAX_STORIES = 256  # active stories per brand: bounds the stored state (about 0.9 kB each)
MAX_COPY_KEYS = 2048  # copy keys per brand (about 50 bytes each stored)
THRESHOLD = 0.80  # cosine similarity of the embeddings to join a story (benchmarks/stories.py) ...
LEXICAL_THRESHOLD = 0.25  # ... and of the terms: both must agree (the encoder was tuned for tone, not topic)
CENTROID_MEMORY = 1000  # a story's centroid weighs its past as at most this many mentions (it may drift slowly)
MIN_STORY_TOKENS = 3
SCALE = 127.0


def story_id(brand_key: str, first_mention_id: str) -> str:
    """Stable and deterministic: the brand and the story's first mention."""
    digest = hashlib.blake2b(f"{brand_key}\0{first_mention_id}".encode("utf-8"), digest_size=8).hexdigest()
    return f"st_{digest}"


@dataclass
class Story:
    id: str
    first_id: str
    first_seen: float
    last_seen: float
    mentions: int
    centroid: np.ndarray | None  # int8 [dim], L2 norm about SCALE; None: no embedding seen yet
    slot: int  # its row in the brand's similarity matrix
    centroid_weight: int = 0  # mentions averaged into the centroid (copies are not)

    def record(self, is_copy: bool, copy_of: str | None = None) -> dict:
        """The enriched record's ``story`` object."""
        record = {"id": self.id, "is_copy": is_copy, "first_id": self.first_id,
                  "first_seen_at": format_rfc3339(datetime.fromtimestamp(self.first_seen, timezone.utc)),
                  "mentions": self.mentions}
        if copy_of is not None:
            record["copy_of"] = copy_of
        return record


def _quantise_parts(vector: np.ndarray) -> np.ndarray:
    """The embedding part and the lexical part each at unit norm, int8."""
    split = len(vector) - LEXICAL_DIM
    return np.concatenate([_quantise(vector[:split]), _quantise(vector[split:])])


def _quantise(vector: np.ndarray) -> np.ndarray:
    norm = float(np.sqrt(vector @ vector))
    if not norm:
        return np.zeros(vector.shape, np.int8)
    return np.rint(vector * (SCALE / norm)).astype(np.int8)  # |components| <= norm: within int8


class BrandStories:
    """One brand's active stories and copy keys; :meth:`assign` is the whole online step."""

    def __init__(self, brand_key: str, *, threshold: float = THRESHOLD, lexical_threshold: float = LEXICAL_THRESHOLD,
                 horizon_s: float = HORIZON_S, max_stories: int = MAX_STORIES, max_copy_keys: int = MAX_COPY_KEYS) -> None:
        self.brand_key = brand_key
        self.threshold = threshold
        self.lexical_threshold = lexical_threshold
        self.brand_words = frozenset(WORD.findall(brand_key))  # in every mention: no sign of a shared story
        self.horizon_s = horizon_s
        self.max_stories = max_stories
        self.max_copy_keys = max_copy_keys
        self.stories: OrderedDict[str, Story] = OrderedDict()  # least recently active first
        self.copies: OrderedDict[str, list[str]] = OrderedDict()  # copy key -> [story id, first mention id]
        self.clock = 0.0  # latest event time seen (epoch s): the horizon counts from it
        self.forgotten = 0  # stories dropped by the limit (not the horizon), for the log and metrics
        self.dropped_keys = 0
        self.free = list(range(max_stories + 1))[::-1]  # free matrix rows, lowest first off the end
        self.matrix: np.ndarray | None = None  # [max_stories + 1, dim] float32 centroids / SCALE, 0 when free
        self.by_slot: dict[int, Story] = {}

    # ---------------------------------------------------------------------------------------------- assign

    def assign(self, mention_id: str, text: str, at: float, embedding: np.ndarray | None) -> dict:
        """The mention's ``story`` object (``schemas/mention.enriched.v1.json``), and the state updated."""
        self.clock = max(self.clock, at)
        self._expire()
        sig = signature(text)
        keys = sig.keys()
        found = self._copy_of(sig.lookups())
        if found is not None:
            story, first_id = found
            self._touch(story, at, None)  # a copy adds nothing to what the story is about
            self._file(keys, story.id, first_id)
            if first_id == mention_id:  # the same mention again (a redelivery) is not a copy of itself
                return story.record(is_copy=False)
            return story.record(is_copy=True, copy_of=first_id)
        story = None
        if sig.quoted:
            hit = self._copy_of(sig.quoted.lookups())
            story = hit[0] if hit else None
        vector = None
        if embedding is not None and sig.words >= MIN_STORY_TOKENS:
            vector = np.concatenate([_unit(embedding), lexical(sig, self.brand_words)])
            if story is None:
                story = self._nearest(vector)
        if story is None:
            story = self._new(mention_id, at)
        self._touch(story, at, vector)
        self._file(keys, story.id, mention_id)
        return story.record(is_copy=False)

    def _copy_of(self, keys: list[str]) -> tuple[Story, str] | None:
        for key in keys:
            entry = self.copies.get(key)
            if entry is None:
                continue
            story = self.stories.get(entry[0])
            if story is None:  # its story was forgotten: the key goes too
                del self.copies[key]
                continue
            self.copies.move_to_end(key)
            return story, entry[1]
        return None

    def _nearest(self, vector: np.ndarray) -> Story | None:
        """The closest story by embedding among those that also share enough terms, if close enough."""
        if self.matrix is None or len(vector) != self.matrix.shape[1]:
            return None
        split = len(vector) - LEXICAL_DIM
        meaning = self.matrix[:, :split] @ vector[:split]
        terms = self.matrix[:, split:] @ vector[split:]
        score = np.where((meaning >= self.threshold) & (terms >= self.lexical_threshold), meaning + terms, -np.inf)
        slot = int(np.argmax(score))  # first of equals: the lowest row, deterministic
        return self.by_slot[slot] if np.isfinite(score[slot]) else None

    def _new(self, mention_id: str, at: float) -> Story:
        story = Story(story_id(self.brand_key, mention_id), mention_id, at, at, 0, None, self.free.pop())
        self.stories[story.id] = story
        self.by_slot[story.slot] = story
        while len(self.stories) > self.max_stories:
            dropped = self._drop()
            self.forgotten += 1
            if _worth_logging(self.forgotten):
                log.warning("stories: brand %r has more than %d active stories (%d forgotten so far); forgot the least "
                            "recently active, %s (%d mentions, last seen %.0f s before); a later copy of it starts a "
                            "new story", self.brand_key, self.max_stories, self.forgotten, dropped.id,
                            dropped.mentions, self.clock - dropped.last_seen)
        return story

    def _drop(self) -> Story:
        _, story = self.stories.popitem(last=False)
        del self.by_slot[story.slot]
        if self.matrix is not None:
            self.matrix[story.slot] = 0.0
        self.free.append(story.slot)
        return story

    def _touch(self, story: Story, at: float, vector: np.ndarray | None) -> None:
        story.mentions += 1
        story.last_seen = max(story.last_seen, at)
        self.stories.move_to_end(story.id)
        if vector is None:
            return
        if story.centroid is None:
            story.centroid = _quantise_parts(vector)
        else:  # running mean, the earlier mentions weighted by their number (capped: a story may drift slowly)
            weight = min(story.centroid_weight, CENTROID_MEMORY)
            story.centroid = _quantise_parts(story.centroid.astype(np.float32) / SCALE * weight + vector)
        story.centroid_weight += 1
        self._place(story)

    def _place(self, story: Story) -> None:
        if self.matrix is None:
            self.matrix = np.zeros((self.max_stories + 1, len(story.centroid)), np.float32)
        if len(story.centroid) == self.matrix.shape[1]:
            self.matrix[story.slot] = story.centroid.astype(np.float32) / SCALE

    def _file(self, keys: list[str], story: str, first_id: str) -> None:
        for key in keys:
            if key in self.copies:
                self.copies.move_to_end(key)
                continue
            self.copies[key] = [story, first_id]
        while len(self.copies) > self.max_copy_keys:
            self.copies.popitem(last=False)
            self.dropped_keys += 1
            if _worth_logging(self.dropped_keys):
                log.info("stories: brand %r holds %d copy keys at most (%d forgotten so far, least recently used "
                         "first); a copy of a forgotten post may start a story of its own", self.brand_key,
                         self.max_copy_keys, self.dropped_keys)

    def _expire(self) -> None:
        while self.stories:
            story = next(iter(self.stories.values()))
            if self.clock - story.last_seen <= self.horizon_s:
                break
            self._drop()

    # ----------------------------------------------------------------------------------------------- state

    def to_state(self) -> dict:
        """JSON-safe; :meth:`from_state` continues identically."""
        return {
            "version": STATE_VERSION,
            "clock": self.clock,
            "forgotten": self.forgotten,
            "dropped_keys": self.dropped_keys,
            "stories": [
                [s.id, s.first_id, s.first_seen, s.last_seen, s.mentions, s.slot, s.centroid_weight,
                 base64.b64encode(s.centroid.tobytes()).decode("ascii") if s.centroid is not None else None]
                for s in self.stories.values()
            ],
            "copies": [[key, *entry] for key, entry in self.copies.items()],
        }

    @classmethod
    def from_state(cls, brand_key: str, state: dict, **limits) -> BrandStories:
        """Restore :meth:`to_state` output; raises ValueError for another version (the caller starts afresh)."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported story state version {state.get('version') if isinstance(state, dict) else state!r}")
        brand = cls(brand_key, **limits)
        brand.clock = float(state["clock"])
        brand.forgotten = int(state["forgotten"])
        brand.dropped_keys = int(state["dropped_keys"])
        for sid, first_id, first_seen, last_seen, mentions, slot, weight, centroid in state["stories"]:
            vector = np.frombuffer(base64.b64decode(centroid), np.int8).copy() if centroid else None
            story = Story(sid, first_id, float(first_seen), float(last_seen), int(mentions), vector, int(slot),
                          int(weight))
            brand.stories[sid] = story
            brand.by_slot[story.slot] = story
            brand.free.remove(story.slot)  # ValueError for a slot out of range or used twice
            if vector is not None:
                brand._place(story)
        for key, sid, first_id in state["copies"]:
            brand.copies[key] = [sid, first_id]
        return brand


_POWERS_OF_TEN = frozenset(10 ** k for k in range(19))


def _worth_logging(count: int) -> bool:
    """1, 10, 100, ...: a limit that keeps cutting in is said again, never once per mention."""
    return count in _POWERS_OF_TEN


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, np.float32)
    norm = float(np.sqrt(vector @ vector))
    return vector / norm if norm else vector


class StoryBook:
    """Story assignment for every brand over one mapping of brand key -> :meth:`BrandStories.to_state`: a
    changelogged Faust table in the enrich stage, a dict in ``ascolta stories``; the same code either way.

    A brand's live object is reused while the mapping still holds the very state this book last saved for
    it; anything else (a rebalance, a restart, another writer) is read back from the mapping, so the live
    objects never disagree with the changelog.
    """

    def __init__(self, states: MutableMapping, **limits) -> None:
        self.states = states
        self.limits = limits
        self.live: dict[str, tuple[BrandStories, object]] = {}  # brand key -> (object, the state it saved)

    def brand(self, brand: str) -> BrandStories:
        key = brand_key(brand)
        stored = self.states.get(key)
        live = self.live.get(key)
        if live is not None and live[1] is stored:
            return live[0]
        stories = BrandStories(key, **self.limits)
        if stored is not None:
            try:
                stories = BrandStories.from_state(key, stored, **self.limits)
            except (ValueError, KeyError, TypeError, IndexError) as error:
                log.warning("stories: the stored state of brand %r cannot be loaded (%s); its stories start afresh",
                            key, error)
        self.live[key] = (stories, stored)
        return stories

    def assign(self, mention: dict, embedding: np.ndarray | None) -> dict:
        """The ``story`` object of one mention (``id``, ``brand``, ``text``, ``created_at``); call :meth:`save`
        for its brand before the state must be durable."""
        try:
            at = parse_rfc3339(str(mention["created_at"])).timestamp()
        except ValueError:
            at = None
        stories = self.brand(str(mention["brand"]))
        return stories.assign(str(mention["id"]), str(mention.get("text") or ""),
                              stories.clock if at is None else at, embedding)

    def save(self, brand: str) -> int:
        """Write one brand's state to the mapping; returns its size in bytes (JSON)."""
        key = brand_key(brand)
        stories = self.brand(brand)
        state = stories.to_state()
        self.states[key] = state
        self.live[key] = (stories, self.states.get(key))
        return len(orjson.dumps(state))
