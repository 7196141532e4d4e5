"""Diagnostics written during training: steps.csv, activations.csv, drift.csv, TensorBoard.

Each is checked against an independent computation (NumPy, the epoch metrics) on
synthetic data, so a wrong step index, a percentile of the wrong tensor or a drift that
touches the moving statistics fails here.
"""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tensorflow import keras

from bnexp import config, data, runs
from bnexp.model import build as models
from bnexp.training import lifecycle
from bnexp.training import loop as train_loop
from bnexp.training import recorders as diagnostics
from tests.helpers import Quiet, steps_for, synthetic_config


def mlp_config(**diag):
    return synthetic_config(model={"arch": "mlp", "hidden": [20, 10]},
                            diagnostics=diag)


def trained(cfg, steps_done=3):
    splits = data.load(cfg.data)
    keras.utils.set_random_seed(0)
    model = models.build(cfg.model, splits.input_shape)
    steps = steps_for(cfg, model, splits.input_shape)
    for i in range(steps_done):
        steps.train_step(splits.x_train[i * 50:(i + 1) * 50], splits.y_train[i * 50:(i + 1) * 50])
    return model, splits


def numpy_bn_mlp_preactivations(model, x_uint8):
    """Inputs of the sigmoids of a BN-before MLP, computed with NumPy from the weights."""
    h = x_uint8.reshape(len(x_uint8), -1).astype(np.float64) / 255.0
    out = {}
    for i in (1, 2):
        z = h @ model.get_layer(f"dense{i}").kernel.numpy()
        bn = model.get_layer(f"dense{i}_bn")
        z = (bn.gamma.numpy() * (z - bn.moving_mean.numpy())
             / np.sqrt(bn.moving_variance.numpy() + bn.epsilon) + bn.beta.numpy())
        out[f"dense{i}_sigmoid"] = z
        h = 1 / (1 + np.exp(-z))
    return out


def test_batch_chunks_end_at_every_probe_step():
    perm = np.arange(1000)
    chunks = train_loop.batch_chunks(perm, 50, 16, first_step=17, every=10)
    ends = np.cumsum([len(c) for c in chunks]) + 17
    assert {20, 30} <= set(ends.tolist()) and ends[-1] == 37
    assert max(len(c) for c in chunks) <= 10
    np.testing.assert_array_equal(np.concatenate([c.ravel() for c in chunks]), perm)


def test_percentiles_equal_numpy_percentile_of_the_same_activations():
    model, splits = trained(mlp_config())
    probe = splits.x_test[:200]
    expected = numpy_bn_mlp_preactivations(model, probe)
    inputs = diagnostics.activation_inputs(model, probe)
    assert list(inputs) == ["dense1_sigmoid", "dense2_sigmoid"]
    rows = diagnostics.percentile_rows(7, inputs, units=2)
    assert len(rows) == 2 * 3
    for row in rows:
        values = expected[row["layer"]]
        column = values.ravel() if row["unit"] == "all" else values[:, int(row["unit"])]
        np.testing.assert_allclose([row["p15"], row["p50"], row["p85"]],
                                   np.percentile(column, [15, 50, 85]), rtol=1e-4, atol=1e-5)
        assert row["step"] == 7


def test_drift_equals_numpy_and_leaves_moving_statistics_bit_for_bit():
    model, splits = trained(mlp_config())
    sample = splits.x_train[:300]
    before = [v.numpy().copy() for v in model.non_trainable_weights]
    rows = diagnostics.drift(model, sample)
    for a, v in zip(before, model.non_trainable_weights, strict=True):
        np.testing.assert_array_equal(a, v.numpy())
    # NumPy: dense1's input is the pixels, so its population statistics are direct
    bn = model.get_layer("dense1_bn")
    z = (sample.reshape(300, -1) / 255.0) @ model.get_layer("dense1").kernel.numpy()
    mean, var = z.mean(axis=0), z.var(axis=0)
    eps = bn.epsilon
    mean_error = np.sqrt(np.mean(((bn.moving_mean.numpy() - mean) / np.sqrt(var + eps)) ** 2))
    var_error = np.sqrt(np.mean(((bn.moving_variance.numpy() - var) / (var + eps)) ** 2))
    assert rows[0]["layer"] == "dense1_bn"
    assert rows[0]["mean_error"] == pytest.approx(mean_error, rel=1e-4)
    assert rows[0]["variance_error"] == pytest.approx(var_error, rel=1e-4)
    assert rows[0]["variance_error"] > 0.1  # three steps at momentum 0.9: far from converged
    diagnostics.precise_bn(model, sample)
    for row in diagnostics.drift(model, sample):
        assert row["mean_error"] < 1e-5 and row["variance_error"] < 1e-5


def run(cfg, tmp_path):
    outcome = lifecycle.run_one(config.RunSpec(cfg), data.load(cfg.data), tmp_path, Quiet())
    assert outcome.status == "completed"
    return outcome.path


def test_steps_csv_holds_every_step_and_agrees_with_the_epoch_metrics(tmp_path):
    cfg = mlp_config(step_metrics=True, every_steps=20)  # 20 steps per epoch
    path = run(cfg, tmp_path)
    steps = pd.read_csv(path / "steps.csv")
    metrics = pd.DataFrame(runs.read_metrics(path))
    assert steps["step"].tolist() == list(range(41))
    assert steps.loc[steps.step > 0, "epoch"].tolist() == [1] * 20 + [2] * 20
    probed = steps.dropna(subset=["test_acc"])
    assert probed["step"].tolist() == [0, 20, 40]
    # the probe after an epoch's last step sees the same weights as the epoch's evaluation
    np.testing.assert_allclose(probed["test_acc"].iloc[1:], metrics["test_acc"], atol=1e-6)
    # equal batches: the epoch's training accuracy is the mean of its steps'
    by_epoch = steps[steps.step > 0].groupby("epoch")[["train_acc", "train_loss"]].mean()
    np.testing.assert_allclose(by_epoch["train_acc"], metrics["train_acc"], atol=1e-5)
    np.testing.assert_allclose(by_epoch["train_loss"], metrics["train_loss"], rtol=1e-4)


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_activations_csv_every_k_steps_on_the_probe_batch(tmp_path):
    cfg = mlp_config(activations=True, every_steps=8, probe_size=100, activation_units=2)
    path = run(cfg, tmp_path)
    acts = pd.read_csv(path / "activations.csv", dtype={"unit": str})
    assert sorted(set(acts["step"])) == [0, 8, 16, 24, 32, 40]
    last = acts[acts.step == 40]
    assert set(zip(last.layer, last.unit, strict=True)) == {
        (f"dense{i}_sigmoid", u) for i in (1, 2) for u in ("0", "1", "all")}
    assert (acts.p15 <= acts.p50).all() and (acts.p50 <= acts.p85).all()


def test_drift_csv_per_epoch_and_bn_layer_and_precise_bn_measured_before(tmp_path):
    cfg = synthetic_config(model={"arch": "mlp", "hidden": [20, 10]},
                           diagnostics={"drift": 500}, train={"precise_bn": 500})
    path = run(cfg, tmp_path)
    drift = pd.read_csv(path / "drift.csv")
    assert list(zip(drift.epoch, drift.layer, strict=True)) == [
        (e, f"dense{i}_bn") for e in (1, 2) for i in (1, 2)]
    # measured on the moving averages training left, not after precise BN zeroed them
    assert (drift.variance_error > 1e-4).all()


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_tensorboard_event_files_hold_the_metrics_and_bn_histograms(tmp_path):
    cfg = mlp_config()
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"tensorboard": True})})
    path = run(cfg, tmp_path)
    scalars, histograms = {}, set()
    for event_file in (path / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                kind = value.metadata.plugin_data.plugin_name
                if kind == "histograms":
                    histograms.add(value.tag)
                elif kind == "scalars":
                    scalars[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    metrics = runs.read_metrics(path)
    for row in metrics:
        assert scalars[("test_acc", row["epoch"])] == pytest.approx(row["test_acc"], rel=1e-6)
    assert {"dense1_bn/gamma", "dense1_bn/moving_mean", "dense2_bn/moving_variance"} <= histograms


def test_cut_csv_keeps_only_rows_up_to_the_checkpoint(tmp_path):
    file = tmp_path / "steps.csv"
    runs.append_csv(file, ["step", "x"], [{"step": s, "x": s * 0.5} for s in range(6)])
    with open(file, "a") as f:
        f.write("6,3.")  # torn by a kill
    runs.cut_csv(file, lambda r: int(r["step"]) <= 3, ["step", "x"])
    assert file.read_text() == "step,x\n0,0\n1,0.5\n2,1\n3,1.5\n"


def test_an_interrupted_run_resumes_its_diagnostics_without_gap_or_duplicate(tmp_path):
    import signal

    from bnexp.training import stop

    class StopMidEpoch2(Quiet):
        def step(self, epoch, step, loss):
            if epoch == 2 and step >= 10:
                stop.request(signal.SIGTERM)

    cfg = mlp_config(step_metrics=True, activations=True, every_steps=5, probe_size=50)
    splits = data.load(cfg.data)
    with stop.handling(), pytest.raises(KeyboardInterrupt):
        lifecycle.run_one(config.RunSpec(cfg), splits, tmp_path, StopMidEpoch2())
    (path,) = list(tmp_path.iterdir())
    assert pd.read_csv(path / "steps.csv")["step"].max() > 20  # rows past the checkpoint
    assert lifecycle.resume_run(path, splits, Quiet()).status == "completed"
    steps = pd.read_csv(path / "steps.csv")
    assert steps["step"].tolist() == list(range(41))
    assert steps.dropna(subset=["test_acc"])["step"].tolist() == list(range(0, 41, 5))
    acts = pd.read_csv(path / "activations.csv", dtype={"unit": str})
    assert sorted(set(acts["step"])) == list(range(0, 41, 5))
    assert not acts.duplicated(subset=["step", "layer", "unit"]).any()


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_tensorboard_hparams_group_a_sweep_by_its_settings(tmp_path, write_config):
    """With train.tensorboard, each run of a sweep writes an HParams session (its cell's
    keys, every model.bn setting, the seed) that TensorBoard's own reader finds, beside
    the epoch scalars the dashboard takes its metrics from."""
    from tensorboard.backend.event_processing import plugin_event_multiplexer
    from tensorboard.plugins.hparams import plugin_data_pb2
    from typer.testing import CliRunner

    from bnexp.cli import app
    from tests.helpers import SYNTHETIC

    text = SYNTHETIC + ("train: {epochs: 2, tensorboard: true}\n"
                        "sweep: {grid: {model.bn.momentum: [0.9, 0.5]}, seeds: [3]}\n")
    text = text.replace("train:\n  epochs: 2\n", "")
    result = CliRunner().invoke(app, ["train", str(write_config(text)), "--runs-dir",
                                      str(tmp_path / "runs"), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    reader = plugin_event_multiplexer.EventMultiplexer()
    reader.AddRunsFromDirectory(str(tmp_path / "runs"))
    reader.Reload()
    sessions = {}
    for run, tags in reader.PluginRunToTagToContent("hparams").items():
        for content in tags.values():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                values = data.session_start_info.hparams
                sessions[run] = {k: values[k].WhichOneof("kind") and getattr(
                    values[k], values[k].WhichOneof("kind")) for k in values}
    assert len(sessions) == 2
    momenta = sorted(s["model.bn.momentum"] for s in sessions.values())
    assert momenta == pytest.approx([0.5, 0.9])
    for run, hparams in sessions.items():
        assert hparams["seed"] == 3 and hparams["model.bn.placement"] == "before"
        assert hparams["model.bn.impl"] == "keras"
        folder = tmp_path / "runs" / run.split("/")[0]
        final = runs.read_metrics(folder)[-1]
        (last,) = [e for e in reader.Tensors(run, "test_acc") if e.step == final["epoch"]]
        assert float(tf.make_ndarray(last.tensor_proto)) == pytest.approx(final["test_acc"])


def test_drift_by_hand_on_a_one_unit_bn_layer():
    """The drift errors worked by hand: pixels 0 and 255 reach the BN layer as 0 and 1
    (population mean 0.5, variance 0.25); moving mean 0.75 and variance 1.0 are off by
    (0.75 - 0.5) / sqrt(0.25) = 0.5 standard deviations and (1.0 - 0.25) / 0.25 = 3.0."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.BatchNormalization(epsilon=1e-9)])
    bn = model.layers[0]
    bn.moving_mean.assign([0.75])
    bn.moving_variance.assign([1.0])
    (row,) = diagnostics.drift(model, np.array([[0], [255], [0], [255]], dtype=np.uint8))
    assert row["mean_error"] == pytest.approx(0.5, rel=1e-6)
    assert row["variance_error"] == pytest.approx(3.0, rel=1e-6)
    assert bn.moving_mean.numpy()[0] == 0.75  # put back as it was
