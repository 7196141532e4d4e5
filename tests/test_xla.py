"""train.jit_compile: except_conv: XLA on the layers between convolutions, not on them."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow import keras

from bnexp import data
from bnexp.errors import BadInput
from bnexp.model import build as models
from bnexp.training import steps as train_steps
from bnexp.training import xla
from bnexp.training.objective import make_optimizer
from tests.helpers import steps_for, synthetic_config

LENET = {"arch": "lenet", "bn": {"input": True}}


def test_segments_cut_lenet_at_its_convolutions():
    cfg = synthetic_config(model=LENET)
    model = models.build(cfg.model, data.load(cfg.data).input_shape)
    names = [[layer.name for layer in run] for run in xla.segments(model)]
    assert names[:4] == [["input_bn"], ["conv1"], ["conv1_bn", "conv1_sigmoid", "pool1"],
                         ["conv2"]]
    assert names[4][:4] == ["conv2_bn", "conv2_sigmoid", "pool2", "flatten"]
    assert names[4][-1] == "logits"
    assert sum(names, []) == [layer.name for layer in model.layers]  # each once, in order


@pytest.mark.parametrize("impl", ["keras", "scratch"])
def test_forward_except_conv_equals_the_model_in_both_modes(impl):
    cfg = synthetic_config(model={**LENET, "bn": {"input": True, "impl": impl}})
    splits = data.load(cfg.data)
    x = tf.constant(splits.x_train[:64].astype("float32") / 255.0)
    outputs, moving = [], []
    for compiled in (False, True):
        keras.utils.set_random_seed(0)
        model = models.build(cfg.model, splits.input_shape)
        forward = xla.forward_except_conv(model) if compiled else (
            lambda x, training, model=model: model(x, training=training))
        train_out = forward(x, True)  # batch statistics; moves the moving statistics
        outputs.append([train_out.numpy(), forward(x, False).numpy()])
        moving.append([w.numpy() for w in model.non_trainable_weights])
    for a, b in zip(outputs[0], outputs[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(*moving, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(moving[1][0], 0.0)  # the moving statistics did move


def _xla_functions(concrete) -> list[str]:
    """Names of the functions in a traced graph's library that XLA must compile."""
    library = concrete.graph.as_graph_def().library.function
    return [f.signature.name for f in library
            if f.attr["_XlaMustCompile"].b]


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_except_conv_steps_compile_the_pieces_and_train_like_plain_steps():
    cfg = synthetic_config(model=LENET)
    splits = data.load(cfg.data)
    chunk = np.arange(150, dtype=np.int32).reshape(3, 50)
    losses, weights = [], []
    for mode in (False, "except_conv"):
        keras.utils.set_random_seed(0)
        model = models.build(cfg.model, splits.input_shape)
        steps = steps_for(cfg, model, splits.input_shape, jit_compile=mode)
        losses.append(steps.train_many(splits.x_train, splits.y_train, chunk).numpy()[:, 0])
        weights.append([w.numpy() for w in model.weights])
        assert steps.fallback is None
        concrete = steps._train_many.get_concrete_function(
            tf.constant(splits.x_train), tf.constant(splits.y_train), tf.constant(chunk))
        pieces = _xla_functions(concrete)
        if mode:  # forward and backward of the three pieces between convolutions
            assert len(pieces) >= 6
        else:
            assert pieces == []
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_except_conv_evaluates_like_the_plain_model():
    cfg = synthetic_config(model=LENET)
    splits = data.load(cfg.data)
    results = []
    for mode in (False, "except_conv"):
        keras.utils.set_random_seed(0)
        model = models.build(cfg.model, splits.input_shape)
        steps = steps_for(cfg, model, splits.input_shape, jit_compile=mode)
        steps.train_many(splits.x_train, splits.y_train, np.arange(100, dtype=np.int32)[None])
        results.append(steps.evaluate(splits.x_test, splits.y_test)
                       + steps.evaluate_batch_stats(splits.x_test, splits.y_test, 50))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4)


def test_lenet_defaults_to_except_conv_and_mirrored_runs_refuse_it():
    assert xla.xla_mode(synthetic_config(model={"arch": "lenet"})) == "except_conv"
    assert xla.xla_mode(synthetic_config(train={"strategy": "mirrored"})) is False
    with pytest.raises(BadInput,
                       match="except_conv does not work with strategy: mirrored"):
        synthetic_config(train={"strategy": "mirrored", "jit_compile": "except_conv"})


class HostIdentity(keras.layers.Layer):
    """An identity that runs on the host through tf.numpy_function: XLA cannot compile it."""

    def call(self, x):
        y = tf.numpy_function(lambda a: a, [x], tf.float32)
        return tf.ensure_shape(y, x.shape)


@pytest.mark.filterwarnings("ignore:Gradients do not exist")  # numpy_function has none
def test_a_piece_xla_cannot_compile_falls_back_to_no_xla():
    cfg = synthetic_config()
    splits = data.load(cfg.data)
    model = keras.Sequential([keras.Input(splits.input_shape), keras.layers.Conv2D(4, 3),
                              HostIdentity(), keras.layers.Flatten(), keras.layers.Dense(10)])
    steps = train_steps.Steps(model, make_optimizer(cfg.optimizer), splits.input_shape,
                        jit_compile="except_conv")
    per_step = steps.train_many(splits.x_train, splits.y_train,
                                np.arange(100, dtype=np.int32).reshape(2, 50))
    assert per_step.shape == (2, 2) and np.isfinite(per_step.numpy()).all()
    assert steps.jit_compile is False and "XLA could not compile" in steps.fallback


@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_the_fallback_undoes_what_the_failed_call_changed():
    """Input BN (a piece that compiles) runs before the failing piece: its moving
    statistics and the iteration count must be as after one clean no-XLA call."""
    cfg = synthetic_config()
    splits = data.load(cfg.data)
    chunk = np.arange(100, dtype=np.int32).reshape(2, 50)
    weights = []
    for mode in ("except_conv", False):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input(splits.input_shape),
                                  keras.layers.BatchNormalization(), keras.layers.Conv2D(4, 3),
                                  HostIdentity(), keras.layers.Flatten(), keras.layers.Dense(10)])
        steps = steps_for(cfg, model, splits.input_shape, jit_compile=mode)
        steps.train_many(splits.x_train, splits.y_train, chunk)
        assert int(steps.optimizer.iterations.numpy()) == 2
        weights.append([w.numpy() for w in model.weights] + [steps.sums.numpy()])
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
