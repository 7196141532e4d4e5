"""bnexp's scratch BN against Keras' BatchNormalization and a NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow import keras

from bnexp.model.bn import BEHAVIOURS, FAULTS, BatchNorm, batch_norm_numpy, keras_batch_norm

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


# --- behaviours and the reproduced fault ------------------------------------------------

BEHAVIOUR_NAMES = ["standard", "moving_stats_in_training", "batch_stats_at_inference",
                   "frozen_moving_stats"]


def make(impl, **kwargs):
    return BatchNorm(**kwargs) if impl == "scratch" else keras_batch_norm(**kwargs)


def test_behaviours_and_faults_are_the_configs():
    from typing import get_args

    from bnexp.config import layers

    assert BEHAVIOURS == tuple(BEHAVIOUR_NAMES) == get_args(layers.BEHAVIOURS)
    assert FAULTS == get_args(layers.FAULTS) == ("mxnet_moving_average",)


@pytest.mark.parametrize("shape", [(16, 4), (4, 3, 3, 2)], ids=["dense-2d", "conv-4d"])
@pytest.mark.parametrize("behaviour", BEHAVIOUR_NAMES)
def test_each_behaviour_of_both_impls_equals_numpy_in_both_modes(shape, behaviour):
    rng = np.random.default_rng(5)
    gamma, beta = rng.uniform(0.5, 2.0, shape[-1]), rng.normal(size=shape[-1])
    layers = [make(impl, momentum=0.8, epsilon=1e-5, behaviour=behaviour,
                   moving_mean_initializer="ones",
                   moving_variance_initializer=keras.initializers.Constant(2.0))
              for impl in ("scratch", "keras")]
    for layer in layers:
        layer.build(shape)
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    mm, mv = np.ones(shape[-1]), np.full(shape[-1], 2.0)
    for training in (True, False, True, True, False):
        x = rng.normal(1.0, 2.0, size=shape).astype("float32")
        y_ref, mm, mv = batch_norm_numpy(x.astype("float64"), gamma, beta, mm, mv,
                                         momentum=0.8, epsilon=1e-5, training=training,
                                         behaviour=behaviour)
        outputs = [layer(x, training=training).numpy() for layer in layers]
        for layer, y in zip(layers, outputs, strict=True):
            np.testing.assert_allclose(y, y_ref, **TOL, err_msg=type(layer).__name__)
            np.testing.assert_allclose(layer.moving_mean, mm, **TOL)
            np.testing.assert_allclose(layer.moving_variance, mv, **TOL)
        np.testing.assert_allclose(outputs[0], outputs[1], **TOL)


@pytest.mark.parametrize("impl", ["scratch", "keras"])
def test_what_each_behaviour_means(impl):
    x = np.random.default_rng(6).normal(3.0, 2.0, size=(32, 5)).astype("float32")
    args = dict(momentum=0.5, moving_variance_initializer="zeros")

    def fresh(behaviour):
        layer = make(impl, behaviour=behaviour, **args)
        layer.build(x.shape)
        return layer

    standard = fresh("standard")
    y_train, y_infer = standard(x, training=True).numpy(), standard(x, training=False).numpy()

    layer = fresh("moving_stats_in_training")  # training gives what inference gave before
    before = layer(x, training=False).numpy()
    np.testing.assert_allclose(layer(x, training=True), before, **TOL)
    np.testing.assert_allclose(moving(layer), moving(standard), **TOL)  # still moved
    assert not np.allclose(layer(x, training=True), before, atol=1e-2)  # the next step moved

    layer = fresh("batch_stats_at_inference")  # inference by the batch, nothing updated
    np.testing.assert_allclose(layer(x, training=False), y_train, **TOL)
    np.testing.assert_array_equal(moving(layer)[0], np.zeros(5))
    np.testing.assert_array_equal(moving(layer)[1], np.zeros(5))
    alone = layer(x[:4], training=False).numpy()
    assert not np.allclose(alone, y_train[:4], atol=1e-2)  # a prediction depends on its batch
    np.testing.assert_allclose(layer(x, training=True), y_train, **TOL)
    np.testing.assert_allclose(moving(layer), moving(standard), **TOL)

    layer = fresh("frozen_moving_stats")  # training as standard, the moving stats never move
    for _ in range(3):
        np.testing.assert_allclose(layer(x, training=True), y_train, **TOL)
    np.testing.assert_array_equal(moving(layer)[0], np.zeros(5))
    np.testing.assert_array_equal(moving(layer)[1], np.zeros(5))
    assert not np.allclose(layer(x, training=False), y_infer, atol=1e-2)


def test_batch_statistics_at_inference_are_ghost_statistics_with_virtual_batches():
    x = np.random.default_rng(7).normal(1.0, 2.0, size=(10, 3, 3, 2)).astype("float32")
    layer = BatchNorm(momentum=0.8, virtual_batch_size=4, behaviour="batch_stats_at_inference")
    layer.build(x.shape)
    y_ref, mm, mv = batch_norm_numpy(x.astype("float64"), 1.0, 0.0, np.zeros(2), np.ones(2),
                                     momentum=0.8, epsilon=1e-3, training=False,
                                     virtual_batch_size=4, behaviour="batch_stats_at_inference")
    np.testing.assert_allclose(layer(x, training=False), y_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(layer.moving_mean, mm)


@pytest.mark.parametrize("shape", [(16, 4), (4, 3, 3, 2)], ids=["dense-2d", "conv-4d"])
def test_mxnet_fault_equals_numpy_and_leaves_the_moving_variance_untouched(shape):
    rng = np.random.default_rng(8)
    layer = BatchNorm(momentum=0.9, epsilon=1e-5, fault="mxnet_moving_average",
                      moving_variance_initializer=keras.initializers.Constant(0.5))
    layer.build(shape)
    gamma = rng.uniform(0.5, 2.0, shape[-1])
    layer.gamma.assign(gamma)
    beta = np.zeros(shape[-1])
    mm, mv = np.zeros(shape[-1]), np.full(shape[-1], 0.5)
    for training in (True, True, False, True, False):
        x = rng.normal(1.0, 2.0, size=shape).astype("float32")
        y_ref, mm, mv = batch_norm_numpy(x.astype("float64"), gamma, beta, mm, mv,
                                         momentum=0.9, epsilon=1e-5, training=training,
                                         fault="mxnet_moving_average")
        np.testing.assert_allclose(layer(x, training=training), y_ref, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.moving_mean, mm, **TOL)
        np.testing.assert_array_equal(layer.moving_variance, np.full(shape[-1], 0.5, "float32"))
    assert np.all(mm < -5)  # batch variance ~4: each step moves the mean by 0.9 - 0.9 * 4


def test_mxnet_fault_on_the_textbook_case():
    """004's update by hand: moving_mean + momentum - momentum * batch variance (8/3)."""
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype="float32")
    layer = BatchNorm(momentum=0.9, epsilon=1e-5, fault="mxnet_moving_average")
    y = layer(x, training=True)
    np.testing.assert_allclose(y, BatchNorm(momentum=0.9, epsilon=1e-5)(x, training=True), **TOL)
    np.testing.assert_allclose(layer.moving_mean, [0.9 - 0.9 * 8 / 3] * 2, **TOL)  # -1.5
    np.testing.assert_array_equal(layer.moving_variance, [1.0, 1.0])
    layer(x, training=True)  # a second step by hand: -1.5 + 0.9 - 0.9 * 8/3 = -3.0
    np.testing.assert_allclose(layer.moving_mean, [-3.0, -3.0], **TOL)
    np.testing.assert_array_equal(layer.moving_variance, [1.0, 1.0])


def test_ghost_batches_by_hand_with_a_short_last_one():
    """x = 0, 2 | 4, 6 | 10 in ghost batches of 2 (the last one short): each normalized by
    its own statistics (means 1, 5, 10; variances 1, 1, 0), and the moving statistics
    move toward the plain mean of the ghost means (16/3) and of their variances (2/3),
    each ghost batch weighing the same however short. Worked by hand, not by bnexp."""
    x = np.array([[0.0], [2.0], [4.0], [6.0], [10.0]], dtype="float32")
    eps = 1e-3
    layer = BatchNorm(momentum=0.5, epsilon=eps, virtual_batch_size=2)
    y = layer(x, training=True)
    one = 1 / np.sqrt(1 + eps)
    np.testing.assert_allclose(np.ravel(y), [-one, one, -one, one, 0.0], **TOL)
    np.testing.assert_allclose(layer.moving_mean, [0.5 * 0 + 0.5 * 16 / 3], **TOL)
    np.testing.assert_allclose(layer.moving_variance, [0.5 * 1 + 0.5 * 2 / 3], **TOL)


def test_mxnet_fault_with_zero_moving_variance_blows_up_inference_as_in_004():
    """004 starts the moving variance at zeros and never updates it: inference divides by
    sqrt(eps), outputs of order 1/sqrt(eps) = 316. The correct update gives order 1."""
    eps, rng = 1e-5, np.random.default_rng(9)
    batches = [rng.normal(0.0, 1.0, size=(64, 8)).astype("float32") for _ in range(30)]
    spread = {}
    for fault in ("mxnet_moving_average", None):
        layer = BatchNorm(momentum=0.9, epsilon=eps, fault=fault,
                          moving_variance_initializer="zeros")
        for x in batches:
            layer(x, training=True)
        spread[fault] = float(np.std(layer(batches[0], training=False)))
    np.testing.assert_array_equal(layer.moving_variance.numpy() > 0.5, True)  # correct one
    assert 0.3 / np.sqrt(eps) < spread["mxnet_moving_average"] < 3 / np.sqrt(eps)
    assert 0.5 < spread[None] < 2


def test_faults_are_scratch_only_and_never_a_default():
    assert BatchNorm().fault is None
    assert BatchNorm().behaviour == "standard"
    assert type(keras_batch_norm(fault=None)) is keras.layers.BatchNormalization
    with pytest.raises(ValueError, match="scratch"):
        keras_batch_norm(fault="mxnet_moving_average")
    with pytest.raises(ValueError, match="fault"):
        BatchNorm(fault="mxnet")
    with pytest.raises(ValueError, match="behaviour"):
        BatchNorm(behaviour="moving_stats")
    with pytest.raises(ValueError, match="behaviour"):
        keras_batch_norm(behaviour="moving_stats")


@pytest.mark.parametrize("behaviour", BEHAVIOUR_NAMES)
@pytest.mark.parametrize("fault", [None, "mxnet_moving_average"])
def test_config_round_trips_behaviour_and_fault(behaviour, fault):
    layer = BatchNorm(axis=1, behaviour=behaviour, fault=fault, virtual_batch_size=4,
                      moving_variance_initializer={"class_name": "Constant",
                                                   "config": {"value": 0.0}})
    clone = BatchNorm.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert (clone.axis, clone.behaviour, clone.fault) == (1, behaviour, fault)
    keras_layer = keras_batch_norm(behaviour, axis=1)
    assert type(keras_layer).from_config(keras_layer.get_config()).get_config() == (
        keras_layer.get_config())


def test_defaults_are_keras():
    layer = BatchNorm()
    assert (layer.axis, layer.momentum, layer.epsilon) == (-1, 0.99, 1e-3)


@pytest.mark.parametrize("impl", ["scratch", "keras"])
@pytest.mark.parametrize("behaviour", BEHAVIOUR_NAMES)
def test_a_frozen_layer_runs_its_inference_mode_in_every_behaviour(impl, behaviour):
    """trainable=False forces inference mode (Keras' rule), whatever that mode uses."""
    x = np.random.default_rng(10).normal(2.0, 3.0, size=(16, 3)).astype("float32")
    layer = make(impl, momentum=0.5, behaviour=behaviour)
    layer(x, training=True)
    layer.trainable = False
    frozen = moving(layer)
    np.testing.assert_allclose(layer(x, training=True), layer(x, training=False), **TOL)
    np.testing.assert_array_equal(moving(layer)[0], frozen[0])
    np.testing.assert_array_equal(moving(layer)[1], frozen[1])


@pytest.mark.parametrize("impl", ["scratch", "keras"])
def test_an_initializer_given_as_none_is_the_default(impl):
    layer = make(impl, gamma_initializer=None, beta_initializer=None,
                 moving_mean_initializer=None, moving_variance_initializer=None)
    layer.build((None, 4))
    assert [w.numpy().tolist() for w in layer.weights] == [[1.0] * 4, [0.0] * 4, [0.0] * 4,
                                                          [1.0] * 4]
