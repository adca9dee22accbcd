"""Macro-F1 of a sentiment model on UMSAB val, per language and mean.

    .venv/bin/python benchmarks/sentiment_accuracy.py [--runtime onnx|torch] [--model default] [--data-dir D]
    .venv/bin/python benchmarks/sentiment_accuracy.py --agreement   # ONNX int8 vs the torch fp32 reference

UMSAB (Barbieri et al. 2022) is read from ../shared/data/umsab relative to the project root (override with
--umsab); when it is absent the benchmark says so and exits 0, since the project must not depend on it.
The default model's head was fitted on UMSAB train and its C chosen on val, so val is slightly optimistic.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.sentiment import classify as sentiment
from streams.settings import DEFAULT_DATA_DIR

UMSAB_LANGUAGES = {
    "arabic": "ar", "english": "en", "french": "fr", "german": "de",
    "hindi": "hi", "italian": "it", "portuguese": "pt", "spanish": "es",
}


def read_split(folder: Path, split: str) -> tuple[list[str], np.ndarray]:
    """One UMSAB split: texts one per line, labels 0/1/2 (negative/neutral/positive), no final newline."""
    texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
    labels = np.array([int(x) for x in (folder / f"{split}_labels.txt").read_text().split()])
    if texts and texts[-1] == "" and len(texts) == len(labels) + 1:
        texts.pop()
    if len(texts) != len(labels):
        raise ValueError(f"{folder}/{split}: {len(texts)} texts but {len(labels)} labels")
    return texts, labels


def all_texts(umsab: Path, split: str) -> list[str]:
    """Every text of one split, language after language in UMSAB_LANGUAGES order."""
    return [text for language in UMSAB_LANGUAGES for text in read_split(umsab / language, split)[0]]


def macro_f1(truth: np.ndarray, predicted: np.ndarray, classes: int = 3) -> float:
    scores = []
    for c in range(classes):
        tp = np.sum((predicted == c) & (truth == c))
        fp, fn = np.sum((predicted == c) & (truth != c)), np.sum((predicted != c) & (truth == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--umsab", type=Path, default=ROOT.parent / "shared" / "data" / "umsab")
    parser.add_argument("--split", default="val")
    parser.add_argument("--model", default="default")
    parser.add_argument("--runtime", default="onnx", choices=sentiment.RUNTIMES)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ASCOLTA_DATA_DIR", DEFAULT_DATA_DIR)))
    parser.add_argument("--agreement", action="store_true",
                        help="instead: how far the default ONNX int8 runtime is from the torch fp32 reference")
    args = parser.parse_args()
    if not args.umsab.is_dir():
        print(f"UMSAB not found at {args.umsab}; skipping the sentiment accuracy benchmark")
        return 0
    if args.agreement:
        return agreement(args)

    classifier = sentiment.load_classifier(args.model, data_dir=args.data_dir, runtime=args.runtime)
    print(f"model {classifier.model_id} {classifier.version}; UMSAB {args.split} from {args.umsab}")
    label_index = {label: i for i, label in enumerate(sentiment.LABELS)}
    scores, total, started = {}, 0, time.monotonic()
    for language, code in UMSAB_LANGUAGES.items():
        texts, labels = read_split(args.umsab / language, args.split)
        predicted = np.array([label_index[r.label] for r in classifier.classify(texts)])
        scores[code] = 100 * macro_f1(labels, predicted)
        total += len(texts)
        print(f"  {code}  {language:<11} n={len(texts):<5} macro-F1 {scores[code]:5.1f}")
    print(f"  mean macro-F1 {np.mean(list(scores.values())):.2f} over {len(scores)} languages "
          f"({total} texts in {time.monotonic() - started:.0f}s)")
    return 0


def agreement(args: argparse.Namespace) -> int:
    """Labels and probabilities of the ONNX int8 runtime against the torch fp32 reference, on every val text."""
    texts = all_texts(args.umsab, args.split)
    onnx, reference = (
        np.array([[r.probabilities[k] for k in sentiment.LABELS] for r in
                  sentiment.load_classifier("default", data_dir=args.data_dir, runtime=runtime).classify(texts)])
        for runtime in ("onnx", "torch")
    )
    drift = np.abs(onnx - reference).max(axis=1)
    same = np.mean(onnx.argmax(1) == reference.argmax(1))
    print(f"ONNX int8 vs torch fp32 on {len(texts)} UMSAB {args.split} texts: same label {100 * same:.1f}%; "
          f"largest probability difference per text: median {np.median(drift):.3f}, "
          f"p99 {np.quantile(drift, 0.99):.3f}, max {drift.max():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
