"""Diagnostics: the train/inference gap (test metrics with batch statistics)."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow import keras
from typer.testing import CliRunner

from bnexp import config, data, runs
from bnexp.cli import app
from bnexp.model import build as models
from bnexp.training import recorders as diagnostics
from tests import helpers
from tests.helpers import needs_fashion


def bn_steps(impl: str, momentum: float):
    cfg = config.validate({"name": "d", "data": {"dataset": "synthetic", "batch_size": 50,
                                                 "validation_size": 200},
                           "model": {"bn": {"impl": impl, "momentum": momentum}}}, "t")
    splits = data.load(cfg.data)
    keras.utils.set_random_seed(0)
    model = models.build(cfg.model, splits.input_shape)
    return helpers.steps_for(cfg, model, splits.input_shape), splits


@pytest.mark.parametrize("impl", ["keras", "scratch"])
def test_batch_stats_eval_leaves_moving_statistics_bit_for_bit(impl):
    steps, splits = bn_steps(impl, 0.9)
    steps.train_step(splits.x_train[:50], splits.y_train[:50])  # non-trivial moving stats
    before = [v.numpy().copy() for v in steps.model.non_trainable_weights]
    assert len(before) == 8  # four BN layers, mean and variance each
    steps.evaluate_batch_stats(splits.x_test, splits.y_test, 50)
    for a, v in zip(before, steps.model.non_trainable_weights, strict=True):
        np.testing.assert_array_equal(a, v.numpy())


@pytest.mark.parametrize("impl", ["keras", "scratch"])
def test_batch_stats_eval_equals_inference_once_moving_stats_are_that_batch(impl):
    """With momentum 0, one training-mode call on a batch sets every moving statistic to
    that batch's statistics; inference mode on it must then equal batch-stats mode."""
    steps, splits = bn_steps(impl, 0.0)
    x, y = splits.x_test[:100], splits.y_test[:100]
    loss_b, acc_b = steps.evaluate_batch_stats(x, y, 100)
    steps.model(tf.cast(x, tf.float32) / 255.0, training=True)
    loss_i, acc_i = steps.evaluate(x, y)
    assert loss_b == pytest.approx(loss_i, rel=1e-4) and acc_b == acc_i
    fresh, _ = bn_steps(impl, 0.0)  # a fresh model: moving stats still 0 / 1
    assert fresh.evaluate(x, y)[0] != pytest.approx(loss_b, rel=1e-2)


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_off_when_turned_off_and_blank_columns(write_config, tmp_path):
    """On by default for a BN model since notebooks 000-004 (tests/test_layers.py); turned
    off, the columns stay blank and summary.json has no gap."""
    from tests.helpers import SYNTHETIC

    code = CliRunner().invoke(app, ["train", str(write_config(SYNTHETIC)), "--runs-dir",
                                    str(tmp_path / "runs"), "--set",
                                    "diagnostics.batch_stats_eval=false"])
    assert code.exit_code == 0
    (run,) = list((tmp_path / "runs").iterdir())
    rows = runs.read_metrics(run)
    assert np.isnan(rows[-1]["test_acc_batchstats"])
    assert runs.read_summary(run)["bn_gap"] is None


@pytest.mark.e2e
@needs_fashion
def test_momentum_099_on_a_short_run_shows_a_large_gap_and_says_so(write_config, tmp_path):
    path = write_config("name: gap\ndata: {batch_size: 128, validation_size: 0, limit: 2048, "
                        "test_limit: 2000}\nmodel: {bn: {momentum: 0.99}}\n"
                        "train: {epochs: 1}\ndiagnostics: {batch_stats_eval: true}\n")
    result = CliRunner().invoke(app, ["train", str(path), "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    (run,) = list((tmp_path / "r").iterdir())
    row = runs.read_metrics(run)[-1]
    assert row["test_acc_batchstats"] > row["test_acc"] + 0.1  # 16 steps: averages lag
    gap = runs.read_summary(run)["bn_gap"]
    assert gap["gap"] == pytest.approx(row["test_acc_batchstats"] - row["test_acc"], abs=1e-5)
    assert "moving averages lag" in gap["note"]


@pytest.mark.parametrize("arch,impl", [("lenet", "keras"), ("mlp", "scratch")])
def test_precise_bn_statistics_equal_numpy_over_the_same_examples(arch, impl):
    cfg = config.validate({"name": "p", "data": {"dataset": "synthetic", "batch_size": 50,
                                                 "validation_size": 200},
                           "model": {"arch": arch, "bn": {"impl": impl, "input": True}}}, "t")
    splits = data.load(cfg.data)
    keras.utils.set_random_seed(0)
    model = models.build(cfg.model, splits.input_shape)
    steps = helpers.steps_for(cfg, model, splits.input_shape)
    for i in range(3):  # trained weights, moving stats that are only EMAs
        steps.train_step(splits.x_train[i * 50:(i + 1) * 50], splits.y_train[i * 50:(i + 1) * 50])
    sample = splits.x_train[:300]
    diagnostics.precise_bn(model, sample)
    h, checked = models.to_unit(sample).numpy().astype(np.float64), 0
    for layer in model.layers:  # an independent pass: NumPy statistics of each BN's input
        if "_bn" in layer.name:
            axes = tuple(range(h.ndim - 1))
            np.testing.assert_allclose(layer.moving_mean.numpy(), h.mean(axis=axes),
                                       rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(layer.moving_variance.numpy(), h.var(axis=axes),
                                       rtol=1e-4, atol=1e-5)
            checked += 1
        h = layer(h.astype(np.float32), training=False).numpy().astype(np.float64)
    assert checked == (5 if arch == "lenet" else 3)


@pytest.mark.e2e
@needs_fashion
def test_precise_bn_closes_the_gap_of_a_short_run(write_config, tmp_path):
    path = write_config("name: pbn\ndata: {batch_size: 128, validation_size: 0, limit: 2048, "
                        "test_limit: 2000}\nmodel: {bn: {momentum: 0.99}}\n"
                        "train: {epochs: 1, precise_bn: 2048}\n"
                        "diagnostics: {batch_stats_eval: true}\n")
    result = CliRunner().invoke(app, ["train", str(path), "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    (run,) = list((tmp_path / "r").iterdir())
    row = runs.read_metrics(run)[-1]
    assert row["test_acc"] > 0.4  # plain moving averages (momentum 0.99): 0.10
    assert abs(row["test_acc_batchstats"] - row["test_acc"]) < 0.1
