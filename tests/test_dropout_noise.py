"""Dropout and noise layers: on in training steps only (the batch-statistics evaluation
keeps them off), placed where model.dropout says, seeded, and resumed bit-identical."""


import numpy as np
import pytest
import tensorflow as tf

from bnexp.config import model_layers
from bnexp.model.build import build
from bnexp.model.noise import Noise
from tests.helpers import (
    FASHION_DIR,
    assert_same_run,
    needs_fashion,
    steps_for,
    synthetic_config,
    whole_and_resumed,
)

pytestmark = pytest.mark.tf


def test_noise_is_the_identity_outside_training_and_shared_per_unit_with_resample_step():
    x = tf.constant(np.random.default_rng(0).normal(size=(64, 3, 3, 4)), tf.float32)
    step = Noise(stddev=2.0, mean=1.0, scale_stddev=0.5, resample="step", seed=3)
    np.testing.assert_array_equal(step(x, training=False).numpy(), x.numpy())
    # with x = 0 the output is the additive draw b: one value per channel, shared
    b = step(tf.zeros_like(x), training=True).numpy()
    assert np.ptp(b.reshape(-1, 4), axis=0).max() == 0 and np.ptp(b[0, 0, 0]) > 0
    again = step(tf.zeros_like(x), training=True).numpy()
    assert not np.array_equal(b, again)  # drawn afresh at every step
    element = Noise(stddev=2.0, mean=1.0, seed=3)(tf.zeros((20000, 4)), training=True).numpy()
    assert element.mean() == pytest.approx(1.0, abs=0.05)
    assert element.std() == pytest.approx(2.0, abs=0.05)


def test_model_dropout_goes_where_li_et_al_place_it():
    def names(placement, bn_placement="before"):
        cfg = synthetic_config(model={"arch": "mlp", "hidden": [8, 8],
                                      "bn": {"placement": bn_placement},
                                      "dropout": {"rate": 0.5, "placement": placement}})
        return [layer.name for layer in model_layers(cfg.model)]

    assert names("before_bn") == [
        "flatten", "dense1", "dense1_bn", "dense1_sigmoid", "dense1_dropout", "dense2",
        "dense2_bn", "dense2_sigmoid", "dense2_dropout", "logits"]
    assert names("before_bn", "after")[1:5] == [
        "dense1", "dense1_sigmoid", "dense1_dropout", "dense1_bn"]
    assert names("after_bn")[-3:] == ["dense2_sigmoid", "dropout", "logits"]


def test_the_batch_statistics_evaluation_keeps_dropout_and_noise_off():
    layers = [{"type": "flatten"}, {"type": "dense", "units": 16}, {"type": "bn"},
              {"type": "noise", "stddev": 3.0, "resample": "step"},
              {"type": "activation", "activation": "relu"}, {"type": "dropout", "rate": 0.9},
              {"type": "dense", "units": 10}]
    cfg = synthetic_config(model={"arch": "layers", "layers": layers})
    model = build(cfg.model, (28, 28, 1))
    steps = steps_for(cfg, model, (28, 28, 1))
    x = np.random.default_rng(0).integers(0, 255, (40, 28, 28, 1)).astype("uint8")
    y = np.arange(40, dtype="int32") % 10
    first = steps.evaluate_batch_stats(x, y, 20)
    assert steps.evaluate_batch_stats(x, y, 20) == first  # no random draw in it
    h = tf.cast(x, tf.float32) / 255.0
    for layer in model.layers:  # normalizations on batch statistics, nothing random
        on = not isinstance(layer, Noise | tf.keras.layers.Dropout)
        h = tf.concat([layer(h[:20], training=on), layer(h[20:], training=on)], 0) \
            if on and "bn" in layer.name else layer(h, training=on)
    accuracy = float(np.mean(np.argmax(h.numpy(), -1) == y))
    assert first[1] == pytest.approx(accuracy)


@pytest.mark.e2e
@pytest.mark.slow
@needs_fashion
def test_a_run_with_dropout_and_noise_resumed_after_ctrl_c_ends_bit_identical(tmp_path):
    """Through the installed script: one run whole, one interrupted by SIGINT after its
    first epoch and resumed; metrics, the probes' files (taken in training mode, dropout
    and noise on) and every checkpoint array (the layers' seed states included) equal."""
    cfg = tmp_path / "drop.yaml"
    cfg.write_text(f"""
name: drop
data: {{path: {FASHION_DIR}, limit: 2000, validation_size: 200, test_limit: 300,
       batch_size: 50}}
model:
  arch: layers
  layers: [{{type: flatten}}, {{type: dense, units: 32}}, {{type: bn}},
           {{type: noise, stddev: 0.5, mean: 0.2, resample: step}},
           {{type: activation, activation: relu}}, {{type: dropout, rate: 0.3}},
           {{type: dense, units: 10}}]
optimizer: {{learning_rate: 0.1}}
train: {{epochs: 5, steps_per_call: 4, deterministic: true}}
diagnostics: {{grad_norms: true, weight_norms: true, predictiveness: true, every_steps: 18}}
""")
    whole_dir, cut = whole_and_resumed(cfg, tmp_path)
    with np.load(whole_dir / "checkpoint.npz") as saved:
        assert any(key.startswith("random_") for key in saved.files)
    assert_same_run(whole_dir, cut)
