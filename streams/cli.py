"""The ``ascolta`` command: broker, worker, replay, demo, classify, stories, detect, model, sample.

Conventions: ``--help`` everywhere, logs and progress on stderr, results on stdout, exit 0 on success,
1 on failure, 2 on bad usage or unreadable input. ``main`` builds one :class:`~streams.settings.Settings`
from the ``ASCOLTA_*`` environment with the command's flags on top (a flag and its variable mean the same
thing) and hands it to the command; nothing is written back to the environment.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import orjson

from .settings import Settings

log = logging.getLogger("ascolta")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=getattr(logging, level.upper()), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from .tools.broker import run_broker_foreground

    return run_broker_foreground(args.host, args.port)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from . import app as app_module
    from .kafka import resolve_raw_topic_pattern

    settings = asyncio.run(resolve_raw_topic_pattern(settings))
    app = app_module.configure(settings)
    asyncio.run(app_module.declare_topics(settings))
    run_worker(app, args.loglevel)
    return 0  # not reached: the worker exits the process


def run_worker(app, loglevel: str) -> None:
    """Run a Faust worker for ``app`` until it stops, logging to stderr; exits the process. Starts the app as
    Faust's own ``App.main`` does (agents of the ``autodiscover`` modules found), without its command line."""
    import faust

    app.finalize()
    app.worker_init()
    if app.conf.autodiscover:
        app.discover()
    app.worker_init_post_autodiscover()
    worker = faust.Worker(app, loglevel=loglevel, stdout=sys.stderr, stderr=sys.stderr)
    # Faust's startup spinner, at --loglevel warn or above, sets the root logger to DEBUG for the worker's whole
    # life: every debug call of Faust and aiokafka then builds a LogRecord (13% of the worker's CPU in
    # benchmarks/faust_floor.py's profile). A spinning character at startup is not worth that.
    worker.spinner = None
    worker.execute_from_commandline()


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from .tools.replay import run_replay

    topic = args.topic or settings.raw_topics[0]
    return run_replay(args.file, settings=settings, topic=topic, speed=args.speed, rebase_now=args.rebase_now)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from .tools.demo import run_demo

    return run_demo(settings, duration=args.duration, hours=args.hours, port=args.port, webhook_url=args.webhook_url)


def cmd_classify(args: argparse.Namespace, settings: Settings) -> int:
    from .sentiment.classify import load_classifier

    started = time.monotonic()
    model_name = args.model or settings.sentiment_model
    if model_name == "default":
        from .sentiment.build import prepare_default_model

        prepare_default_model(settings.data_dir, threads=settings.threads)
    classifier = load_classifier(model_name, data_dir=settings.data_dir, threads=settings.threads)
    loaded = time.monotonic()
    print(f"loaded {classifier.model_id} in {loaded - started:.1f}s", file=sys.stderr)
    try:
        source = open(args.file, encoding="utf-8", errors="replace") if args.file else sys.stdin
    except OSError as exc:
        print(f"ascolta classify: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    out = sys.stdout.buffer
    done = batches = 0
    with source:
        batch: list[str] = []
        for line in source:
            batch.append(line.rstrip("\r\n"))
            if len(batch) >= args.batch_size:
                done += _classify_batch(classifier, batch, out)
                batch = []
                batches += 1
                if batches % 10 == 0:
                    print(f"classified {done} texts", file=sys.stderr)
        if batch:
            done += _classify_batch(classifier, batch, out)
    elapsed = time.monotonic() - loaded
    print(f"classified {done} texts in {elapsed:.1f}s ({done / max(elapsed, 1e-9):.0f} texts/s) "
          f"with {classifier.model_id}", file=sys.stderr)
    return 0


def _classify_batch(classifier, lines: list[str], out) -> int:
    """Write one JSON line per input line, in order; returns how many texts were classified."""
    texts = [line for line in lines if line.strip()]
    results = iter(classifier.classify(texts) if texts else [])
    for line in lines:
        if not line.strip():
            out.write(orjson.dumps({"error": "empty line: nothing to classify"}) + b"\n")
            continue
        result = next(results)
        out.write(
            orjson.dumps({"label": result.label, "score": round(result.score, 4), "probabilities": result.probabilities})
            + b"\n"
        )
    out.flush()
    return len(texts)


def cmd_stories(args: argparse.Namespace, settings: Settings) -> int:
    from .stories.offline import assign_file, reporter

    embedder = None
    if not args.copies_only:
        from .sentiment.build import prepare_default_model
        from .sentiment.classify import load_classifier

        prepare_default_model(settings.data_dir, threads=settings.threads)
        embedder = load_classifier("default", data_dir=settings.data_dir, threads=settings.threads).embedder
    started = time.monotonic()
    try:
        source = open(args.file, encoding="utf-8", errors="replace") if args.file != "-" else sys.stdin
    except OSError as exc:
        print(f"ascolta stories: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    with source:
        done, errors = assign_file(source, sys.stdout.buffer, embedder, reporter())
    elapsed = time.monotonic() - started
    print(f"assigned stories to {done} mentions in {elapsed:.1f}s ({done / max(elapsed, 1e-9):.0f}/s)"
          + (f"; {errors} lines were no mention (error objects written in their place)" if errors else ""),
          file=sys.stderr)
    return 1 if errors else 0


def cmd_detect(args: argparse.Namespace, settings: Settings) -> int:
    from .detection.detector import DetectorConfig
    from .detection.offline import run_detect

    return run_detect(Path(args.file), sys.stdout, DetectorConfig(bucket_seconds=args.bucket_seconds),
                      settings.brand_state_horizon_s)


def cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    from .sentiment.build import prepare_default_model

    path = prepare_default_model(settings.data_dir, force=args.force, threads=settings.threads)
    print(path)
    return 0


def cmd_sample(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime, timedelta, timezone

    from .tools.sample import generate, write_jsonl

    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=args.hours)
    records = generate(start, hours=args.hours, seed=args.seed)
    write_jsonl(records, Path(args.out) if args.out else sys.stdout)
    print(f"wrote {len(records)} mentions", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ascolta", description="Mention stream processor: multilingual sentiment and crisis alerts on Kafka."
    )
    parser.add_argument("--log-level", default=None,
                        choices=["debug", "info", "warning", "error"],
                        help="log level (logs go to stderr; env ASCOLTA_LOG_LEVEL, default info)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("broker", help="run the embedded Kafka-protocol broker (Tansu) in the foreground")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback only)")
    p.add_argument("--port", type=int, default=9092)
    p.set_defaults(func=cmd_broker)

    p = commands.add_parser("worker", help="run a Faust worker (ingest, enrich, detect, metrics)")
    p.add_argument("--broker", help="Kafka bootstrap URL, e.g. kafka://host:9092 (env ASCOLTA_BROKER)")
    p.add_argument("--broker-compat", choices=["kafka", "tansu"],
                   help="turn on the embedded broker's workarounds (env ASCOLTA_BROKER_COMPAT)")
    p.add_argument("--web-port", type=int, help="port of the worker's web server and /metrics (env ASCOLTA_WEB_PORT)")
    p.add_argument("--data-dir", help="models and worker state (env ASCOLTA_DATA_DIR)")
    p.add_argument("--loglevel", default="info", help="Faust worker log level")
    p.set_defaults(func=cmd_worker)

    p = commands.add_parser("replay", help="produce mentions from a JSON-lines file to the raw topic")
    p.add_argument("file", help="JSON lines, one mention per line")
    p.add_argument("--speed", type=float, default=None,
                   help="replay the original timing this many times faster (default: as fast as possible)")
    p.add_argument("--topic", help="target topic (default: the first raw topic)")
    p.add_argument("--broker", help="Kafka bootstrap URL (env ASCOLTA_BROKER)")
    p.add_argument("--rebase-now", action="store_true", help="shift created_at so the stream ends now")
    p.set_defaults(func=cmd_replay)

    p = commands.add_parser("demo", help="broker + worker + sample stream, alerts printed live")
    p.add_argument("--duration", type=float, default=None, help="stop cleanly after this many seconds")
    p.add_argument("--hours", type=float, default=24.0, help="hours of sample stream to replay (default: 24)")
    p.add_argument("--port", type=int, default=None, help="broker port (default: a free one)")
    p.add_argument("--data-dir", default=None, help="models and worker state (env ASCOLTA_DATA_DIR)")
    p.add_argument("--webhook-url", default=None,
                   help="also deliver signed alerts to this URL (env ASCOLTA_WEBHOOK_URL; secret from "
                        "ASCOLTA_WEBHOOK_SECRET, else 'ascolta-demo'); see docs/alerting.md")
    p.set_defaults(func=cmd_demo)

    p = commands.add_parser("classify", help="sentiment of one text per line (FILE or stdin), JSON lines out")
    p.add_argument("file", nargs="?", help="input file (default: stdin)")
    p.add_argument("--model", help="'default' or a Hugging Face model name or path (env ASCOLTA_SENTIMENT_MODEL)")
    p.add_argument("--batch-size", type=int, default=1024,
                   help="lines read per step; each step is sorted by length and run in sub-batches of 32 "
                        "(larger steps pad less), and its results are written in input order (default 1024)")
    p.set_defaults(func=cmd_classify)

    p = commands.add_parser(
        "stories", help="story of each mention (JSON lines in, the same lines with 'story' out, in order)",
        description="Assign stories as the enrich stage does: copies of one post share a story and say which "
                    "mention they copy; similar mentions (any language) share one too. Exit status: 0, 1 when "
                    "some lines were no mention (an error object stands in their place), 2 when FILE cannot be read.")
    p.add_argument("file", help="JSON lines of mentions (id, brand, text, created_at), or - for stdin")
    p.add_argument("--copies-only", action="store_true",
                   help="no model: group copies and quotes only (much faster; no same-story grouping)")
    p.set_defaults(func=cmd_stories)

    p = commands.add_parser("detect", help="run the crisis detector offline on a volume CSV or mention JSON lines")
    p.add_argument("file", help="CSV 'timestamp,value' or JSON lines of mentions")
    p.add_argument("--bucket-seconds", type=int, default=300)
    p.set_defaults(func=cmd_detect)

    p = commands.add_parser("model", help="prepare the default sentiment model (convert, export, verify)")
    p.add_argument("--data-dir", help="where to put it (env ASCOLTA_DATA_DIR)")
    p.add_argument("--force", action="store_true", help="rebuild even if present")
    p.set_defaults(func=cmd_model)

    p = commands.add_parser("sample", help="write the bundled sample stream as JSON lines")
    p.add_argument("--hours", type=float, default=36.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", help="output file (default: stdout)")
    p.set_defaults(func=cmd_sample)
    return parser


# Flags that set a Settings field, by the field's name (the same flag on several commands means the same).
SETTINGS_FLAGS = ("broker", "broker_compat", "web_port", "data_dir", "log_level")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_environ(**{name: getattr(args, name, None) for name in SETTINGS_FLAGS})
    except ValueError as exc:
        print(f"ascolta {args.command}: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings.log_level)
    try:
        return args.func(args, settings)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (FileNotFoundError, ValueError) as exc:
        print(f"ascolta {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
