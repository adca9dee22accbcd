"""Sentiment throughput (texts/s) at caller batch sizes 1, 32 and 128: ONNX int8 vs torch fp32, with peak RSS.

    .venv/bin/python benchmarks/sentiment_throughput.py [--data-dir D] [--texts 1024]

Then ``ascolta classify`` itself on every UMSAB val text (one file, all 8 languages, in file order): the
command's own rate after loading, its load time and wall time, and its peak RSS.

Each runtime runs in its own subprocess so peak RSS (ru_maxrss) is its own. Texts are UMSAB val tweets
when ../shared/data/umsab exists, else generated multilingual sentences; all distinct, so the per-call
deduplication does not flatter the numbers. A "batch" is how many texts the caller passes to classify();
inside a call texts are sorted by length and run in sub-batches of sentiment.BATCH_SIZE.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sentiment_accuracy import all_texts
from streams.sentiment import classify as sentiment
from streams.settings import DEFAULT_DATA_DIR

BATCH_SIZES = (1, 32, 128)
UMSAB = ROOT.parent / "shared" / "data" / "umsab"


def benchmark_texts(count: int) -> tuple[list[str], str]:
    if UMSAB.is_dir():
        texts = list(dict.fromkeys(all_texts(UMSAB, "val")))
        return [texts[(i * 7919) % len(texts)] for i in range(min(count, len(texts)))], "UMSAB val tweets"
    openings = ["Il servizio di", "The new update from", "La atención de", "Der Kundendienst von", "Le service de"]
    verdicts = ["è stato pessimo", "is absolutely great", "fue muy lento", "war hervorragend", "est correct"]
    return [f"{openings[i % 5]} brand{i} {verdicts[(i // 5) % 5]} #{i}" for i in range(count)], "generated sentences"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def measure(runtime: str, data_dir: Path, count: int) -> dict:
    """Runs inside the per-runtime subprocess."""
    texts, _ = benchmark_texts(count)
    started = time.monotonic()
    classifier = sentiment.load_classifier("default", data_dir=data_dir, runtime=runtime)
    load_s = time.monotonic() - started
    classifier.classify(texts[:32])  # warm-up: allocations, thread pool
    rates = {}
    for batch in BATCH_SIZES:
        sample = texts[: min(len(texts), 200)] if batch == 1 else texts
        started = time.monotonic()
        for start in range(0, len(sample), batch):
            classifier.classify(sample[start : start + batch])
        rates[batch] = len(sample) / (time.monotonic() - started)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"version": classifier.version, "load_s": load_s, "rates": rates, "peak_rss_mib": peak_rss_mib}


def classify_command(data_dir: Path) -> dict | None:
    """Run ``ascolta classify FILE`` over the UMSAB val texts; None without the data."""
    if not UMSAB.is_dir():
        return None
    texts = all_texts(UMSAB, "val")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "umsab-val.txt"
        path.write_text("\n".join(texts) + "\n", encoding="utf-8")
        started = time.monotonic()
        child = subprocess.run(
            [sys.executable, "-m", "streams.cli", "classify", str(path)], cwd=ROOT, capture_output=True, text=True,
            check=True, env={**os.environ, "ASCOLTA_DATA_DIR": str(data_dir)},
        )
        wall_s = time.monotonic() - started
    if len(child.stdout.splitlines()) != len(texts):
        raise RuntimeError(f"ascolta classify wrote {len(child.stdout.splitlines())} lines for {len(texts)} texts")
    loaded = re.search(r"loaded .* in ([\d.]+)s", child.stderr)
    rate = re.search(r"classified \d+ texts in [\d.]+s \((\d+) texts/s\)", child.stderr)
    return {"texts": len(texts), "load_s": float(loaded.group(1)), "rate": int(rate.group(1)), "wall_s": wall_s,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ASCOLTA_DATA_DIR", DEFAULT_DATA_DIR)))
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--runtimes", nargs="+", default=list(sentiment.RUNTIMES), choices=sentiment.RUNTIMES)
    parser.add_argument("--child", choices=sentiment.RUNTIMES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.data_dir, args.texts)))
        return 0

    import onnxruntime
    import torch

    command = classify_command(args.data_dir)  # first: RUSAGE_CHILDREN's peak RSS is then its own
    texts, source = benchmark_texts(args.texts)
    print(f"setup: {cpu_name()}, {sentiment.available_cores()} cores available, Python {platform.python_version()}, "
          f"onnxruntime {onnxruntime.__version__}, torch {torch.__version__}")
    print(f"texts: {len(texts)} distinct {source} (batch 1 uses the first 200), max {sentiment.MAX_TOKENS} tokens, "
          f"sub-batches of {sentiment.BATCH_SIZE} sorted by length")
    print(f"{'runtime':<22}{'load s':>8}" + "".join(f"{f'batch {b}':>12}" for b in BATCH_SIZES) + f"{'peak RSS':>12}")
    for runtime in args.runtimes:
        child = subprocess.run(
            [sys.executable, __file__, "--child", runtime, "--data-dir", str(args.data_dir),
             "--texts", str(args.texts)],
            capture_output=True, text=True, check=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        rates = "".join(f"{result['rates'][str(b)]:>8.1f} t/s" for b in BATCH_SIZES)
        print(f"{result['version'].rsplit('-', 2)[-2] + '-' + result['version'].rsplit('-', 1)[-1]:<22}"
              f"{result['load_s']:>8.1f}{rates}{result['peak_rss_mib']:>8.0f} MiB")
    if command:
        print(f"ascolta classify, {command['texts']} UMSAB val texts (one file): {command['rate']} texts/s after "
              f"{command['load_s']:.1f}s loading (model check included); {command['wall_s']:.1f}s wall in all, "
              f"peak RSS {command['peak_rss_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
