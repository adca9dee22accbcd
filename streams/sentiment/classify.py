"""Multilingual sentiment classification for mentions: negative / neutral / positive with probabilities.

The default model is multilingual-e5-small (converted offline by :mod:`streams.sentiment.build`), fine-tuned for
sentiment by a committed LoRA adapter merged at build time (``streams/assets/sentiment_adapter.npz``), with a
small logistic-regression head; both are trained on UMSAB tweets in 8 languages (``streams/assets/``).
It runs on ONNX Runtime int8 by default; ``runtime="torch"`` runs the fp32 transformers model as a reference.
Any other ``name_or_path`` loads a transformers sequence-classification model whose labels are mapped onto
the three classes.

Throughput choices: texts are deduplicated inside a call, sorted by token length and batched so padding is
small, then put back in input order. Inputs are truncated to ``MAX_TOKENS`` tokens (128, including the e5
"query: " prefix and the two special tokens): ample for posts and reviews; for long articles only the
opening counts. Both runtimes use one intra-op thread per available core. The int8 graph quantises
activations at fixed calibrated scales (see :mod:`.build`), so a text's result does not depend on the texts it
is batched with or on padding.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .layout import HEAD_ASSET, QUERY_PREFIX, asset_path, find_ready_model

LABELS = ("negative", "neutral", "positive")
MAX_TOKENS = 128
BATCH_SIZE = 32
RUNTIMES = ("onnx", "torch")


@dataclass(frozen=True)
class Sentiment:
    label: str
    probabilities: dict[str, float]
    score: float  # P(positive) - P(negative), in [-1, 1]

    @classmethod
    def from_probabilities(cls, probabilities: Sequence[float]) -> Sentiment:
        values = [float(p) for p in probabilities]
        return cls(
            label=LABELS[int(np.argmax(values))],
            probabilities=dict(zip(LABELS, values)),
            score=values[2] - values[0],
        )


def cgroup_cpu_limit(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """Whole CPUs allowed by a cgroup v2 CPU quota (a Kubernetes CPU limit), None when unlimited or unknown."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, int(int(quota) // int(period)))


def available_cores(threads: int | None = None) -> int:
    """Threads for the model: ``threads`` if given (``Settings.threads``, ASCOLTA_THREADS), else the CPUs this
    process may use.

    Counts the affinity mask (taskset, cpusets) and a cgroup CPU quota: under a Kubernetes CPU limit the
    node's core count would start far more threads than the pod may run.
    """
    if threads:
        return max(1, threads)
    cores = len(os.sched_getaffinity(0))
    limit = cgroup_cpu_limit()
    return min(cores, limit) if limit else cores


def length_batches(lengths: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
    """Indices grouped into batches of similar length, so each batch pads to little more than its longest."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def padded(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Token id lists -> (ids, attention mask), int64, right-padded to the longest; the encoder's input."""
    width = max(len(ids) for ids in sequences)
    ids = np.full((len(sequences), width), pad_id, np.int64)
    mask = np.zeros((len(sequences), width), np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1
    return ids, mask


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class SentimentClassifier:
    """Shared behaviour: dedupe texts, compute class probabilities once per distinct text, keep input order."""

    model_id: str
    version: str
    languages: frozenset[str]  # ISO 639-1 codes the model was trained/evaluated on; empty = unknown

    def classify(self, texts: list[str]) -> list[Sentiment]:
        distinct = list(dict.fromkeys(texts))
        if not distinct:
            return []
        probabilities = self.probabilities(distinct)
        by_text = {text: Sentiment.from_probabilities(row) for text, row in zip(distinct, probabilities)}
        return [by_text[text] for text in texts]

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """[len(texts), 3] probabilities in LABELS order."""
        raise NotImplementedError

    def classify_embedded(self, texts: list[str]) -> tuple[list[Sentiment], np.ndarray | None]:
        """:meth:`classify` plus the sentence embeddings behind it ([len(texts), dim], input order), so story
        assignment reuses the encoder's output at no extra cost; None for a model that has none to give."""
        return self.classify(texts), None


# --------------------------------------------------------------------------- default: e5-small + head


@dataclass(frozen=True)
class LinearHead:
    """softmax(embedding @ weights.T + bias), trained by scripts/train_sentiment_head.py."""

    weights: np.ndarray  # [3, dim]
    bias: np.ndarray  # [3]
    metadata: dict

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        spec = json.loads(path.read_text())
        if tuple(spec["labels"]) != LABELS:
            raise ValueError(f"{path}: head labels {spec['labels']} != {LABELS}")
        return cls(np.asarray(spec["weights"], np.float32), np.asarray(spec["bias"], np.float32), spec["metadata"])

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        return softmax(embeddings @ self.weights.T + self.bias)


def _onnx_embedder(model_dir: Path, threads: int | None) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = available_cores(threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle intra-op threads sleep instead of spinning: in a worker the event loop, the other stages and often
    # the broker share these cores. Measured on 2 busy cores: 15.4 instead of 23.4 ms of CPU per text.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        str(model_dir / "onnx" / "encoder.int8.onnx"), options, providers=["CPUExecutionProvider"]
    )
    return lambda ids, mask: session.run(None, {"input_ids": ids, "attention_mask": mask})[0]


def _torch_embedder(model_dir: Path, threads: int | None) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    import torch
    from transformers import BertModel

    torch.set_num_threads(available_cores(threads))
    pooled = pooled_encoder(
        BertModel.from_pretrained(model_dir / "hf", add_pooling_layer=False, local_files_only=True)
    )

    def embed(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return pooled(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()

    return embed


def pooled_encoder(model):
    """Wrap the encoder as ``(input_ids, attention_mask) -> L2-normalised mean of token states`` (e5 pooling)."""
    import torch

    class PooledEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = model

        def forward(self, input_ids, attention_mask):
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=-1)

    return PooledEncoder().eval()


class E5Embedder:
    """multilingual-e5-small sentence embeddings: "query: " prefix, mean pooled, L2-normalised."""

    def __init__(self, model_dir: Path, runtime: str = "onnx", threads: int | None = None):
        from tokenizers import Tokenizer

        self.model_dir = model_dir
        self.runtime = runtime
        self.tokenizer = Tokenizer.from_file(str(model_dir / "hf" / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.pad_id = self.tokenizer.token_to_id("<pad>")
        self.dim = json.loads((model_dir / "hf" / "config.json").read_text())["hidden_size"]
        self._embed = (_onnx_embedder if runtime == "onnx" else _torch_embedder)(model_dir, threads)

    def __call__(self, texts: list[str]) -> np.ndarray:
        """[len(texts), dim] embeddings, in input order."""
        encodings = self.tokenizer.encode_batch([QUERY_PREFIX + text for text in texts])
        embeddings = np.zeros((len(texts), self.dim), np.float32)
        for batch in length_batches([len(e.ids) for e in encodings], BATCH_SIZE):
            embeddings[batch] = self._embed(*padded([encodings[i].ids for i in batch], self.pad_id))
        return embeddings


class DefaultClassifier(SentimentClassifier):
    """e5-small embeddings + the committed linear head."""

    def __init__(self, embedder: E5Embedder, head: LinearHead):
        self.embedder = embedder
        self.head = head
        self.model_id = head.metadata["model_id"]
        precision = "onnx-int8" if embedder.runtime == "onnx" else "torch-fp32"
        self.version = f"{head.metadata['version']}-{precision}"
        self.languages = frozenset(head.metadata["languages"])

    def probabilities(self, texts: list[str]) -> np.ndarray:
        return self.head(self.embedder(texts))

    def classify_embedded(self, texts: list[str]) -> tuple[list[Sentiment], np.ndarray | None]:
        distinct = list(dict.fromkeys(texts))
        if not distinct:
            return [], None
        embeddings = self.embedder(distinct)
        sentiments = [Sentiment.from_probabilities(row) for row in self.head(embeddings)]
        rows = {text: row for row, text in enumerate(distinct)}
        order = [rows[text] for text in texts]
        return [sentiments[row] for row in order], embeddings[order]


def load_default(model_dir: Path, *, runtime: str = "onnx", threads: int | None = None) -> DefaultClassifier:
    """The default classifier from an already prepared model directory (see :mod:`.layout`); local files only."""
    head = LinearHead.load(asset_path(HEAD_ASSET))
    return DefaultClassifier(E5Embedder(model_dir, runtime, threads), head)


# --------------------------------------------------------------------------- any transformers classifier


def label_mapping(id2label: dict[int, str]) -> np.ndarray:
    """[n_labels, 3] matrix that sums a model's class probabilities into negative/neutral/positive.

    Understands negative/neutral/positive names (any case, abbreviations like "neg"), LABEL_0..2 as
    negative/neutral/positive for 3-class models (the cardiffnlp convention), LABEL_0/1 as negative/positive,
    and 1-5 star ratings (1-2 negative, 3 neutral, 4-5 positive).
    """
    names = [str(id2label[i]).strip().lower() for i in range(len(id2label))]
    mapping = np.zeros((len(names), 3), np.float32)
    generic = all(name == f"label_{i}" for i, name in enumerate(names))
    stars = [name.split()[0] for name in names]
    if all(name.startswith(("neg", "neu", "pos")) for name in names):
        for i, name in enumerate(names):
            mapping[i, ("neg", "neu", "pos").index(name[:3])] = 1.0
    elif generic and len(names) in (2, 3):
        for i in range(len(names)):
            mapping[i, i if len(names) == 3 else 2 * i] = 1.0
    elif len(names) == 5 and (generic or stars == ["1", "2", "3", "4", "5"]):
        for i, column in enumerate((0, 0, 1, 2, 2)):
            mapping[i, column] = 1.0
    else:
        raise ValueError(f"cannot map labels {names} onto negative/neutral/positive")
    return mapping


class TransformersClassifier(SentimentClassifier):
    """A transformers sequence-classification model (torch), its labels mapped onto the three classes."""

    def __init__(self, name_or_path: str, threads: int | None = None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        local = Path(name_or_path).expanduser().is_dir()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local)
            self.model = AutoModelForSequenceClassification.from_pretrained(name_or_path, local_files_only=local)
        except OSError as error:
            where = "the directory" if local else "the local Hugging Face cache, and names need the hub (network)"
            raise FileNotFoundError(
                f"sentiment model {name_or_path!r} not found in {where}; pass 'default', a local directory "
                f"with a transformers sequence-classification model, or a hub name with network access: {error}"
            ) from error
        torch.set_num_threads(available_cores(threads))
        self.model.eval()
        self.mapping = label_mapping(self.model.config.id2label)
        self.model_id = name_or_path
        self.version = getattr(self.model.config, "_commit_hash", None) or "local"
        self.languages = frozenset()

    def probabilities(self, texts: list[str]) -> np.ndarray:
        import torch

        lengths = [len(ids) for ids in self.tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]]
        out = np.empty((len(texts), 3), np.float32)
        for batch in length_batches(lengths, BATCH_SIZE):
            inputs = self.tokenizer(
                [texts[i] for i in batch], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            )
            with torch.inference_mode():
                logits = self.model(**inputs).logits.float().numpy()
            out[batch] = softmax(logits) @ self.mapping
        return out


def load_classifier(
    name_or_path: str = "default", *, data_dir: Path, runtime: str = "onnx", threads: int | None = None
) -> SentimentClassifier:
    """``"default"``: the prepared e5-small model in ``data_dir`` (ONNX int8, or the torch reference).

    Anything else is a transformers model directory or hub name, always run with torch. Loading the default
    never touches the network; a missing preparation raises FileNotFoundError naming the command to run.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if name_or_path == "default":
        return load_default(find_ready_model(Path(data_dir)), runtime=runtime, threads=threads)
    return TransformersClassifier(name_or_path, threads)
