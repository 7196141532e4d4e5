"""bnexp's scratch BN against Keras' BatchNormalization and a NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow import keras

from bnexp.model.bn import BatchNorm, batch_norm_numpy

TOL = dict(rtol=1e-5, atol=1e-5)


def pair(shape, momentum=0.9, epsilon=1e-5, center=True, scale=True, seed=0):
    """A scratch layer and a Keras layer, built on `shape`, with the same random gamma/beta."""
    kwargs = dict(momentum=momentum, epsilon=epsilon, center=center, scale=scale)
    ours, theirs = BatchNorm(**kwargs), keras.layers.BatchNormalization(**kwargs)
    for layer in (ours, theirs):
        layer.build(shape)
    rng = np.random.default_rng(seed)
    if scale:
        gamma = rng.uniform(0.5, 2.0, shape[-1]).astype("float32")
        ours.gamma.assign(gamma)
        theirs.gamma.assign(gamma)
    if center:
        beta = rng.normal(size=shape[-1]).astype("float32")
        ours.beta.assign(beta)
        theirs.beta.assign(beta)
    return ours, theirs


def moving(layer):
    return layer.moving_mean.numpy(), layer.moving_variance.numpy()


@pytest.mark.parametrize("shape", [(32, 7), (8, 5, 5, 3)], ids=["dense-2d", "conv-4d"])
@pytest.mark.parametrize("center,scale", [(True, True), (False, False), (True, False)])
def test_scratch_equals_keras_in_both_modes_and_gradients(shape, center, scale):
    ours, theirs = pair(shape, momentum=0.8, epsilon=1e-3, center=center, scale=scale)
    rng = np.random.default_rng(1)
    for _ in range(3):  # several training steps: the moving statistics must track each other
        x = tf.constant(rng.normal(2.0, 3.0, size=shape).astype("float32"))
        w = tf.constant(rng.normal(size=shape).astype("float32"))
        grads = []
        for layer in (ours, theirs):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)
                loss = tf.reduce_sum(y * w)
            grads.append((y.numpy(), tape.gradient(loss, [x, *layer.trainable_weights])))
        (y_ours, g_ours), (y_theirs, g_theirs) = grads
        np.testing.assert_allclose(y_ours, y_theirs, **TOL)
        assert len(g_ours) == len(g_theirs)
        for a, b in zip(g_ours, g_theirs, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), **TOL)
        for a, b in zip(moving(ours), moving(theirs), strict=True):
            np.testing.assert_allclose(a, b, **TOL)
    x = rng.normal(2.0, 3.0, size=shape).astype("float32")
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), **TOL)


@pytest.mark.parametrize("shape", [(16, 4), (4, 3, 3, 2)])
def test_scratch_equals_numpy_reference(shape):
    layer, _ = pair(shape, momentum=0.9)
    gamma, beta = layer.gamma.numpy(), layer.beta.numpy()
    mm, mv = moving(layer)
    rng = np.random.default_rng(2)
    for training in (True, True, False):
        x = rng.normal(1.0, 2.0, size=shape).astype("float32")
        y_ref, mm, mv = batch_norm_numpy(
            x, gamma, beta, mm, mv, momentum=0.9, epsilon=1e-5, training=training
        )
        np.testing.assert_allclose(layer(x, training=training), y_ref, **TOL)
        np.testing.assert_allclose(layer.moving_mean, mm, **TOL)
        np.testing.assert_allclose(layer.moving_variance, mv, **TOL)


def test_textbook_case_3x2_with_gamma_1_11():
    """The small worked example: x = [[1,2],[3,4],[5,6]], gamma = [1, 11], beta = 0."""
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype="float32")
    ours, theirs = pair(x.shape, epsilon=1e-5)
    for layer in (ours, theirs):
        layer.gamma.assign([1.0, 11.0])
        layer.beta.assign([0.0, 0.0])
    z = np.sqrt(1.5)  # each column is c, c+2, c+4: mean c+2, biased variance 8/3
    expected = np.array([[-1, -11], [0, 0], [1, 11]]) * z / np.sqrt(1 + 1e-5 * 3 / 8)
    np.testing.assert_allclose(ours(x, training=True), expected, **TOL)
    np.testing.assert_allclose(theirs(x, training=True), expected, **TOL)
    np.testing.assert_allclose(ours.moving_mean, [0.3, 0.4], **TOL)  # 0.1 * [3, 4]
    np.testing.assert_allclose(ours.moving_variance, 0.9 + 0.1 * 8 / 3, **TOL)


@pytest.mark.parametrize("shape", [(64, 5), (16, 4, 4, 3)])
def test_momentum_zero_normalizes_and_then_inference_matches_training(shape):
    layer, _ = pair(shape, momentum=0.0)
    layer.gamma.assign(np.ones(shape[-1]))
    layer.beta.assign(np.zeros(shape[-1]))
    x = np.random.default_rng(3).normal(5.0, 4.0, size=shape).astype("float32")
    before = layer(x, training=False).numpy()  # moving stats still 0 / 1: x passes unchanged
    y = layer(x, training=True).numpy()
    axes = tuple(range(len(shape) - 1))
    np.testing.assert_allclose(y.mean(axis=axes), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=axes), 1.0, atol=1e-3)
    assert not np.allclose(before, y, atol=1e-2)
    np.testing.assert_allclose(layer(x, training=False), y, **TOL)


@pytest.mark.parametrize("impl", [BatchNorm, keras.layers.BatchNormalization])
def test_moving_statistics_change_only_in_training(impl):
    layer = impl(momentum=0.5)
    x = np.random.default_rng(4).normal(3.0, 2.0, size=(32, 6)).astype("float32")
    layer(x, training=False)
    np.testing.assert_array_equal(layer.moving_mean, np.zeros(6))
    np.testing.assert_array_equal(layer.moving_variance, np.ones(6))
    layer(x, training=True)
    assert np.all(np.abs(layer.moving_mean.numpy() - 1.5) < 1.0)
    layer.trainable = False  # Keras' rule: a frozen BN layer runs in inference mode
    frozen = moving(layer)
    y = layer(x, training=True)
    np.testing.assert_array_equal(moving(layer)[0], frozen[0])
    np.testing.assert_allclose(y, layer(x, training=False), **TOL)


def test_weights_match_keras_counts_and_config_round_trips():
    ours, theirs = pair((None, 5))
    assert [w.shape for w in ours.trainable_weights] == [(5,), (5,)]
    assert len(ours.non_trainable_weights) == len(theirs.non_trainable_weights) == 2
    clone = BatchNorm.from_config(ours.get_config())
    assert (clone.momentum, clone.epsilon, clone.center, clone.scale) == (0.9, 1e-5, True, True)
