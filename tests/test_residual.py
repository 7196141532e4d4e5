"""Residual blocks and the resnet preset: shapes and refusals without TensorFlow, weight
counts equal to Keras', shortcuts, SkipInit and Fixup at initialization, and every walker
(XLA pieces, precise BN, freezing) reaching inside blocks."""


import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from bnexp.analysis.features import feature_maps
from bnexp.config import Config, model_layers, validate
from bnexp.config.network import leaves, nesting
from bnexp.config.presets import weight_count
from bnexp.errors import BadInput
from bnexp.model.build import build, to_unit
from bnexp.model.residual import Residual, all_layers, call_layers, walk
from bnexp.training import recorders, xla
from bnexp.training.freezing import param_counts
from tests.helpers import FASHION_DIR, assert_same_run, needs_fashion, whole_and_resumed

pytestmark = pytest.mark.tf

RESNETS = [
    {"arch": "resnet", "depth": 8},
    {"arch": "resnet", "depth": 14, "shortcut": "pad"},
    {"arch": "resnet", "depth": 8, "residual_init": "skipinit", "bn": {"kind": "group"}},
    {"arch": "resnet", "depth": 8, "residual_init": "fixup", "bn": {"placement": "none"}},
]


def config(model: dict, **sections) -> Config:
    return validate({"model": model, **sections}, "t.yaml")


def block_list(shortcut="projection", strides=2, filters=8, scale_init=None):
    """A layer list: conv -> bn -> relu -> one residual block -> pool -> logits."""
    return {"arch": "layers", "layers": [
        {"type": "conv", "filters": 4, "kernel_size": 3, "padding": "same"},
        {"type": "bn"},
        {"type": "activation", "activation": "relu"},
        {"type": "residual", "shortcut": shortcut, "activation": "relu",
         "scale_init": scale_init, "layers": [
             {"type": "conv", "filters": filters, "kernel_size": 3, "strides": strides,
              "padding": "same", "use_bias": False},
             {"type": "bn"},
             {"type": "activation", "activation": "relu"},
             {"type": "conv", "filters": filters, "kernel_size": 3, "padding": "same"},
             {"type": "bn"}]},
        {"type": "global_avg_pool"},
        {"type": "dense", "units": 10}]}


@pytest.mark.parametrize("model", RESNETS)
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_resnet_weight_counts_equal_keras_count_params(model, shape):
    cfg = config(model)
    keras_model = build(cfg.model, shape)
    assert keras_model.count_params() == sum(param_counts(cfg, keras_model).values())
    if shape == (28, 28, 1):
        assert weight_count(cfg) == keras_model.count_params()
    convs = [layer for layer in leaves(model_layers(cfg.model)) if layer.type == "conv"]
    assert len(convs) + 1 == model["depth"]  # + the logits: depth counts weighted layers


def test_resnet20_has_he_et_als_270k_weights_with_option_a():
    """He et al. 2016, Table 6: ResNet-20 has 0.27M parameters (pad shortcut, CIFAR)."""
    cfg = config({"arch": "resnet", "depth": 20, "shortcut": "pad", "bn": {"placement": "none"}},
                 data={"dataset": "cifar10"})
    assert 0.26e6 < weight_count(cfg) < 0.28e6


@pytest.mark.parametrize("model, message", [
    ({"arch": "resnet", "depth": 9}, "depth 9: a resnet of 3 stages has depth 6n + 2 (8, 14"),
    ({"arch": "resnet", "residual_init": "fixup"}, "set bn.placement: none"),
    ({"arch": "resnet", "kernel_size": 7}, "kernel_size is lenet's"),
    ({"arch": "resnet", "bn": {"placement": "after"}}, "bn.placement: after is not a resnet's"),
    ({"arch": "lenet", "depth": 8}, "depth is for arch: resnet"),
    ({**block_list(shortcut="identity")}, "an identity shortcut needs the branch to keep"),
    ({**block_list(shortcut="pad", filters=2)}, "a pad shortcut cannot drop channels"),
])
def test_what_a_residual_model_cannot_be_is_refused_in_one_line(model, message):
    with pytest.raises(BadInput) as e:
        config(model)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_blocks_nest_up_to_their_limit_and_names_are_unique_across_them():
    inner = {"type": "dense", "units": 10}
    for _ in range(9):
        inner = {"type": "residual", "layers": [inner]}
    deep = {"arch": "layers", "layers": [{"type": "flatten"}, {"type": "dense", "units": 10},
                                         inner]}
    with pytest.raises(BadInput, match="nest 9 deep: at most 8"):
        config(deep)
    cfg = config({"arch": "layers", "layers": [
        {"type": "flatten"}, {"type": "dense", "units": 10},
        {"type": "residual", "layers": [{"type": "dense", "units": 10}]},
        {"type": "residual", "layers": [{"type": "dense", "units": 10}]}]})
    layers = model_layers(cfg.model)
    assert nesting(layers) == 1
    assert [layer.name for layer in leaves(layers)] == ["flatten1", "dense1", "dense2", "dense3"]
    assert [layer.name for layer in layers[2:]] == ["residual1", "residual2"]


@pytest.mark.parametrize("shortcut", ["projection", "pad"])
def test_a_block_adds_its_branch_to_its_shortcut(shortcut):
    cfg = config(block_list(shortcut))
    model = build(cfg.model, (8, 8, 3))
    block = next(layer for layer in model.layers if isinstance(layer, Residual))
    x = tf.random.stateless_normal((5, 8, 8, 4), seed=(1, 2))
    branch = call_layers(block.branch, x, training=False)
    if shortcut == "pad":  # He et al.'s option A, in NumPy
        shortcut_x = np.pad(x.numpy()[:, ::2, ::2], [(0, 0)] * 3 + [(0, 4)])
    else:
        shortcut_x = call_layers(block.shortcut, x, training=False).numpy()
    expected = np.maximum(branch.numpy() + shortcut_x, 0)
    np.testing.assert_allclose(block(x, training=False).numpy(), expected, atol=1e-6)
    images = tf.cast(tf.random.stateless_uniform((3, 8, 8, 3), (3, 4), 0, 255), tf.uint8)
    np.testing.assert_allclose(walk(model.layers, to_unit(images)).numpy(),
                               model(to_unit(images), training=False).numpy(), atol=1e-6)


def test_skipinit_blocks_start_as_the_identity_and_fixup_as_its_paper_says():
    model = build(config(block_list("identity", 1, 4, scale_init=0.0)).model, (8, 8, 1))
    block = model.layers[3]
    x = tf.random.stateless_normal((2, 8, 8, 4), seed=(5, 6))
    np.testing.assert_array_equal(block(x, training=True).numpy(), np.maximum(x.numpy(), 0))
    assert [w.name for w in block.branch[-1].trainable_weights] == ["scale"]

    cfg = config({"arch": "resnet", "depth": 14, "residual_init": "fixup",
                  "bn": {"placement": "none"}})
    model = build(cfg.model, (28, 28, 1))
    images = tf.cast(tf.random.stateless_uniform((4, 28, 28, 1), (7, 8), 0, 255), tf.uint8)
    np.testing.assert_array_equal(model(to_unit(images), training=True).numpy(), 0.0)
    by_name = {layer.name: layer for layer in all_layers(model.layers)}
    assert not np.any(by_name["stage2_block2_conv2"].kernel.numpy())
    first = by_name["stage3_block2_conv1"].kernel.numpy()  # 3x3x64x64, fan_out 576
    blocks = 6
    assert first.std() == pytest.approx(np.sqrt(2 / 576 / blocks), rel=0.05)
    assert {w.name for w in by_name["stage1_block1"].weights} >= {"bias", "scale"}


def test_xla_pieces_precise_bn_and_freezing_reach_inside_blocks():
    cfg = config({"arch": "resnet", "depth": 8}, train={"trainable": "norm_only"})
    model = build(cfg.model, (16, 16, 1))
    images = tf.cast(tf.random.stateless_uniform((32, 16, 16, 1), (1, 1), 0, 255), tf.uint8)
    for training in (True, False):
        plain = call_layers(model.layers, to_unit(images), training)
        pieces = xla.forward_except_conv(model)(to_unit(images), training)
        np.testing.assert_allclose(pieces.numpy(), plain.numpy(), atol=2e-4)
    recorders.precise_bn(model, images)
    drift = {row["layer"]: row for row in recorders.drift(model, images)}
    assert "stage3_block1_proj_bn" in drift and "stage2_block1_conv2_bn" in drift
    assert max(row["mean_error"] for row in drift.values()) < 1e-3
    counts = param_counts(cfg, model)
    gammas_betas = sum(layer.gamma.shape[0] * 2 for layer in leaves_bn(model))
    assert counts["trainable"] == gammas_betas and counts["frozen"] > 0


def leaves_bn(model):
    return [layer for layer in all_layers(model.layers) if recorders.is_bn(layer)]


@pytest.mark.e2e
@pytest.mark.slow
@needs_fashion
def test_a_residual_model_trains_with_precise_bn_and_drift_inside_and_resumes_bit_identical(
        tmp_path):
    """Through the installed script, on Fashion-MNIST: drift.csv lists the block's inner
    and shortcut BN layers; a run interrupted by SIGINT after its first epoch and resumed
    ends with the metrics and every checkpoint array of a run done whole."""
    cfg = tmp_path / "res.yaml"
    cfg.write_text(f"""
name: res
data: {{path: {FASHION_DIR}, limit: 600, validation_size: 100, test_limit: 200,
       batch_size: 50}}
model:
  arch: layers
  layers:
    - {{type: conv, filters: 4, kernel_size: 3, strides: 2, padding: same, use_bias: false}}
    - {{type: bn}}
    - {{type: activation, activation: relu}}
    - type: residual
      shortcut: projection
      activation: relu
      layers:
        - {{type: conv, filters: 8, kernel_size: 3, strides: 2, padding: same, use_bias: false}}
        - {{type: bn}}
        - {{type: activation, activation: relu}}
        - {{type: conv, filters: 8, kernel_size: 3, padding: same, use_bias: false}}
        - {{type: bn}}
    - {{type: residual, scale_init: 0.0, layers: [{{type: conv, filters: 8, kernel_size: 3,
        padding: same}}, {{type: bn}}]}}
    - {{type: global_avg_pool}}
    - {{type: dense, units: 10}}
optimizer: {{learning_rate: 0.1, momentum: 0.9}}
train: {{epochs: 2, steps_per_call: 4, deterministic: true, precise_bn: 300, jit_compile: false}}
diagnostics: {{drift: 300}}
""")
    whole_dir, cut = whole_and_resumed(cfg, tmp_path)
    drifted = set(pd.read_csv(whole_dir / "drift.csv")["layer"])
    assert drifted == {"bn1", "bn2", "bn3", "bn4", "residual1_proj_bn"}
    _, _, maps = feature_maps(whole_dir)  # up to global_avg_pool, blocks' sums included
    assert [name for name, _ in maps] == ["conv1", "bn1", "activation1", "residual1",
                                          "residual2"]
    assert_same_run(whole_dir, cut)
