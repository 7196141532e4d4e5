"""Keras' own BatchNormalization tests, ported to run on both BN implementations.

Source: keras-team/keras, keras/src/layers/normalization/batch_normalization_test.py (as
installed with Keras 3.15). Each case runs for impl "keras" (keras_batch_norm: Keras'
layer) and "scratch" (bnexp.model.bn.BatchNorm), with Keras' arguments, its test helpers
(keras.src.testing.TestCase: run_layer_test, assertAllClose) and its tolerances.

Ported: test_bn_basics, test_correctness (its masking tail apart), test_trainable_behavior,
test_large_value_within_autocast_scope, test_serialization (without renorm).
Masking (scratch skipped, no config here produces a mask; Keras runs): the masking tail
of test_correctness, test_input_fully_masked, test_bachnorm_ignore_masked_values,
test_masked_broadcast_normalization.
Not ported: test_renorm_basics, test_renorm_invalid_clipping_keys,
test_renorm_stddev_initializer, test_renorm_inference, test_renorm_correctness: Batch
Renormalization is Keras-only, not an argument of the scratch layer nor of any config.
Added here, in Keras' style: integer inputs, large values in a mixed_float16 layer,
initializers given as objects and dicts, regularizer losses, constraints, axis=1.
"""

from functools import partial

import numpy as np
import pytest
import tensorflow as tf
from keras.src import backend, layers, ops, testing
from keras.src.losses import MeanSquaredError
from keras.src.models import Model
from tensorflow import keras

from bnexp.model.bn import BEHAVIOURS, BatchNorm, batch_norm_numpy, keras_batch_norm

IMPLS = ["keras", "scratch"]
NO_MASKING = "the scratch layer has no masking: no bnexp config produces a mask"


def make(impl, **kwargs):
    return BatchNorm(**kwargs) if impl == "scratch" else keras_batch_norm(**kwargs)


@pytest.fixture
def kt():
    """Keras' TestCase, for its assertions and run_layer_test."""
    return testing.TestCase()


# --- ported cases ---------------------------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
def test_bn_basics(kt, impl):
    masking = impl == "keras"  # Keras' layer supports masking, the scratch one does not
    common = dict(call_kwargs={"training": True}, expected_num_non_trainable_weights=2,
                  expected_num_seed_generators=0, supports_masking=masking)
    # vector case
    kt.run_layer_test(partial(make, impl), init_kwargs={"center": True, "scale": True},
                      input_shape=(2, 3), expected_output_shape=(2, 3),
                      expected_num_trainable_weights=2, expected_num_losses=0, **common)
    kt.run_layer_test(partial(make, impl), init_kwargs={"center": False, "scale": False},
                      input_shape=(2, 3), expected_output_shape=(2, 3),
                      expected_num_trainable_weights=0, expected_num_losses=0, **common)
    # image case, with regularizers
    kt.run_layer_test(
        partial(make, impl),
        init_kwargs={"center": True, "scale": True, "beta_regularizer": "l2",
                     "gamma_regularizer": "l2"},
        input_shape=(2, 4, 4, 3), expected_output_shape=(2, 4, 4, 3),
        expected_num_trainable_weights=2, expected_num_losses=2, **common)  # 2 regularizers


def trained_for_correctness(impl, axis, input_shape, moving_mean_initializer,
                            moving_variance_initializer, seed=0):
    """test_correctness' training: three steps at momentum 0, each on the last output."""
    layer = make(impl, axis=axis, momentum=0,
                 moving_mean_initializer=moving_mean_initializer,
                 moving_variance_initializer=moving_variance_initializer)
    # Random data centered on 5.0, variance 10.0
    x = np.random.default_rng(seed).normal(loc=5.0, scale=10.0, size=input_shape)
    out = x
    for _ in range(3):
        out = layer(out, training=True)
    return layer, x, out


CORRECTNESS = pytest.mark.parametrize(
    "axis, input_shape, moving_mean_initializer, moving_variance_initializer",
    [(axis, shape, mean, var) for axis in (-1, 1) for shape in ((5, 2, 3), (5, 3, 3, 2))
     for mean in ("zeros", "ones") for var in ("zeros", "ones")])


@pytest.mark.parametrize("impl", IMPLS)
@CORRECTNESS
def test_correctness(kt, impl, axis, input_shape, moving_mean_initializer,
                     moving_variance_initializer):
    layer, x, out = trained_for_correctness(impl, axis, input_shape, moving_mean_initializer,
                                            moving_variance_initializer)
    # Assert the normalization is correct.
    broadcast_shape = [1] * len(input_shape)
    broadcast_shape[axis] = input_shape[axis]
    out = backend.convert_to_numpy(out)
    out = out - np.reshape(backend.convert_to_numpy(layer.beta), broadcast_shape)
    out = out / np.reshape(backend.convert_to_numpy(layer.gamma), broadcast_shape)

    reduction_axes = list(range(len(input_shape)))
    del reduction_axes[axis]
    reduction_axes = tuple(reduction_axes)
    kt.assertAllClose(np.mean(out, axis=reduction_axes), 0.0, atol=1e-3)
    kt.assertAllClose(np.std(out, axis=reduction_axes), 1.0, atol=1e-3)
    kt.assertAllClose(layer.moving_mean, 0.0, atol=1e-3)
    kt.assertAllClose(layer.moving_variance, 1.0, atol=1e-3)

    # Inference done before training shouldn't match.
    inference_out = layer(x, training=False)
    training_out = layer(x, training=True)
    kt.assertNotAllClose(inference_out, training_out)

    # Since momentum is zero, inference after training should match.
    training_out = layer(x, training=True)
    inference_out = layer(x, training=False)
    kt.assertAllClose(inference_out, training_out)


@pytest.mark.parametrize("impl", IMPLS)
@CORRECTNESS
def test_correctness_masked_tail(kt, impl, axis, input_shape, moving_mean_initializer,
                                 moving_variance_initializer):
    if impl == "scratch":
        pytest.skip(NO_MASKING)
    layer, x, _ = trained_for_correctness(impl, axis, input_shape, moving_mean_initializer,
                                          moving_variance_initializer)
    layer(x, training=True)
    # Masked result with no training should not differ
    x[:, 1, :] = 0.0
    unmasked_out = layer(x, training=False)
    masked = layers.Masking()(x)
    masked_out = layer(masked, training=False)
    kt.assertAllClose(unmasked_out, masked_out)

    # Masked result should differ from unmasked result
    unmasked_out = layer(x, training=False)
    x[:, 1, :] = 0.0
    masked = layers.Masking()(x)
    masked_out = layer(masked, training=True)
    kt.assertNotAllClose(unmasked_out, masked_out)


@pytest.mark.parametrize("impl", IMPLS)
def test_input_fully_masked(kt, impl):
    if impl == "scratch":
        pytest.skip(NO_MASKING)
    norm = make(impl, scale=False, center=False)
    x = np.zeros((4, 5))
    mask = np.zeros((4,), dtype=np.float32)
    y = norm(x, mask=mask, training=True)
    kt.assertAllClose(y, np.zeros_like(x, dtype=np.float32))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("run_eagerly", [True, False])
@pytest.mark.parametrize("mask_value", [0.0, 0.1, 1])
def test_bachnorm_ignore_masked_values(kt, impl, run_eagerly, mask_value):
    if impl == "scratch":
        pytest.skip(NO_MASKING)
    padded_data = np.array([[[1, 5], [2, 5], [mask_value, mask_value], [mask_value, mask_value]]
                            for _ in range(10)], dtype="float32")
    inputs = layers.Input((None, 2))
    masked = layers.Masking(mask_value=mask_value)(inputs)
    normed = make(impl, momentum=0.0)(masked)
    model = Model(inputs, normed)
    model.compile("rmsprop", loss=MeanSquaredError(), run_eagerly=run_eagerly)
    model.fit(x=padded_data, y=padded_data, batch_size=10, epochs=5, verbose=0)
    kt.assertAllClose(model.layers[2].moving_mean, [1.5, 5.0])
    kt.assertAllClose(model.layers[2].moving_variance, [0.25, 0.0])


@pytest.mark.parametrize("impl", IMPLS)
def test_trainable_behavior(kt, impl):
    layer = make(impl, axis=-1, momentum=0.8, epsilon=1e-7)
    layer.build((1, 4, 4, 3))
    layer.trainable = False
    assert len(layer.weights) == 4
    assert len(layer.trainable_weights) == 0
    assert len(layer.non_trainable_weights) == 4

    # Random data centered on 5.0, variance 10.0
    x = np.random.default_rng(0).normal(loc=5.0, scale=10.0, size=(200, 4, 4, 3))

    out = layer(x, training=True)
    kt.assertAllClose(out, x)

    layer.trainable = True
    assert len(layer.weights) == 4
    assert len(layer.trainable_weights) == 2
    assert len(layer.non_trainable_weights) == 2

    for _ in range(10):
        out = layer(x, training=True)

    out = backend.convert_to_numpy(out)
    out = out - np.reshape(backend.convert_to_numpy(layer.beta), (1, 1, 1, 3))
    out = out / np.reshape(backend.convert_to_numpy(layer.gamma), (1, 1, 1, 3))

    kt.assertAllClose(np.mean(out, axis=(0, 1, 2)), 0.0, atol=1e-3)
    kt.assertAllClose(np.std(out, axis=(0, 1, 2)), 1.0, atol=1e-3)


@pytest.mark.parametrize("impl", IMPLS)
def test_large_value_within_autocast_scope(kt, impl):
    layer = make(impl)
    layer.build((1, 4, 4, 3))
    # Use 70000 to trigger overflow for float16
    large_value = ops.full(layer.moving_variance.shape, 70000)
    with backend.AutocastScope("float16"):
        layer.moving_variance.assign(large_value)
        kt.assertAllClose(layer.moving_variance.value, large_value)


@pytest.mark.parametrize("impl", IMPLS)
def test_masked_broadcast_normalization(kt, impl):
    if impl == "scratch":
        pytest.skip(NO_MASKING)
    x = ops.ones((1, 2, 3, 4))
    mask = ops.ones((1, 2, 1))
    layer = make(impl, axis=-1, momentum=0.0, epsilon=1e-3)
    y = layer(x, training=True, mask=mask)
    mean_y = ops.mean(y, axis=[0, 1, 2])
    kt.assertAllClose(mean_y, ops.zeros((4,)), atol=1e-6)
    kt.assertAllClose(y, ops.zeros_like(y), atol=1e-6)
    kt.assertAllClose(layer.moving_mean, ops.ones((4,)), atol=1e-6)
    kt.assertAllClose(layer.moving_variance, ops.zeros((4,)), atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
def test_serialization(impl):
    layer = make(impl, axis=1, momentum=0.9, epsilon=1e-4, center=False,
                 gamma_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=3),
                 moving_variance_initializer={"class_name": "Constant", "config": {"value": 2.0}},
                 gamma_regularizer="l2", gamma_constraint="non_neg")
    config = layer.get_config()
    new_layer = type(layer).from_config(config)
    assert new_layer.get_config() == config


# --- in Keras' style, beyond its file -------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", ["int32", "uint8"])
def test_integer_inputs_are_normalized_in_float32(kt, impl, dtype):
    """Keras casts integer inputs to float32 (result_type(int, float32)); so does scratch."""
    x = np.random.default_rng(0).integers(0, 200, size=(16, 4, 4, 3)).astype(dtype)
    for training in (True, False, True):
        by_int, by_float = make(impl, momentum=0.5), make(impl, momentum=0.5)
        y = by_int(x, training=training)
        assert backend.standardize_dtype(y.dtype) == "float32"
        kt.assertAllClose(y, by_float(x.astype("float32"), training=training))
        kt.assertAllClose(by_int.moving_variance, by_float.moving_variance)
    kt.run_layer_test(partial(make, impl), init_kwargs={}, input_shape=(2, 4, 4, 3),
                      input_dtype=dtype, call_kwargs={"training": True},
                      expected_output_shape=(2, 4, 4, 3), expected_output_dtype="float32",
                      expected_num_trainable_weights=2, expected_num_non_trainable_weights=2)


@pytest.mark.parametrize("impl", IMPLS)
def test_large_values_in_a_mixed_float16_layer(kt, impl):
    """A variance of ~1e6 overflows float16 (max 65504): statistics are taken in float32,
    weights stay float32, the output is float16 and finite."""
    x = np.random.default_rng(0).normal(0.0, 1000.0, size=(64, 3)).astype("float16")
    layer = make(impl, momentum=0.0, dtype="mixed_float16")
    y = layer(x, training=True)
    assert backend.standardize_dtype(y.dtype) == "float16"
    assert [backend.standardize_dtype(w.dtype) for w in layer.weights] == ["float32"] * 4
    assert np.all(np.isfinite(backend.convert_to_numpy(y)))
    expected, _, var = batch_norm_numpy(x.astype("float64"), 1.0, 0.0, 0.0, 1.0, momentum=0.0,
                                        epsilon=1e-3, training=True)
    kt.assertAllClose(layer.moving_variance, var, rtol=1e-5)
    assert var.min() > 65504
    kt.assertAllClose(y, expected, atol=5e-3, rtol=1e-3)  # float16 output rounding


def test_both_implementations_agree_on_initializers_losses_and_constraints(kt):
    kwargs = dict(gamma_initializer=keras.initializers.RandomNormal(1.0, 0.5, seed=7),
                  beta_initializer={"class_name": "RandomUniform",
                                    "config": {"minval": -1.0, "maxval": 1.0, "seed": 8}},
                  moving_mean_initializer="ones",
                  moving_variance_initializer={"class_name": "Constant",
                                               "config": {"value": 3.0}},
                  gamma_regularizer=keras.regularizers.L2(0.1), beta_regularizer="l1",
                  gamma_constraint="non_neg")
    pair = [make(impl, **kwargs) for impl in IMPLS]
    for layer in pair:
        layer.build((None, 6))
    for a, b in zip(*(layer.weights for layer in pair), strict=True):
        assert a.name == b.name
        kt.assertAllClose(a, b)
    kt.assertAllClose(pair[1].moving_variance, np.full(6, 3.0))
    x = np.random.default_rng(1).normal(size=(8, 6)).astype("float32")
    losses = [float(sum(ops.sum(loss) for loss in layer.losses)) for layer in pair]
    assert losses[0] > 0
    kt.assertAllClose(losses[0], losses[1], rtol=1e-6)
    for layer in pair:  # one SGD step pushing gamma below zero: the constraint clips it
        model = keras.Sequential([keras.Input((6,)), layer])
        model.compile(keras.optimizers.SGD(100.0), loss="mse")
        model.train_on_batch(x, -10.0 * x)
    assert float(ops.min(pair[0].gamma)) == 0.0
    kt.assertAllClose(pair[0].gamma, pair[1].gamma, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_axis_1_equals_numpy_and_keras_with_gradients(kt, behaviour):
    """NCHW-like input normalized per channel on axis 1, every behaviour, both modes."""
    shape, rng = (6, 3, 4, 5), np.random.default_rng(2)
    pair = [make(impl, axis=1, momentum=0.7, epsilon=1e-3, behaviour=behaviour)
            for impl in IMPLS]
    gamma, beta = rng.uniform(0.5, 2.0, 3), rng.normal(size=3)
    for layer in pair:
        layer.build(shape)
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    mm, mv = np.zeros(3), np.ones(3)
    for training in (True, True, False, True, False):
        x = rng.normal(3.0, 2.0, size=shape).astype("float32")
        expected, mm, mv = batch_norm_numpy(
            x.astype("float64"), gamma, beta, mm, mv, momentum=0.7, epsilon=1e-3,
            training=training, behaviour=behaviour, axis=1)
        grads = []
        for layer in pair:
            xt = ops.convert_to_tensor(x)
            with tf.GradientTape() as tape:
                tape.watch(xt)
                y = layer(xt, training=training)
                loss = ops.sum(y * ops.arange(y.shape[-1], dtype="float32"))
            grads.append(tape.gradient(loss, [xt, layer.gamma, layer.beta]))
            kt.assertAllClose(y, expected, atol=1e-5, rtol=1e-5)
            kt.assertAllClose(layer.moving_mean, mm, atol=1e-5, rtol=1e-5)
            kt.assertAllClose(layer.moving_variance, mv, atol=1e-5, rtol=1e-5)
        for a, b in zip(*grads, strict=True):
            kt.assertAllClose(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("behaviour", BEHAVIOURS[1:])
def test_layer_basics_for_each_behaviour(kt, impl, behaviour):
    """Keras' run_layer_test (weights, serialization, symbolic call, a compiled fit step,
    mixed precision) for the non-standard behaviours; standard is test_bn_basics."""
    for training in (True, False):
        kt.run_layer_test(partial(make, impl),
                          init_kwargs={"behaviour": behaviour, "momentum": 0.9},
                          input_shape=(4, 3, 3, 2), call_kwargs={"training": training},
                          expected_output_shape=(4, 3, 3, 2), expected_num_trainable_weights=2,
                          expected_num_non_trainable_weights=2, expected_num_losses=0,
                          run_training_check=training)


def test_fault_layer_basics(kt):
    kt.run_layer_test(BatchNorm, init_kwargs={"fault": "mxnet_moving_average"},
                      input_shape=(4, 3), call_kwargs={"training": True},
                      expected_output_shape=(4, 3), expected_num_trainable_weights=2,
                      expected_num_non_trainable_weights=2)
