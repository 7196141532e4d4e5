"""Model builders: parameter counts (trainable and not) and output shapes for every placement."""

import typing

import pytest
from tensorflow import keras

from bnexp.config import BNConfig, ModelConfig
from bnexp.config.layers import INIT_NAMES, Initializer
from bnexp.model import build as models

# d2l BN-LeNet with use_bias auto: convs and hidden denses feed BN, so no bias there.
D2L_BN_LENET = {"trainable": 150 + 12 + 2400 + 32 + 30720 + 240 + 10080 + 168 + 850,
                "non_trainable": 12 + 32 + 240 + 168}
LENET_NO_BN = 156 + 2416 + 30840 + 10164 + 850


def build(**kw):
    bn = BNConfig(**kw.pop("bn", {}))
    shape = kw.pop("shape", (28, 28, 1))
    return models.build(ModelConfig(bn=bn, **kw), shape)


def names(model):
    return [layer.name for layer in model.layers]


@pytest.mark.parametrize("impl", ["keras", "scratch"])
@pytest.mark.parametrize("placement", ["none", "before", "after"])
@pytest.mark.parametrize("arch", ["lenet", "mlp"])
def test_counts_match_keras_and_output_is_logits(arch, placement, impl):
    model = build(arch=arch, bn={"placement": placement, "impl": impl})
    counts = models.param_counts(model)
    assert counts["trainable"] + counts["non_trainable"] == model.count_params()
    assert model.output_shape == (None, 10)
    assert model.layers[-1].name == "logits" and model.layers[-1].activation.__name__ == "linear"
    n_bn = sum(1 for n in names(model) if n.endswith("_bn"))
    assert n_bn == (0 if placement == "none" else 4 if arch == "lenet" else 2)


def test_the_weight_count_validate_limits_is_keras_count_for_every_shipped_config():
    """config.presets.weight_count (no TensorFlow; what `validate` checks against its
    limit) agrees with the built model's count_params."""
    import json
    from pathlib import Path

    from bnexp import config
    from bnexp.config import presets, schema

    files = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml"))
    distinct = {}
    for file in files:
        for spec in config.load(file):
            shape = schema.input_shape(spec.config.data)
            key = json.dumps([spec.config.model.model_dump(mode="json"), shape])
            distinct.setdefault(key, (spec.config, shape, file))
    for cfg, shape, file in distinct.values():
        model = models.build(cfg.model, shape)
        assert presets.weight_count(cfg) == model.count_params(), file
        keras.backend.clear_session(free_memory=False)
    assert len(distinct) > 20


def test_d2l_bn_lenet_counts_and_flatten_shape():
    model = build(bn={"impl": "scratch"})
    assert models.param_counts(model) == D2L_BN_LENET
    assert model.get_layer("flatten").output.shape[1:] == (4 * 4 * 16,)
    assert names(model)[:4] == ["conv1", "conv1_bn", "conv1_sigmoid", "pool1"]


def test_lenet_without_bn_has_biases_everywhere():
    assert models.param_counts(build(bn={"placement": "none"})) == {
        "trainable": LENET_NO_BN, "non_trainable": 0}


def test_geron_mlp_counts_bn_after_and_before():
    after = build(arch="mlp", activation="relu", bn={"placement": "after", "input": True})
    assert models.param_counts(after) == {"trainable": 268_978, "non_trainable": 2_368}
    assert after.count_params() == 271_346
    assert names(after)[:5] == ["flatten", "input_bn", "dense1", "dense1_relu", "dense1_bn"]
    before = build(arch="mlp", activation="relu", bn={"placement": "before", "input": True})
    assert models.param_counts(before)["trainable"] == 268_978 - 300 - 100  # no dense biases
    assert not before.get_layer("dense1").use_bias and after.get_layer("dense1").use_bias


def test_bn_on_conv_only_or_dense_only():
    conv = build(bn={"layers": "conv"})
    assert [n for n in names(conv) if n.endswith("_bn")] == ["conv1_bn", "conv2_bn"]
    assert conv.get_layer("dense1").use_bias and not conv.get_layer("conv1").use_bias
    dense = build(bn={"layers": "dense"})
    assert [n for n in names(dense) if n.endswith("_bn")] == ["dense1_bn", "dense2_bn"]


def test_use_bias_true_false_override_auto():
    assert build(use_bias=True).get_layer("conv1").use_bias
    assert not build(use_bias=False, bn={"placement": "none"}).get_layer("dense1").use_bias


def test_input_bn_padding_pooling_and_widths():
    model = build(bn={"input": True}, pooling="max", hidden=[32], filters=[4, 8],
                  shape=(32, 32, 1))
    assert model.get_layer("input_bn").output.shape[1:] == (32, 32, 1)
    assert type(model.get_layer("pool1")).__name__ == "MaxPooling2D"
    assert model.get_layer("flatten").output.shape[1:] == (5 * 5 * 8,)
    assert model.get_layer("dense1").units == 32


def test_layer_rows_sum_to_the_totals():
    model = build(arch="mlp", bn={"input": True})
    rows = models.layer_rows(model)
    assert sum(r["params"] for r in rows) == model.count_params()
    assert rows[0]["output_shape"] == "(None, 784)"


@pytest.mark.parametrize("name", typing.get_args(INIT_NAMES))
def test_every_initializer_name_the_config_takes_is_one_keras_knows(name):
    """The config accepts exactly these names (tests/test_config_rules.py); each must give
    a Keras initializer, bare and as {name: ...}."""
    for spec in (name, Initializer(name=name)):
        assert callable(keras.initializers.get(models.initializer(spec)))
