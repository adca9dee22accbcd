"""The bundled demo stream: 36 hours of multilingual brand mentions with one crisis and one viral launch.

Why synthetic: real social data cannot be redistributed, and a demo needs a stream whose truth is known.
Five fictional brands get hand-written posts in their markets' languages (Italian, English, German,
Spanish, Portuguese, French) at a daily rhythm with Poisson noise. In the last hours one brand
(``CRISIS_BRAND``) suffers a food-safety scare, a negative burst about nine times its usual volume, and
another (``VIRAL_BRAND``) has a celebrated launch, a positive burst of similar size; the others stay quiet.
Everything derives from one seed, so the stream, its ids and its bursts are reproducible.

CLI: ``python -m streams.tools.sample --hours 36 --out sample.jsonl`` (progress on stderr).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import random
import string
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import TextIO

import orjson

from ..contracts import parse_rfc3339

logger = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
BURST_DURATION = timedelta(minutes=40)
# Bursts sit in the last hours so a replay ends shortly after them: the demo shows both, then recovery.
CRISIS_BRAND = "Caffè Aurora"
CRISIS_STARTS_BEFORE_END = timedelta(hours=3, minutes=10)
CRISIS_TERMS = ("contaminazione", "richiamo", "listeria")
VIRAL_BRAND = "Velo Motors"
VIRAL_STARTS_BEFORE_END = timedelta(hours=1, minutes=35)
VIRAL_TERMS = ("Étoile",)
# After the burst's 40 minutes the story fades over this long (extra volume decays exponentially).
AFTERMATH = timedelta(minutes=45)


# Texts (sample_texts.json). Every brand belongs to a domain; each (domain, language) has hand-written
# experience sentences ("did"), praise ("good"), complaints ("bad") and neutral questions or news ("neutral").
# Per-language wrappers combine them, so a few hundred sentences give thousands of distinct, natural posts.
# Placeholders: {b} brand, {h} brand handle, {place} a city, {model} a product line name, {n}/{n0} numbers.


def _tuples(value):
    """JSON lists back as the tuples the generator picks from (immutable, like the rest of the sample)."""
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: _tuples(item) for key, item in value.items()}
    return value


TEXTS = _tuples(json.loads(resources.files(__package__).joinpath("sample_texts.json").read_text("utf-8")))
DOMAIN_TEXTS: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    tuple(key.split("/")): texts for key, texts in TEXTS["domain_texts"].items()
}
WRAPPERS: dict[str, dict[str, tuple[str, ...]]] = TEXTS["wrappers"]
NEWS_HEADLINES: dict[str, dict[str, tuple[str, ...]]] = TEXTS["news_headlines"]


@dataclass(frozen=True)
class Story:
    """A burst's own texts: what people say during a crisis or a viral moment, per language and sentiment."""

    posts: dict[str, dict[str, tuple[str, ...]]]
    headlines: dict[str, tuple[str, ...]]
    tags: dict[str, tuple[str, ...]]
    languages: dict[str, float]
    sentiments: dict[str, float]


CRISIS_STORY = Story(
    **TEXTS["stories"]["crisis"],
    languages={"it": 0.85, "en": 0.15},
    sentiments={"negative": 0.8, "neutral": 0.17, "positive": 0.03},
)

VIRAL_STORY = Story(
    **TEXTS["stories"]["viral"],
    languages={"fr": 0.6, "en": 0.4},
    sentiments={"positive": 0.75, "neutral": 0.2, "negative": 0.05},
)
LAUNCH_MODEL = "Velo Étoile"


@dataclass(frozen=True)
class Brand:
    name: str
    handle: str
    domain: str
    languages: dict[str, float]
    # Mean mentions per 5 minutes at the daily peak; the rhythm scales it down at night.
    peak_per_5min: float
    sentiments: dict[str, float]
    tags: tuple[str, ...]
    site: str
    models: tuple[str, ...] = ("",)


BRANDS: tuple[Brand, ...] = (
    Brand("Caffè Aurora", "@CaffeAurora", "coffee", {"it": 0.8, "en": 0.2}, 5.8,
          {"negative": 0.22, "neutral": 0.43, "positive": 0.35}, ("#caffè", "#colazione", "#coffee", "#CaffeAurora"),
          "caffe-aurora.example"),
    Brand("Nordwind Air", "@NordwindAir", "airline", {"de": 0.6, "en": 0.4}, 6.0,
          {"negative": 0.33, "neutral": 0.42, "positive": 0.25}, ("#NordwindAir", "#Reisen", "#travel", "#Flug"),
          "nordwind-air.example"),
    Brand("Lumen Bank", "@LumenBank", "bank", {"es": 0.45, "pt": 0.35, "en": 0.2}, 4.8,
          {"negative": 0.3, "neutral": 0.45, "positive": 0.25}, ("#LumenBank", "#banca", "#fintech"),
          "lumen-bank.example"),
    Brand("Velo Motors", "@VeloMotors", "car", {"fr": 0.6, "en": 0.4}, 4.0,
          {"negative": 0.25, "neutral": 0.45, "positive": 0.3}, ("#VeloMotors", "#auto", "#EV"),
          "velo-motors.example", ("Velo Aria", "Velo Brisa", "Velo Sentier")),
    Brand("Tessuti Bianchi", "@TessutiBianchi", "fashion", {"it": 0.6, "en": 0.4}, 3.8,
          {"negative": 0.2, "neutral": 0.45, "positive": 0.35}, ("#TessutiBianchi", "#moda", "#fashion",
                                                                  "#madeinitaly"), "tessuti-bianchi.example"),
)
BRAND_NAMES: tuple[str, ...] = tuple(brand.name for brand in BRANDS)

PLACES: dict[str, tuple[str, ...]] = TEXTS["places"]
EMOJI = TEXTS["emoji"]
# A neutral review is an experience with a lukewarm verdict, not a question or a news item.
REVIEW_VERDICTS = TEXTS["review_verdicts"]
REVIEW_STARS = TEXTS["review_stars"]
FIRST_NAMES = TEXTS["first_names"]
LAST_NAMES = TEXTS["last_names"]
# Fictional outlets (news source) and loud accounts that amplify bursts, per language.
OUTLETS = TEXTS["outlets"]
AMPLIFIERS = TEXTS["amplifiers"]

SOURCES: dict[str, float] = {"twitter": 0.36, "instagram": 0.14, "reddit": 0.12, "forum": 0.1, "review": 0.14,
                             "news": 0.07, "x": 0.07}
BURST_SOURCES: dict[str, float] = {"twitter": 0.42, "x": 0.08, "instagram": 0.12, "reddit": 0.13, "forum": 0.1,
                                   "news": 0.12, "review": 0.03}
SOCIAL = {"twitter", "x", "instagram"}

# Share of the daily peak at each UTC hour: European audiences, quiet at night, busiest late afternoon.
HOURLY_RHYTHM = (0.22, 0.15, 0.11, 0.10, 0.12, 0.20, 0.35, 0.55, 0.70, 0.78, 0.82, 0.86,
                 0.90, 0.88, 0.90, 0.95, 1.00, 1.00, 0.98, 0.95, 0.88, 0.72, 0.52, 0.34)


@dataclass(frozen=True)
class Burst:
    """Where a story sits in a generated stream: the 40-minute window tests and the demo look for."""

    brand: str
    kind: str  # "crisis" (negative) or "opportunity" (positive), as the detector names them
    start: datetime
    end: datetime
    story: Story = field(repr=False, compare=False)


@dataclass(frozen=True)
class LabelledMention:
    """A generated record with the truth behind it (sentiment, burst, repost of), for tests and evaluation."""

    record: dict
    sentiment: str
    burst: str | None  # brand of the burst it belongs to, None for everyday traffic
    repost_of: str | None  # id of the reposted mention: the only identical texts are deliberate reposts


@dataclass
class Author:
    id: str
    handle: str
    followers: int
    language: str


def bursts(start: datetime, hours: float = 36) -> tuple[Burst, ...]:
    """The crisis and viral windows of ``generate(start, hours)``; a burst that would begin before the
    stream is left out, so streams shorter than about 3.5 hours have no crisis."""
    end = start + timedelta(hours=hours)
    candidates = (
        Burst(CRISIS_BRAND, "crisis", *_window(end - CRISIS_STARTS_BEFORE_END), story=CRISIS_STORY),
        Burst(VIRAL_BRAND, "opportunity", *_window(end - VIRAL_STARTS_BEFORE_END), story=VIRAL_STORY),
    )
    return tuple(burst for burst in candidates if burst.start >= start and burst.end <= end)


def _window(approximate_start: datetime) -> tuple[datetime, datetime]:
    # Align to 5-minute UTC boundaries so the burst fills whole detector buckets.
    epoch = approximate_start.timestamp()
    start = datetime.fromtimestamp(epoch - epoch % 300, tz=timezone.utc)
    return start, start + BURST_DURATION


def generate(start: datetime, hours: float = 36, seed: int = 7) -> list[dict]:
    """Raw mentions (schemas/mention.raw.v1.json) from ``start`` for ``hours``, in created_at order."""
    return [mention.record for mention in generate_labelled(start, hours, seed)]


def generate_labelled(start: datetime, hours: float = 36, seed: int = 7) -> list[LabelledMention]:
    """``generate`` with the truth attached to each record."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC): created_at values are absolute instants")
    if hours <= 0:
        raise ValueError(f"hours must be positive, got {hours}")
    start = start.astimezone(timezone.utc)
    writer = _Writer(random.Random(seed))
    stream_bursts = bursts(start, hours)
    minutes = math.ceil(hours * 60)
    end = start + timedelta(hours=hours)
    for offset in range(minutes):
        minute_start = start + offset * MINUTE
        span = min(MINUTE, end - minute_start)
        share = span / MINUTE
        for brand in BRANDS:
            everyday = brand.peak_per_5min / 5 * _rhythm(minute_start + span / 2) * share
            for _ in range(_poisson(writer.rng, everyday)):
                writer.everyday(brand, minute_start + writer.rng.random() * span)
            for burst in stream_bursts:
                if burst.brand == brand.name:
                    extra = _burst_intensity(burst, minute_start) * _mean_per_minute(brand) * share
                    for _ in range(_poisson(writer.rng, extra)):
                        writer.burst(brand, burst, minute_start + writer.rng.random() * span)
    mentions = sorted(writer.mentions, key=lambda m: (m.record["created_at"], m.record["id"]))
    logger.info("generated %d mentions for %d brands over %.1f h (seed %d)", len(mentions), len(BRANDS), hours, seed)
    return mentions


def _rhythm(moment: datetime) -> float:
    """Daily rhythm at ``moment``: hourly shares interpolated linearly between the hours' midpoints."""
    position = moment.hour + moment.minute / 60 + moment.second / 3600 - 0.5
    lower = math.floor(position)
    weight = position - lower
    return HOURLY_RHYTHM[lower % 24] * (1 - weight) + HOURLY_RHYTHM[(lower + 1) % 24] * weight


def _mean_per_minute(brand: Brand) -> float:
    return brand.peak_per_5min / 5 * sum(HOURLY_RHYTHM) / len(HOURLY_RHYTHM)


def _burst_intensity(burst: Burst, moment: datetime) -> float:
    """Extra volume, in multiples of the brand's daily mean: a 5-minute ramp to 10x, a plateau, a slide to
    5x in the last 10 minutes (about 9x over the window), then an aftermath fading from 3x."""
    minute = (moment - burst.start) / MINUTE
    length = BURST_DURATION / MINUTE
    if minute < 0:
        return 0.0
    if minute < 5:
        return 4 + 1.2 * minute
    if minute < length - 10:
        return 10.0
    if minute < length:
        return 10 - 0.5 * (minute - (length - 10))
    if minute < length + AFTERMATH / MINUTE:
        return 3 * math.exp(-(minute - length) / 15)
    return 0.0


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: exact and fast for the small means used here (< 30 per minute)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(tuple(weights), weights=tuple(weights.values()))[0]


def _ascii_slug(text: str, separator: str = "") -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return separator.join("".join(c if c.isalnum() else " " for c in folded).split())


class _Writer:
    """Turns (brand, time, burst) into mentions, keeping authors, ids and texts consistent and unique."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.mentions: list[LabelledMention] = []
        self._texts: set[str] = set()
        self._sequence = 0
        self._authors: dict[str, list[Author]] = {lang: self._people(lang) for lang in FIRST_NAMES}
        self._outlets = {lang: [self._loud(name, lang, "news") for name in names] for lang, names in OUTLETS.items()}
        self._amplifiers = {lang: [self._loud(name, lang, "amp") for name in names]
                            for lang, names in AMPLIFIERS.items()}
        self._burst_posts: dict[str, list[LabelledMention]] = {}

    # ---- authors -------------------------------------------------------------------------------------
    def _people(self, lang: str, count: int = 350) -> list[Author]:
        authors, handles = [], set()
        for index in range(count):
            first = self.rng.choice(FIRST_NAMES[lang])
            last = self.rng.choice(LAST_NAMES[lang])
            style = self.rng.randrange(5)
            if style == 0:
                handle = f"{_ascii_slug(first)}_{_ascii_slug(last)}"
            elif style == 1:
                handle = f"{_ascii_slug(first)}{_ascii_slug(last)[0]}{self.rng.randrange(70, 100)}"
            elif style == 2:
                handle = f"{_ascii_slug(first)}.{_ascii_slug(last)}"
            elif style == 3:
                handle = f"{first}{last}".replace(" ", "")
                handle = _ascii_slug(handle)
            else:
                handle = f"{_ascii_slug(first)}_{self.rng.choice(('real', 'official', 'xx', 'the', 'mrs', 'mr'))}"
            while handle in handles:
                handle += str(self.rng.randrange(10))
            handles.add(handle)
            # Heavy tail: Pareto(1.1) gives most people a few dozen followers and a few tens of thousands.
            followers = min(int(25 * self.rng.paretovariate(1.1)), 2_500_000)
            authors.append(Author(f"{lang}{index:04d}{self.rng.randrange(10**6):06d}", f"@{handle}", followers, lang))
        return authors

    def _loud(self, name: str, lang: str, kind: str) -> Author:
        handle = _ascii_slug(name, "_") if kind == "news" else name
        followers = int(self.rng.uniform(40_000, 1_800_000))
        return Author(f"{kind}-{lang}-{handle}", handle if kind == "news" else f"@{handle}", followers, lang)

    # ---- mentions ------------------------------------------------------------------------------------
    def everyday(self, brand: Brand, moment: datetime) -> None:
        rng = self.rng
        lang = _pick(rng, brand.languages)
        sentiment = _pick(rng, brand.sentiments)
        source = _pick(rng, SOURCES)
        if source == "news":
            author = rng.choice(self._outlets[lang])
            text = self._unique(lambda: self._fill(rng.choice(NEWS_HEADLINES[lang][sentiment]), brand, lang))
        else:
            author = rng.choice(self._authors[lang])
            text = self._unique(lambda: self._decorate(self._everyday_text(brand, lang, sentiment, source), brand,
                                                       brand.tags, sentiment, source))
        self._add(brand, moment, lang, sentiment, source, author, text, burst=None)

    def burst(self, brand: Brand, burst: Burst, moment: datetime) -> None:
        rng = self.rng
        earlier = self._burst_posts.setdefault(burst.brand, [])
        if earlier and rng.random() < 0.18:
            self._repost(brand, burst, moment, rng.choice(earlier[-40:]))
            return
        story = burst.story
        lang = _pick(rng, story.languages)
        sentiment = _pick(rng, story.sentiments)
        source = _pick(rng, BURST_SOURCES)
        if source == "news":
            author = rng.choice(self._outlets[lang])
            text = self._unique(lambda: self._fill(rng.choice(story.headlines[lang]), brand, lang))
            sentiment = "negative" if burst.kind == "crisis" else "positive"
        else:
            loud = rng.random() < 0.15
            author = rng.choice(self._amplifiers[lang] if loud else self._authors[lang])
            posts = story.posts[lang][sentiment]
            text = self._unique(lambda: self._decorate(self._fill(rng.choice(posts), brand, lang), brand,
                                                       story.tags[lang], sentiment, source))
        mention = self._add(brand, moment, lang, sentiment, source, author, text, burst=burst.brand)
        if source in {"twitter", "x"}:
            earlier.append(mention)

    def _repost(self, brand: Brand, burst: Burst, moment: datetime, original: LabelledMention) -> None:
        """A retweet: same text for every reposter of one post, by design (the de-dup key differs)."""
        posted = parse_rfc3339(original.record["created_at"])
        moment = max(moment, posted + timedelta(seconds=self.rng.uniform(5, 90)))  # never before the original
        handle = original.record["author"].get("handle") or original.record["author"]["id"]
        handle = handle if handle.startswith("@") else f"@{handle}"
        text = f"RT {handle}: {original.record['text']}"
        lang = original.record.get("lang") or _pick(self.rng, burst.story.languages)
        author = self.rng.choice(self._authors[lang])
        self._add(brand, moment, lang, original.sentiment, "twitter", author, text, burst=burst.brand,
                  repost_of=original.record["id"])

    def _everyday_text(self, brand: Brand, lang: str, sentiment: str, source: str) -> str:
        rng = self.rng
        texts = DOMAIN_TEXTS[(brand.domain, lang)]
        good = rng.sample(texts["good"], 2)
        bad = rng.sample(texts["bad"], 2)
        parts = {"did": rng.choice(texts["did"]), "good": good[0], "good2": good[1], "bad": bad[0], "bad2": bad[1],
                 "neutral": rng.choice(texts["neutral"])}
        place = rng.choice(PLACES[lang])  # one city per post, however many sentences mention it
        filled = {name: self._fill(sentence, brand, lang, place) for name, sentence in parts.items()}
        if source == "review" and sentiment == "neutral":
            return f"{filled['did']} {rng.choice(REVIEW_VERDICTS[lang])}"
        return rng.choice(WRAPPERS[lang][sentiment]).format(b=brand.name, h=brand.handle, **filled)

    def _fill(self, template: str, brand: Brand, lang: str, place: str | None = None) -> str:
        rng = self.rng
        return template.format(b=brand.name, h=brand.handle, place=place or rng.choice(PLACES[lang]),
                               model=rng.choice(brand.models), launch=LAUNCH_MODEL,
                               n=rng.randrange(3, 25), n0=rng.choice((40, 60, 80, 120, 150, 200, 300, 450)))

    def _decorate(self, text: str, brand: Brand, tags: Sequence[str], sentiment: str, source: str) -> str:
        """Platform habits: stars on reviews; emoji, hashtags, links and cc's on social posts."""
        rng = self.rng
        if source == "review":
            return f"{rng.choice(REVIEW_STARS[sentiment])} {text}"
        if source not in SOCIAL:
            return text
        if rng.random() < 0.35:
            text = f"{text} {rng.choice(EMOJI[sentiment])}"
        if rng.random() < 0.3:
            text = f"{text} {rng.choice(tags)}"
        if rng.random() < 0.12:
            text = f"{text} cc {rng.choice(self._authors[rng.choice(tuple(brand.languages))]).handle}"
        if rng.random() < 0.12:
            text = f"{text} {self._short_link()}"
        return text

    def _short_link(self) -> str:
        return "https://t.example/" + "".join(self.rng.choices(string.ascii_letters + string.digits, k=8))

    def _unique(self, make) -> str:
        """Draw until the text is new; a short link makes the rare stubborn duplicate distinct."""
        for _ in range(25):
            text = make()
            if text not in self._texts:
                break
        else:
            text = f"{text} {self._short_link()}"
        self._texts.add(text)
        return text

    def _add(self, brand: Brand, moment: datetime, lang: str, sentiment: str, source: str, author: Author,
             text: str, *, burst: str | None, repost_of: str | None = None) -> LabelledMention:
        rng = self.rng
        self._sequence += 1
        mention_id = self._mention_id(source, moment)
        record: dict = {
            "id": mention_id,
            "brand": brand.name,
            "source": source,
            "text": text,
            "created_at": _rfc3339_ms(moment),
            "author": {"id": author.id, "handle": author.handle, "followers": author.followers},
        }
        url = self._url(source, brand, author, mention_id, text, moment)
        if url:
            record["url"] = url
        if rng.random() < 0.85:  # platforms don't always label the language
            record["lang"] = lang
        reach = self._reach(source, author)
        if reach is not None:
            record["reach"] = reach
        mention = LabelledMention(record, sentiment, burst, repost_of)
        self.mentions.append(mention)
        return mention

    def _mention_id(self, source: str, moment: datetime) -> str:
        # The sequence number makes ids unique; the rest makes them look like each platform's.
        seq, rng = self._sequence, self.rng
        if source in {"twitter", "x"}:
            return str((int(moment.timestamp() * 1000) - 1288834974657) << 22 | (seq & 0x3FFFFF))
        if source == "instagram":
            return f"{int(moment.timestamp())}{seq:07d}_{rng.randrange(10**8, 10**9)}"
        if source == "reddit":
            return f"t3_{_base36(46_000_000_000 + seq * 37 + rng.randrange(37))}"
        if source == "news":
            return f"news-{seq:07d}-{rng.getrandbits(32):08x}"
        if source == "review":
            return f"rev-{seq:07d}{rng.randrange(1000):03d}"
        return f"forum-{seq:07d}"

    def _url(self, source: str, brand: Brand, author: Author, mention_id: str, text: str,
             moment: datetime) -> str | None:
        rng = self.rng
        handle = author.handle.lstrip("@")
        if source == "news":
            slug = "-".join(_ascii_slug(text, "-").split("-")[:8])
            outlet = _ascii_slug(handle, "-")
            return f"https://www.{outlet}.example/{moment:%Y/%m/%d}/{slug}-{mention_id.split('-')[1]}"
        if source in {"twitter", "x"} and rng.random() < 0.7:
            return f"https://{source}.example/{handle}/status/{mention_id}"
        if source == "instagram" and rng.random() < 0.5:
            return f"https://instagram.example/p/{mention_id.split('_')[1]}"
        if source == "reddit":
            return f"https://reddit.example/r/{_ascii_slug(brand.name)}/comments/{mention_id[3:]}"
        if source == "review":
            return f"https://reviews.example/{_ascii_slug(brand.name, '-')}/{mention_id}"
        if source == "forum" and rng.random() < 0.6:
            return f"https://forum.{brand.site}/t/{mention_id.split('-')[1]}"
        return None

    def _reach(self, source: str, author: Author) -> int | None:
        rng = self.rng
        if source in SOCIAL:
            return int(author.followers * rng.uniform(0.2, 1.5)) + rng.randrange(5)
        if source == "news":
            return int(author.followers * rng.uniform(1.0, 3.0))
        if source == "reddit":
            return min(int(30 * rng.paretovariate(1.2)), 500_000)
        if rng.random() < 0.5:  # reviews and forums often report no audience
            return None
        return int(rng.uniform(20, 2_000))


def _base36(number: int) -> str:
    digits = string.digits + string.ascii_lowercase
    out = ""
    while number:
        number, remainder = divmod(number, 36)
        out = digits[remainder] + out
    return out or "0"


def _rfc3339_ms(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def write_jsonl(records: Iterable[dict], out: Path | str | TextIO) -> int:
    """One JSON object per line (UTF-8, unescaped); ``out`` is a path or an open text stream. Returns lines."""
    if isinstance(out, (str, Path)):
        with open(out, "w", encoding="utf-8") as stream:
            return write_jsonl(records, stream)
    count = 0
    for record in records:
        out.write(orjson.dumps(record).decode() + "\n")
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.tools.sample", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=36.0, help="length of the stream (default 36)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", help="RFC 3339 start instant (default: so the stream ends now)")
    parser.add_argument("--out", help="output file (default: stdout)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if args.start:
        try:
            start = parse_rfc3339(args.start)
        except ValueError as error:
            parser.error(f"--start {args.start!r}: {error}")
    else:
        start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=args.hours)
    records = generate(start, hours=args.hours, seed=args.seed)
    count = write_jsonl(records, args.out or sys.stdout)
    for burst in bursts(start, args.hours):
        logger.info("%s burst on %s: %s to %s", burst.kind, burst.brand, _rfc3339_ms(burst.start),
                    _rfc3339_ms(burst.end))
    logger.info("wrote %d mentions to %s", count, args.out or "stdout")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
