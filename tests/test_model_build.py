"""The committed LoRA adapter is merged into the encoder exactly: W' = W + scale * B @ A, for every adapter; int8
activation scales fixed at build time make a row's result independent of its batch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from streams.sentiment import build as model_build, layout


def tiny_bert() -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    return BertModel(config, add_pooling_layer=False).eval()


def test_merge_adds_scaled_low_rank_updates(tmp_path):
    model = tiny_bert()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    rng = np.random.default_rng(0)
    adapted = {"encoder.layer.0.attention.self.query": (16, 16), "encoder.layer.1.intermediate.dense": (32, 16)}
    arrays = {"scale": np.float32(2.0)}
    for name, (out_features, in_features) in adapted.items():
        arrays[f"{name}.lora_A"] = rng.normal(size=(4, in_features)).astype(np.float16)
        arrays[f"{name}.lora_B"] = rng.normal(size=(out_features, 4)).astype(np.float16)
    np.savez(tmp_path / "adapter.npz", **arrays)

    model_build.merge_adapter(model, tmp_path / "adapter.npz")

    for name, parameter in model.named_parameters():
        module = name.removesuffix(".weight")
        if module in adapted:
            delta = 2.0 * arrays[f"{module}.lora_B"].astype(np.float32) @ arrays[f"{module}.lora_A"].astype(np.float32)
            np.testing.assert_allclose(parameter.detach().numpy(), before[name].numpy() + delta, rtol=1e-6, atol=1e-5)
        else:
            assert torch.equal(parameter, before[name]), name


def test_an_adapter_file_without_adapters_is_refused(tmp_path):
    np.savez(tmp_path / "empty.npz", scale=np.float32(1.0))
    with pytest.raises(ValueError, match="no LoRA adapters"):
        model_build.merge_adapter(tiny_bert(), tmp_path / "empty.npz")


def test_the_committed_adapter_fits_the_default_encoder():
    adapter = np.load(layout.asset_path(layout.ADAPTER_ASSET))
    a_names = [k for k in adapter.files if k.endswith(".lora_A")]
    assert len(a_names) == 12 * 6  # every layer's q, k, v, attention output, intermediate and output projections
    for key in a_names:
        name = key.removesuffix(".lora_A")
        rank = adapter[key].shape[0]
        assert adapter[f"{name}.lora_B"].shape[1] == rank and adapter[key].dtype == np.float16


def test_a_soup_of_runs_merges_to_the_mean_of_their_updates(tmp_path):
    """scripts/train_sentiment_adapter.py averages several seeds' fine-tunes as one rank-stacked adapter."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "train_sentiment_adapter.py"
    spec = importlib.util.spec_from_file_location("train_sentiment_adapter", script)
    trainer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trainer)
    rng = np.random.default_rng(1)
    name = "encoder.layer.0.output.dense"  # 32 -> 16
    runs = [{name: (rng.normal(size=(4, 32)).astype(np.float32), rng.normal(size=(16, 4)).astype(np.float32))}
            for _ in range(3)]
    np.savez(tmp_path / "soup.npz", **trainer.soup(runs, scale=2.0))
    model = tiny_bert()
    before = model.get_parameter(f"{name}.weight").detach().clone().numpy()

    model_build.merge_adapter(model, tmp_path / "soup.npz")

    mean_update = np.mean([2.0 * b.astype(np.float16).astype(np.float32) @ a.astype(np.float16).astype(np.float32)
                           for a, b in (run[name] for run in runs)], axis=0)
    np.testing.assert_allclose(model.get_parameter(f"{name}.weight").detach().numpy(), before + mean_update,
                               rtol=1e-5, atol=1e-5)


WEIGHTS = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)


def dynamic_int8_matmul(tmp_path):
    """A [batch, 8] @ [8, 4] MatMul quantised to dynamic int8 by ONNX Runtime, as the build quantises the encoder."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights = numpy_helper.from_array(WEIGHTS, "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [weights],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), tmp_path / "fp32.onnx")
    quantize_dynamic(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", weight_type=QuantType.QInt8)
    return onnx.load(tmp_path / "int8.onnx")


def run(model, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_fixed_activation_scales_make_a_row_independent_of_its_batch(tmp_path):
    model = dynamic_int8_matmul(tmp_path)
    assert model_build.quantised_activations(model) == ["x"]
    row = np.random.default_rng(1).normal(size=(1, 8)).astype(np.float32)
    loud_neighbour = np.concatenate([row, 40 * np.ones((1, 8), np.float32)])
    # dynamic int8: the neighbour widens the batch's scale and moves the row's result
    assert not np.allclose(run(model, row)[0], run(model, loud_neighbour)[0], atol=1e-4)
    model_build.fix_activation_scales(model, {"x": [-4.0, 40.0]})
    assert model_build.quantised_activations(model) == []
    np.testing.assert_array_equal(run(model, row)[0], run(model, loud_neighbour)[0])
    np.testing.assert_allclose(run(model, row), row @ WEIGHTS, atol=0.5)  # still the product, at int8 resolution


def test_an_activation_without_a_calibrated_range_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="no calibrated range for 1 activations .*calibrate_int8.py"):
        model_build.fix_activation_scales(dynamic_int8_matmul(tmp_path), {})
