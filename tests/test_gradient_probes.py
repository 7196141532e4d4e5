"""The probes of gradients and weights (diagnostics.grad_norms, weight_norms,
predictiveness): each file's numbers against an independent computation (NumPy, a plain
tf.GradientTape on the same weights), and a run with probes trained exactly as one without."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bnexp import config, data
from bnexp.errors import BadInput
from bnexp.runs import checkpoint
from tests.helpers import Quiet, synthetic_config

pytestmark = pytest.mark.timeout(120)

PROBES = {"grad_norms": True, "weight_norms": True, "predictiveness": True,
          "every_steps": 10, "predictiveness_scales": [0.5, 2.0]}
MODEL = {"arch": "lenet", "bn": {"placement": "before"}}
OPTIMIZER = {"learning_rate": 0.5, "momentum": 0.9}
TIMING = ["seconds", "samples_per_sec", "eval_seconds"]


def train(tmp_path, name, **diagnostics):
    from bnexp.training import lifecycle

    cfg = synthetic_config(model=MODEL, optimizer=OPTIMIZER, diagnostics=diagnostics)
    (tmp_path / name).mkdir()
    outcome = lifecycle.run_one(config.RunSpec(cfg), data.load(cfg.data), tmp_path / name,
                                Quiet())
    assert outcome.status == "completed"
    return cfg, outcome.path


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """(config, run folder) of a 2-epoch synthetic LeNet-BN run with every probe on, and
    the run folder of the same run without probes."""
    tmp = tmp_path_factory.mktemp("probes")
    cfg, path = train(tmp, "on", **PROBES)
    _, plain = train(tmp, "off")
    return cfg, path, plain


def initial_model(cfg):
    """The run's model as it was at step 0 (the same seed builds the same weights), and
    the probe batch: the first data.batch_size training examples."""
    from bnexp.training.loop import new_model

    splits = data.load(cfg.data)
    model, _ = new_model(cfg, splits.input_shape)
    batch = cfg.data.batch_size
    return model, splits.x_train[:batch], splits.y_train[:batch]


def tape_gradients(model, x, y):
    """Loss and gradients by a plain GradientTape: the model in training mode, Keras'
    cross-entropy on logits; the moving statistics put back afterwards."""
    import tensorflow as tf
    from tensorflow import keras

    saved = [v.numpy() for v in model.non_trainable_variables]
    with tf.GradientTape() as tape:
        logits = model(tf.cast(x, tf.float32) / 255.0, training=True)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    for v, value in zip(model.non_trainable_variables, saved, strict=True):
        v.assign(value)
    return float(loss), [g.numpy().astype(np.float64) for g in grads]


def names(model):
    from bnexp.model.residual import weight_names

    by_id = dict(zip(map(id, model.weights), weight_names(model), strict=True))
    return [by_id[id(v)] for v in model.trainable_variables]


def test_probes_change_nothing_the_run_trains(probed):
    """Probes in training mode on a batch put every variable back: metrics and weights
    equal to the run without probes, bit for bit; the run without probes writes no probe
    file."""
    _, path, plain = probed
    a = pd.read_csv(path / "metrics.csv").drop(columns=TIMING)
    b = pd.read_csv(plain / "metrics.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    x, y = checkpoint.model_weights(path / "checkpoint.npz"), checkpoint.model_weights(
        plain / "checkpoint.npz")
    assert list(x) == list(y) and list(x)[:2] == ["conv1/kernel", "conv1_bn/gamma"]
    for name in x:
        np.testing.assert_array_equal(x[name], y[name], err_msg=name)
    assert not any((plain / f"{p}.csv").exists() for p in
                   ("grad_norms", "weight_norms", "predictiveness"))


def test_grad_norms_at_step_0_equal_a_plain_gradient_tape(probed):
    cfg, path, _ = probed
    model, x, y = initial_model(cfg)
    _, grads = tape_gradients(model, x, y)
    expected = {name: np.linalg.norm(g) for name, g in zip(names(model), grads, strict=True)}
    rows = pd.read_csv(path / "grad_norms.csv")
    assert sorted(rows["step"].unique()) == [0, 10, 20, 30, 40]  # 20 steps an epoch, 2 epochs
    first = rows[rows["step"] == 0]
    got = dict(zip(first["layer"] + "/" + first["weight"], first["grad_norm"], strict=True))
    assert list(got) == list(expected)
    np.testing.assert_allclose(list(got.values()), list(expected.values()), rtol=2e-5)


def test_weight_norms_equal_numpy_norms_and_the_effective_rate_is_lr_over_the_square(probed):
    cfg, path, _ = probed
    rows = pd.read_csv(path / "weight_norms.csv")
    assert sorted(rows["epoch"].unique()) == [0, 1, 2]
    model, _, _ = initial_model(cfg)
    initial = dict(zip(names(model), (v.numpy() for v in model.trainable_variables),
                       strict=True))
    final = checkpoint.model_weights(path / "checkpoint.npz")
    for epoch, weights in ((0, initial), (2, final)):
        at = rows[rows["epoch"] == epoch]
        for _, row in at.iterrows():
            w = weights[f"{row['layer']}/{row['weight']}"].astype(np.float64)
            assert row["norm"] == pytest.approx(np.linalg.norm(w), rel=1e-5)
    kernels = rows[(rows["weight"] == "kernel") & (rows["epoch"] == 2)].set_index("layer")
    # LeNet-BN: every conv and dense kernel feeds BN, except the logits'
    assert kernels["scale_invariant"].to_dict() == {
        "conv1": True, "conv2": True, "dense1": True, "dense2": True, "logits": False}
    invariant = kernels[kernels["scale_invariant"]]
    np.testing.assert_allclose(invariant["effective_lr"], 0.5 / invariant["norm"] ** 2,
                               rtol=1e-5)
    assert kernels.loc["logits", "effective_lr"] != kernels.loc["logits", "effective_lr"]  # NaN


def test_predictiveness_at_step_0_equals_the_loss_and_gradient_one_step_away(probed):
    """Santurkar et al.'s measure by hand: w - s * lr * g set into the model, the loss and
    the gradient there by a plain GradientTape."""
    cfg, path, _ = probed
    model, x, y = initial_model(cfg)
    loss, grads = tape_gradients(model, x, y)
    rows = pd.read_csv(path / "predictiveness.csv")
    first = rows[rows["step"] == 0].set_index("scale")
    assert list(first.index) == [0.5, 2.0]
    assert first["loss"].iloc[0] == pytest.approx(loss, rel=1e-5)
    g_norm = np.sqrt(sum(np.sum(g**2) for g in grads))
    start = [v.numpy() for v in model.trainable_variables]
    for scale in (0.5, 2.0):
        size = scale * 0.5
        for v, w, g in zip(model.trainable_variables, start, grads, strict=True):
            v.assign((w - size * g).astype(np.float32))
        after, moved = tape_gradients(model, x, y)
        change = np.sqrt(sum(np.sum((a - g) ** 2) for a, g in zip(moved, grads, strict=True)))
        row = first.loc[scale]
        assert row["step_size"] == pytest.approx(size)
        assert row["loss_after"] == pytest.approx(after, rel=1e-4)
        assert row["grad_change"] == pytest.approx(change, rel=1e-3)
        assert row["smoothness"] == pytest.approx(change / (size * g_norm), rel=1e-3)


def test_probe_figures_are_drawn_from_the_files(probed, tmp_path):
    from bnexp.analysis import compare, series
    from bnexp.views import plots

    _, path, _ = probed
    figures = series.standard(compare.load(path.parent))
    files = plots.render_all(figures)
    assert {"grad_norms.png", "weight_norms.png", "predictiveness.png"} <= set(files)
    kernels = figures.probes["grad_norms"][next(iter(figures.probes["grad_norms"]))]
    assert set(kernels["layer"]) >= {"conv1", "logits"}
    fig = plots.PROBES["weight_norms"](figures.probes["weight_norms"])
    norms, rates = fig.axes[0], fig.axes[1]
    assert len(norms.lines) == 5 and len(rates.lines) == 4  # logits' kernel feeds no BN
    assert norms.get_yscale() == "log"


def test_a_run_stopped_in_its_first_epoch_resumes_without_a_second_step_0(tmp_path):
    """Step 0's probes and epoch 0's weight norms come before any checkpoint: a run
    stopped in its first epoch and resumed (from no checkpoint) writes them once."""
    import signal

    from bnexp.training import lifecycle, stop

    class StopMidEpoch1(Quiet):
        def step(self, epoch, step, loss):
            if epoch == 1 and step >= 10:
                stop.request(signal.SIGTERM)

    cfg = synthetic_config(model=MODEL, optimizer=OPTIMIZER, diagnostics=PROBES,
                           train={"epochs": 1})
    splits = data.load(cfg.data)
    with stop.handling(), pytest.raises(KeyboardInterrupt):
        lifecycle.run_one(config.RunSpec(cfg), splits, tmp_path, StopMidEpoch1())
    (path,) = list(tmp_path.iterdir())
    assert (pd.read_csv(path / "grad_norms.csv")["step"] == 10).any()  # past the start
    assert lifecycle.resume_run(path, splits, Quiet()).status == "completed"
    grads = pd.read_csv(path / "grad_norms.csv")
    assert not grads.duplicated(subset=["step", "layer", "weight"]).any()
    assert sorted(set(grads["step"])) == [0, 10, 20]
    weights = pd.read_csv(path / "weight_norms.csv")
    assert not weights.duplicated(subset=["epoch", "layer", "weight"]).any()
    assert sorted(set(weights["epoch"])) == [0, 1]
    assert sorted(set(pd.read_csv(path / "predictiveness.csv")["step"])) == [0, 10, 20]


def test_scale_invariance_is_a_kernel_directly_before_a_normalization():
    """BN removes a bias as well as the scale; group/layer norm only without a bias; a
    residual branch is a list of its own; an activation in between breaks it."""
    from bnexp.model.build import build
    from bnexp.training.probes import scale_invariant

    cfg = synthetic_config(model={"arch": "layers", "layers": [
        {"type": "conv", "filters": 4, "kernel_size": 3, "use_bias": True, "name": "a"},
        {"type": "bn", "name": "a_bn"},
        {"type": "conv", "filters": 4, "kernel_size": 3, "use_bias": True, "name": "b"},
        {"type": "group_norm", "groups": 2, "name": "b_gn"},
        {"type": "conv", "filters": 4, "kernel_size": 3, "use_bias": False, "name": "c"},
        {"type": "layer_norm", "name": "c_ln"},
        {"type": "residual", "name": "r", "layers": [
            {"type": "conv", "filters": 4, "kernel_size": 3, "padding": "same", "name": "r1"},
            {"type": "bn", "name": "r1_bn"}]},
        {"type": "conv", "filters": 4, "kernel_size": 3, "name": "d"},
        {"type": "activation", "activation": "relu", "name": "d_relu"},
        {"type": "bn", "name": "d_bn"},
        {"type": "flatten"}, {"type": "dense", "units": 10, "name": "out"}]})
    model = build(cfg.model, (28, 28, 1))
    found = scale_invariant(model)
    layers = {layer.name: layer for layer in model.layers}
    inner = {layer.name: layer for layer in layers["r"].branch}
    kernels = {"a": layers["a"], "b": layers["b"], "c": layers["c"], "r1": inner["r1"],
               "d": layers["d"], "out": layers["out"]}
    assert {name for name, layer in kernels.items() if id(layer.kernel) in found} == {
        "a", "c", "r1"}


def test_gradient_probes_refuse_a_mirrored_run():
    with pytest.raises(BadInput, match="diagnostics.grad_norms: measured on one device"):
        synthetic_config(diagnostics={"grad_norms": True}, train={"strategy": "mirrored"})


def test_predictiveness_scales_must_be_positive_numbers():
    with pytest.raises(BadInput, match="predictiveness_scales"):
        synthetic_config(diagnostics={"predictiveness_scales": [1.0, -2.0]})


def test_gradient_norms_of_step_0_only_are_drawn_against_the_layer():
    """Yang et al.'s figure: one step recorded, so one panel, a line per group with the
    kernels' norms in network order, on a log axis labelled over 12 decades."""
    from bnexp.views.plot_probes import figure_grad_norms

    def frame(norms):
        rows = [{"layer": f"dense{i}", "weight": w, "step": 0, "grad_norm": n}
                for i, n in enumerate(norms) for w in ("kernel", "bias")]
        return pd.DataFrame(rows)

    fig = figure_grad_norms({"BN": frame([1e4, 1e2, 1.0]), "no BN": frame([1e-8, 1e-8])})
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.lines}
    assert list(lines["BN"].get_xdata()) == [1, 2, 3]
    assert list(lines["BN"].get_ydata()) == [1e4, 1e2, 1.0]
    assert ax.get_yscale() == "log"
    fig.canvas.draw()
    assert len([t for t in ax.get_yticklabels() if t.get_text()]) >= 3
