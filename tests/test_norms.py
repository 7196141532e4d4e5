"""Group, layer and instance norm and batch renorm: bnexp's scratch layers against Keras'
and NumPy in float64 (forward, gradients, inference, moving statistics), parameter
counts, and the config that picks them (model.bn.kind, groups, one spelling)."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow import keras

from bnexp import config
from bnexp.config import model_layers
from bnexp.config.layers import default_groups
from bnexp.config.presets import has_bn, weight_count
from bnexp.config.schema import input_shape
from bnexp.errors import ConfigError
from bnexp.model.bn import BatchNorm
from bnexp.model.build import build, param_counts
from bnexp.model.group_norm import GroupNorm, group_norm_numpy
from bnexp.training import recorders
from tests.helpers import synthetic_config

pytestmark = pytest.mark.tf
TOL = dict(rtol=1e-10, atol=1e-10)


def _pair(keras_layer, ours, x):
    """Outputs and gradients (input, then every trainable weight) of two layers on x."""
    results, weights = [], np.linspace(-1.0, 1.0, x.size).reshape(x.shape)  # not symmetric
    for layer in (keras_layer, ours):
        xv = tf.Variable(x)
        with tf.GradientTape() as tape:
            y = layer(xv, training=True)
            loss = tf.reduce_sum(y * weights)
        grads = tape.gradient(loss, [xv, *layer.trainable_weights])
        results.append((y.numpy(), [g.numpy() for g in grads]))
    return results


@pytest.mark.parametrize("shape,groups", [((4, 5, 5, 6), 3), ((4, 5, 5, 6), 1),
                                          ((4, 5, 5, 6), -1), ((6, 8), 4), ((6, 8), 1)])
def test_group_norm_equals_keras_and_numpy_in_float64(shape, groups):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, shape)
    init = dict(gamma_initializer=keras.initializers.RandomNormal(1.0, 0.5, seed=1),
                beta_initializer=keras.initializers.RandomNormal(0.0, 0.5, seed=2))
    ref = keras.layers.GroupNormalization(groups=groups, epsilon=1e-5, dtype="float64", **init)
    ours = GroupNorm(groups=groups, epsilon=1e-5, dtype="float64", **init)
    (y_ref, g_ref), (y_ours, g_ours) = _pair(ref, ours, x)
    np.testing.assert_allclose(y_ours, y_ref, **TOL)
    for a, b in zip(g_ours, g_ref, strict=True):
        np.testing.assert_allclose(a, b, **TOL)
    gamma, beta = ours.gamma.numpy(), ours.beta.numpy()
    n_groups = shape[-1] if groups == -1 else groups
    expected = group_norm_numpy(x, gamma, beta, groups=n_groups, epsilon=1e-5)
    np.testing.assert_allclose(y_ours, expected, **TOL)
    np.testing.assert_allclose(ours(x, training=False).numpy(), y_ours, **TOL)  # no modes
    assert [w.name for w in ours.weights] == [w.name for w in ref.weights] == ["gamma", "beta"]


def test_group_norm_numpy_reference_is_the_formula_by_hand():
    x = np.arange(8.0).reshape(1, 2, 4)  # 2 positions x 4 channels, 2 groups of 2 channels
    y = group_norm_numpy(x, np.ones(4), np.zeros(4), groups=2, epsilon=0.0)
    first = x[0][:, :2].ravel()  # channels 0 and 1 at both positions: 0 1 4 5
    np.testing.assert_allclose(y[0][:, :2].ravel(), (first - first.mean()) / first.std())


def _renorm_numpy(x, state, *, momentum, renorm_momentum, epsilon, rmax, rmin, dmax):
    """Ioffe 2017's batch renorm on (N, C), gamma 1 beta 0: (y, new state)."""
    mean, var = x.mean(0), x.var(0)
    stddev = np.sqrt(var + epsilon)
    sigma = np.maximum(state["renorm_stddev"], np.sqrt(epsilon))
    r = np.clip(stddev / sigma, rmin, rmax)
    d = np.clip((mean - state["renorm_mean"]) / sigma, -dmax, dmax)
    y = (x - mean) / stddev * r + d
    new = {"renorm_mean": renorm_momentum * state["renorm_mean"] + (1 - renorm_momentum) * mean,
           "renorm_stddev": renorm_momentum * state["renorm_stddev"]
           + (1 - renorm_momentum) * stddev,
           "moving_mean": momentum * state["moving_mean"] + (1 - momentum) * mean,
           "moving_stddev": momentum * state["moving_stddev"] + (1 - momentum) * stddev}
    new["moving_variance"] = np.maximum(new["moving_stddev"] ** 2 - epsilon, 0)
    return y, new


def test_renorm_equals_keras_and_numpy_over_steps_in_float64():
    rng = np.random.default_rng(1)
    clipping = {"rmax": 1.5, "rmin": 0.8, "dmax": 0.5}
    args = dict(momentum=0.9, epsilon=1e-3, renorm=True, renorm_clipping=clipping,
                renorm_momentum=0.7, dtype="float64")
    ref, ours = keras.layers.BatchNormalization(**args), BatchNorm(**args)
    names = ["moving_mean", "moving_variance", "moving_stddev", "renorm_mean",
             "renorm_stddev"]
    state = {"moving_mean": 0.0, "moving_stddev": 1.0, "renorm_mean": 0.0,
             "renorm_stddev": 1.0}
    for step in range(4):  # r and d leave 1 and 0 once the renorm statistics move
        x = rng.normal(3.0 + step, 2.0, (16, 5))
        (y_ref, g_ref), (y_ours, g_ours) = _pair(ref, ours, x)
        np.testing.assert_allclose(y_ours, y_ref, **TOL)
        for a, b in zip(g_ours, g_ref, strict=True):
            np.testing.assert_allclose(a, b, **TOL)
        y_np, state = _renorm_numpy(x, state, momentum=0.9, renorm_momentum=0.7,
                                    epsilon=1e-3, **clipping)
        np.testing.assert_allclose(y_ours, y_np, **TOL)
        # _pair ran each layer once, so each moved its statistics once
        for name in names:
            np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(ref, name).numpy(),
                                       **TOL, err_msg=name)
            np.testing.assert_allclose(getattr(ours, name).numpy(), state[name], **TOL,
                                       err_msg=name)
    np.testing.assert_allclose(ours(x, training=False).numpy(), ref(x, training=False).numpy(),
                               **TOL)
    assert [w.name for w in ours.weights] == [w.name for w in ref.weights]


def test_the_renorm_ramp_holds_plain_bn_then_relaxes_the_limits_linearly():
    layer = BatchNorm(renorm=True, renorm_clipping={"rmax": 3.0, "dmax": 5.0},
                      renorm_ramp={"hold_steps": 2, "rmax_at": 6, "dmax_at": 4})
    layer.build((None, 3))
    seen = []
    for step in range(8):
        layer.renorm.step.assign(float(step))
        rmin, rmax, dmax = (float(v) for v in layer.renorm.limits())
        seen.append((round(rmax, 6), round(dmax, 6)))
        assert rmin == pytest.approx(1 / rmax)
    assert seen == [(1, 0), (1, 0), (1, 0), (1.5, 2.5), (2, 5), (2.5, 5), (3, 5), (3, 5)]
    x = np.random.default_rng(0).normal(5.0, 3.0, (32, 3)).astype("float32")
    layer.renorm.step.assign(0.0)
    held = layer(x, training=True).numpy()  # r = 1, d = 0: plain batch norm
    np.testing.assert_allclose(held, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3), atol=1e-5)
    assert float(layer.renorm.step.numpy()) == 1.0  # a training step counts


def test_precise_bn_keeps_renorms_moving_stddev_consistent():
    cfg = synthetic_config(model={"arch": "mlp", "hidden": [8], "bn": {"kind": "renorm"}})
    model = build(cfg.model, input_shape(cfg.data))
    x = np.random.default_rng(0).integers(0, 255, (64, 28, 28, 1)).astype("uint8")
    recorders.precise_bn(model, x)
    layer = model.get_layer("dense1_bn")
    np.testing.assert_allclose(layer.moving_variance.numpy(),
                               layer.moving_stddev.numpy() ** 2 - layer.epsilon, rtol=1e-4)


@pytest.mark.parametrize("bn", [
    {"kind": "batch"}, {"kind": "renorm", "renorm_clipping": {"rmax": 3, "dmax": 5}},
    {"kind": "renorm", "impl": "scratch", "renorm_clipping": {"rmax": 3, "dmax": 5},
     "renorm_ramp": {}}, {"kind": "group"}, {"kind": "group", "impl": "scratch"},
    {"kind": "layer"}, {"kind": "instance", "layers": "conv", "impl": "scratch"}])
def test_keras_counts_the_parameters_bnexp_counts_for_every_kind(bn):
    cfg = synthetic_config(model={"arch": "lenet", "bn": bn,
                                  "dropout": {"rate": 0.2, "placement": "before_bn"}})
    model = build(cfg.model, input_shape(cfg.data))
    counts = param_counts(model)  # what `bnexp summary` shows
    assert model.count_params() == weight_count(cfg) == sum(counts.values())


def test_default_groups_never_make_one_channel_a_group():
    assert [default_groups(c) for c in (1, 2, 6, 16, 120, 84, 64, 7)] == [
        1, 1, 3, 8, 30, 28, 32, 1]
    cfg = synthetic_config(model={"bn": {"kind": "group"}})
    model = build(cfg.model, input_shape(cfg.data))
    groups = [layer.groups for layer in model.layers
              if isinstance(layer, keras.layers.GroupNormalization)]
    assert groups == [3, 8, 30, 28]  # LeNet's 6, 16, 120, 84 channels take kind: group as is


def test_one_run_one_spelling_and_settings_of_another_kind_refused():
    def h(**bn):
        return config.config_hash(synthetic_config(model={"bn": bn}))

    assert h(renorm=True) == h(kind="renorm") != h()
    assert h(kind="group", momentum=0.9) == h(kind="group")  # the default is not "set"
    for bn, message in [({"kind": "group", "momentum": 0.99}, "momentum does not apply"),
                        ({"kind": "layer", "groups": 2}, "groups does not apply"),
                        ({"renorm_momentum": 0.9}, "renorm_momentum does not apply"),
                        ({"kind": "group", "renorm": True}, "contradicts kind: group"),
                        ({"kind": "renorm", "renorm_ramp": {}}, "needs impl: scratch"),
                        ({"kind": "renorm", "behaviour": "frozen_moving_stats"}, "standard")]:
        with pytest.raises(ConfigError, match=message) as e:
            synthetic_config(model={"bn": bn})
        assert "\n" not in str(e.value)


def test_instance_norm_on_a_dense_layer_and_groups_that_do_not_divide_are_refused():
    with pytest.raises(ConfigError, match="layer dense1_bn: instance norm needs an image"):
        synthetic_config(model={"arch": "mlp", "bn": {"kind": "instance"}})
    with pytest.raises(ConfigError, match=r"model.layers\[2\] \(group_norm\): groups 4 does "
                                          "not divide the 6 channels"):
        synthetic_config(model={"arch": "layers", "layers": [
            {"type": "conv", "filters": 6, "kernel_size": 3}, {"type": "max_pool"},
            {"type": "group_norm", "groups": 4}, {"type": "flatten"},
            {"type": "dense", "units": 10}]})


def test_a_layer_lists_bn_layers_become_the_kind_and_only_batch_norm_counts_as_bn():
    layers = [{"type": "flatten"}, {"type": "dense", "units": 8}, {"type": "bn"},
              {"type": "layer_norm", "epsilon": 0.01}, {"type": "dense", "units": 10}]
    cfg = synthetic_config(model={"arch": "layers", "layers": layers, "bn": {"kind": "group"}})
    kinds = [(layer.type, getattr(layer, "epsilon", None)) for layer in model_layers(cfg.model)]
    assert kinds[2:4] == [("group_norm", 1e-5), ("layer_norm", 0.01)]
    assert not has_bn(cfg.model)  # no moving statistics: no batch-statistics evaluation
    with pytest.raises(ConfigError, match="sets momentum, which model.bn.kind: group"):
        synthetic_config(model={"arch": "layers", "bn": {"kind": "group"}, "layers": [
            {"type": "flatten"}, {"type": "bn", "momentum": 0.5}, {"type": "dense",
                                                                   "units": 10}]})
