"""train.precision: mixed_bfloat16 computes the layers in bfloat16, keeps weights, BN's
statistics and the loss in float32, and trains like float32 within bfloat16's rounding."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow import keras

from bnexp import data
from bnexp.model import bn
from bnexp.training import loop
from tests.helpers import Quiet, synthetic_config


def _config(impl, precision):
    return synthetic_config(model={"bn": {"impl": impl}}, train={"epochs": 2,
                                                                 "precision": precision})


@pytest.mark.slow  # over ~2 s: out of the fast loop
@pytest.mark.parametrize("impl", ["keras", "scratch"])
def test_mixed_bfloat16_computes_in_bfloat16_and_keeps_bn_statistics_in_float32(impl):
    cfg = _config(impl, "mixed_bfloat16")
    splits = data.load(cfg.data)
    model, _ = loop.new_model(cfg, splits.input_shape)
    assert keras.config.dtype_policy().name == "float32"  # the policy is put back
    conv = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][0]
    assert conv.compute_dtype == "bfloat16" and conv.kernel.dtype == "float32"
    norms = [layer for layer in model.layers if "batch" in type(layer).__name__.lower()]
    assert norms and all(v.dtype == "float32" for layer in norms for v in layer.variables)
    rows = []
    trained = loop.fit(cfg, splits, rows.append, Quiet(), model=model)
    assert rows[-1]["test_acc"] > 0.5 and rows[-1]["train_loss"] < rows[0]["train_loss"]
    for layer in [la for la in trained.layers if la in norms or "batch" in la.name]:
        assert np.isfinite(layer.moving_variance.numpy()).all()
    # the same run in float32 ends close: bfloat16 rounds to 3 significant digits
    float32 = []
    loop.fit(_config(impl, "float32"), splits, float32.append, Quiet())
    assert abs(rows[-1]["train_loss"] - float32[-1]["train_loss"]) < 0.1
    assert abs(rows[-1]["test_acc"] - float32[-1]["test_acc"]) < 0.1


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_the_scratch_layer_keeps_a_large_variance_finite_under_a_half_precision_policy(policy):
    """A variance of 90,000 overflows float16 (max 65,504): the layer's statistics are
    computed in float32 whatever the policy, and equal NumPy's on the rounded inputs."""
    x = np.random.default_rng(0).normal(0, 300, (64, 4)).astype(np.float32)
    layer = bn.BatchNorm(momentum=0.0, epsilon=1e-3, dtype=policy)
    rounded = tf.cast(tf.cast(x, layer.compute_dtype), tf.float32).numpy()
    y = layer(tf.constant(x), training=True)
    assert y.dtype == layer.compute_dtype
    moving_variance = layer.moving_variance.numpy()
    assert layer.moving_variance.dtype == "float32" and np.isfinite(moving_variance).all()
    np.testing.assert_allclose(moving_variance, rounded.var(axis=0), rtol=1e-4)
    np.testing.assert_allclose(layer.moving_mean.numpy(), rounded.mean(axis=0),
                               rtol=1e-4, atol=1e-2)
