"""Optimizers, schedules, weight decay, l2 and freezing (bnexp/training/objective.py,
freezing.py, bnexp/config/trainable.py): the Keras optimizer each config builds, the
schedule against its formula, l2 against a hand computation, a frozen model's weights
bit for bit, one spelling per run, one-line refusals, the reuse key; and one frozen,
scheduled run on Fashion-MNIST through the installed script."""

import csv
import math

import numpy as np
import pytest
import tensorflow as tf
from tensorflow import keras

from bnexp import config, data
from bnexp.errors import ConfigError
from bnexp.training import compiled, freezing, objective
from bnexp.training import loop as train_loop
from tests.helpers import Quiet, needs_fashion, run_bnexp, synthetic_config

MLP = {"arch": "mlp", "hidden": [16]}


def optimizer_of(**keys):
    return objective.make_optimizer(config.validate({"optimizer": keys}, "t").optimizer)


def test_each_optimizer_builds_its_keras_class_with_its_arguments():
    default = optimizer_of()  # as before: SGD at 1.0, a learning-rate variable, no decay
    assert type(default) is keras.optimizers.SGD and default.momentum == 0.0
    assert not default.nesterov and default.weight_decay is None
    assert isinstance(default._learning_rate, keras.Variable)
    assert float(default.learning_rate.numpy()) == 1.0
    sgd = optimizer_of(momentum=0.9, nesterov=True, weight_decay=5e-4, learning_rate=0.1)
    assert (type(sgd), sgd.momentum, sgd.nesterov) == (keras.optimizers.SGD, 0.9, True)
    assert sgd.weight_decay == 5e-4
    rms = optimizer_of(name="rmsprop", momentum=0.5)
    assert (type(rms), rms.momentum, rms.weight_decay) == (keras.optimizers.RMSprop, 0.5, None)
    adam = optimizer_of(name="adam", learning_rate=1e-3)
    assert type(adam) is keras.optimizers.Adam and adam.weight_decay is None
    for name in ("adam", "adamw"):  # AdamW only where asked, never Keras' 0.004 default
        adamw = optimizer_of(name=name, weight_decay=0.01)
        assert type(adamw) is keras.optimizers.AdamW and adamw.weight_decay == 0.01


def numpy_schedule(s, rate, total, name, warmup=0, bounds=(), every=0, factor=0.1, final=0.0):
    if name == "step":
        rate = rate * factor ** (s // every if every else sum(s >= b for b in bounds))
    elif name == "cosine":
        t = min(max((s - warmup) / max(total - warmup, 1), 0.0), 1.0)
        rate = rate * (final + (1 - final) * (1 + math.cos(math.pi * t)) / 2)
    return rate * min(1.0, (s + 1) / warmup) if warmup else rate


@pytest.mark.parametrize("schedule, expected", [
    ({"warmup_epochs": 2}, dict(name="constant", warmup=10)),
    ({"name": "step", "boundaries": [2, 4], "factor": 0.5},
     dict(name="step", bounds=(10, 20), factor=0.5)),
    ({"name": "step", "every": 7, "unit": "steps", "warmup_steps": 3},
     dict(name="step", every=7, warmup=3)),
    ({"name": "cosine", "warmup_epochs": 1, "final_fraction": 0.1},
     dict(name="cosine", warmup=5, final=0.1)),
])
def test_the_schedule_gives_its_formula_at_every_step(schedule, expected):
    """6 epochs of 5 steps: the rate of each step from the optimizer's iteration count."""
    cfg = config.validate({"optimizer": {"learning_rate": 0.2, "schedule": schedule}}, "t")
    optimizer = objective.make_optimizer(cfg.optimizer, steps_per_epoch=5, epochs=6)
    rates = [objective.learning_rate_at(optimizer, s) for s in range(30)]
    want = [numpy_schedule(s, 0.2, 30, **expected) for s in range(30)]
    np.testing.assert_allclose(rates, want, rtol=1e-6)
    optimizer.iterations.assign(17)  # what Keras applies at iteration 17: the same
    assert float(optimizer.learning_rate) == pytest.approx(want[17], rel=1e-6)


def test_steps_per_epoch_counts_the_batches_the_loop_cuts():
    for n, batch, smallest in ((1000, 50, 1), (1001, 50, 1), (1001, 50, 2), (49, 50, 1)):
        chunks = train_loop.batch_chunks(np.arange(n), batch, 4, smallest=smallest)
        assert objective.steps_per_epoch(n, batch, smallest) == sum(len(c) for c in chunks)


def tiny(l2=0.0, **optimizer):
    cfg = synthetic_config(model=MLP, train={"l2": l2}, optimizer=optimizer, seed=3)
    splits = data.load(cfg.data)
    model, _ = train_loop.new_model(cfg, splits.input_shape)
    return cfg, model, compiled.make_steps(cfg, model, splits.input_shape), splits


def test_l2_adds_half_its_coefficient_times_the_squared_kernels_and_equals_sgd_decay():
    """The gradient step of l2 = 0.1 is W - lr * (g + 0.1 W) on the kernels, W - lr * g
    elsewhere (g: the data loss' gradient, by hand); weight_decay: 0.1 makes the same
    step with plain SGD."""
    cfg, model, steps, splits = tiny(l2=0.1, learning_rate=0.5)
    x, y = tf.constant(splits.x_train[:50]), tf.constant(splits.y_train[:50])
    kernels = [model.get_layer(n).kernel for n in ("dense1", "logits")]
    assert [id(k) for k in steps.update.kernels] == [id(k) for k in kernels]
    squares = sum(float(np.sum(k.numpy().astype(np.float64) ** 2)) for k in kernels)
    assert float(steps.update.penalty()) == pytest.approx(0.05 * squares, rel=1e-5)
    before = [v.numpy() for v in model.trainable_variables]
    saved = [v.numpy() for v in model.non_trainable_variables]
    with tf.GradientTape() as tape:
        loss = steps.loss_fn(y, tf.cast(model(tf.cast(x, tf.float32) / 255, training=True),
                                        tf.float32))
    grads = tape.gradient(loss, model.trainable_variables)
    for v, value in zip(model.non_trainable_variables, saved, strict=True):
        v.assign(value)  # the moving statistics as the step will find them
    steps.train_step(x, y)
    is_kernel = [any(v is k for k in kernels) for v in model.trainable_variables]
    for v, w0, g, kernel in zip(model.trainable_variables, before, grads, is_kernel,
                                strict=True):
        want = w0 - 0.5 * (g.numpy() + (0.1 * w0 if kernel else 0.0))
        np.testing.assert_allclose(v.numpy(), want, rtol=1e-4, atol=1e-6)
    after_l2 = [v.numpy() for v in model.trainable_variables]
    _, decayed, steps, _ = tiny(weight_decay=0.1, learning_rate=0.5)
    steps.train_step(x, y)
    for a, b in zip(after_l2, decayed.trainable_variables, strict=True):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-4, atol=1e-6)


def frozen_run(train=None, layers=None, steps_count=3):
    """A BN MLP (or `layers`) after a few SGD steps with momentum: (config, model, steps,
    the variables' values before)."""
    model_cfg = {"arch": "layers", "layers": layers} if layers else MLP
    cfg = synthetic_config(model=model_cfg, train=train or {},
                           optimizer={"learning_rate": 0.5, "momentum": 0.9})
    splits = data.load(cfg.data)
    model, _ = train_loop.new_model(cfg, splits.input_shape)
    steps = compiled.make_steps(cfg, model, splits.input_shape)
    before = {v.path: v.numpy() for v in model.variables}
    chunk = np.arange(50 * steps_count, dtype=np.int32).reshape(steps_count, 50)
    steps.train_many(tf.constant(splits.x_train), tf.constant(splits.y_train), chunk)
    return cfg, model, steps, before


def test_norm_only_trains_gamma_and_beta_alone_with_bn_in_training_mode():
    cfg, model, steps, before = frozen_run({"trainable": "norm_only"})
    changed = {v.path for v in model.variables if not np.array_equal(before[v.path], v.numpy())}
    norm = {v.path for layer in model.layers if "_bn" in layer.name for v in layer.weights}
    assert changed == norm  # gamma, beta and the moving statistics (batch statistics used)
    assert all(layer.trainable for layer in model.layers)  # Keras' flag never set
    assert len(norm) == 4  # dense1_bn's (no BN on the input)
    # the optimizer holds slots for gamma and beta only (momentum: one each)
    trained = steps.update.variables
    assert [v.path for v in trained] == [w.path for w in model.get_layer("dense1_bn")
                                         .trainable_weights]
    assert len(steps.optimizer.variables) == 2 + len(trained)
    counts = freezing.param_counts(cfg, model)
    assert counts == {"trainable": 32, "frozen": 784 * 16 + 16 * 10 + 10,
                      "non_trainable": 32}
    assert counts["trainable"] + counts["frozen"] + counts["non_trainable"] == \
        model.count_params()


def test_a_layer_with_trainable_false_and_all_but_norm_keep_their_weights():
    layers = [{"type": "flatten"}, {"type": "dense", "units": 16, "trainable": False},
              {"type": "bn"}, {"type": "activation", "activation": "relu"},
              {"type": "dense", "units": 10}]
    _, model, _, before = frozen_run(layers=layers)
    for name, moves in (("dense1", False), ("bn1", True), ("dense2", True)):
        for v in model.get_layer(name).trainable_weights:
            assert np.array_equal(before[v.path], v.numpy()) != moves, v.path
    _, model, _, before = frozen_run({"trainable": "all_but_norm"})
    bn = model.get_layer("dense1_bn")
    assert all(np.array_equal(before[v.path], v.numpy()) for v in bn.trainable_weights)
    assert not np.array_equal(before[bn.moving_mean.path], bn.moving_mean.numpy())
    assert not np.array_equal(before[model.get_layer("logits").kernel.path],
                              model.get_layer("logits").kernel.numpy())


def test_two_spellings_of_one_run_have_one_config_hash():
    def hash_of(**sections):
        return config.config_hash(synthetic_config(**sections))

    # a config without the new keys keeps the hash it had before they existed
    assert hash_of() == "c6b7a8cb0fca74ca"
    assert hash_of(optimizer={"name": "adam", "learning_rate": 0.01}) == "a2249f96ec9512db"
    assert hash_of(optimizer={"name": "adamw", "weight_decay": 0.01}) == hash_of(
        optimizer={"name": "adam", "weight_decay": 0.01})
    assert hash_of(optimizer={"schedule": {"name": "constant"}, "weight_decay": 0,
                              "nesterov": False}, train={"l2": 0, "trainable": "all"}) == \
        hash_of()
    assert hash_of(optimizer={"schedule": {"name": "cosine", "final_fraction": 0.0}}) == \
        hash_of(optimizer={"schedule": {"name": "cosine"}})


@pytest.mark.parametrize("raw, key", [
    ({"optimizer": {"name": "adamw"}}, "weight_decay"),
    ({"optimizer": {"name": "adam", "nesterov": True}}, "nesterov"),
    ({"optimizer": {"name": "adam", "momentum": 0.9}}, "momentum"),
    ({"optimizer": {"momentum": 0.0, "nesterov": True}}, "nesterov"),
    ({"optimizer": {"schedule": {"name": "cosine", "boundaries": [2]}}}, "boundaries"),
    ({"optimizer": {"schedule": {"name": "step", "final_fraction": 0.1, "every": 2}}},
     "final_fraction"),
    ({"optimizer": {"schedule": {"name": "step"}}}, "boundaries"),
    ({"optimizer": {"schedule": {"warmup_epochs": 1, "warmup_steps": 5}}}, "warmup_steps"),
    ({"model": {"bn": {"placement": "none"}}, "train": {"trainable": "norm_only"}},
     "train.trainable"),
    ({"train": {"trainable": "norm_only", "l2": 0.1}}, "train.l2"),
    ({"train": {"trainable": "norm_only"}, "optimizer": {"weight_decay": 0.1}},
     "optimizer.weight_decay"),
    ({"model": {"arch": "layers", "layers": [
        {"type": "flatten", "trainable": False}, {"type": "dense", "units": 10}]}},
     "trainable"),
    ({"model": {"arch": "layers", "layers": [
        {"type": "flatten"}, {"type": "dense", "units": 10, "trainable": False}]}},
     "train.trainable"),
])
def test_a_setting_that_does_not_apply_is_refused_in_one_line_naming_its_key(raw, key):
    with pytest.raises(ConfigError) as error:
        config.validate(raw, "c.yaml")
    message = str(error.value)
    assert "\n" not in message and message.startswith("c.yaml: ") and key in message


def test_the_reuse_key_covers_every_setting_a_trace_bakes_in_but_a_constant_rate():
    def key(model=MLP, **sections):
        return compiled.reuse_key(synthetic_config(model=model, **sections), (28, 28, 1), 1000)

    def listed(trainable):
        return {"arch": "layers", "layers": [
            {"type": "flatten"}, {"type": "dense", "units": 16, "trainable": trainable},
            {"type": "bn"}, {"type": "dense", "units": 10}]}

    base = key()
    assert key(optimizer={"learning_rate": 0.01}) == base  # a variable: steps reused
    differing = [
        key(optimizer={"schedule": {"name": "cosine"}}),
        key(optimizer={"weight_decay": 1e-4}),
        key(optimizer={"momentum": 0.9, "nesterov": True}),
        key(optimizer={"momentum": 0.9}),
        key(train={"l2": 1e-4}),
        key(train={"trainable": "norm_only"}),
        key(train={"trainable": "all_but_norm"}),
        key(model=listed(False)),
        key(model=listed(True)),
    ]
    assert base not in differing and len(set(differing)) == len(differing)
    cosine = {"schedule": {"name": "cosine"}}
    # a schedule traces its rate and the run's length in
    assert key(optimizer={"learning_rate": 0.5, **cosine}) != key(optimizer=cosine)
    assert key(optimizer=cosine, train={"epochs": 3}) != key(optimizer=cosine)
    assert compiled.reuse_key(synthetic_config(model=MLP, optimizer=cosine), (28, 28, 1),
                              900) != key(optimizer=cosine)


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_a_scheduled_run_records_its_rate_and_resumes_on_it(tmp_path):
    """metrics.csv's lr is the rate of each epoch's last step; a run stopped after its
    first epoch and continued from its checkpoint (the optimizer's slots for what trains
    only) ends bit-identical to one that was not."""
    cfg = synthetic_config(model=MLP, train={"epochs": 3, "deterministic": True,
                                             "trainable": "all_but_norm"},
                           optimizer={"learning_rate": 0.3, "momentum": 0.9, "schedule": {
                               "name": "cosine", "warmup_epochs": 1, "final_fraction": 0.1}})
    splits = data.load(cfg.data)

    class Stop(Exception):
        pass

    def stop_after_one(row):
        raise Stop

    whole, resumed = [], []
    (tmp_path / "a").mkdir()
    model = train_loop.fit(cfg, splits, whole.append, Quiet(), folder=tmp_path / "a")
    weights = [w.numpy() for w in model.weights]
    (tmp_path / "b").mkdir()
    with pytest.raises(Stop):
        train_loop.fit(cfg, splits, stop_after_one, Quiet(), folder=tmp_path / "b")
    model = train_loop.fit(cfg, splits, resumed.append, Quiet(), folder=tmp_path / "b")
    want = [numpy_schedule(20 * e - 1, 0.3, 60, "cosine", warmup=20, final=0.1)
            for e in (1, 2, 3)]
    assert [r["lr"] for r in whole] == pytest.approx(want, rel=1e-6)
    assert [r["lr"] for r in resumed] == [r["lr"] for r in whole[1:]]
    assert [r["train_loss"] for r in resumed] == [r["train_loss"] for r in whole[1:]]
    for a, b in zip(weights, model.weights, strict=True):
        np.testing.assert_array_equal(a, b.numpy())


@pytest.mark.e2e
@pytest.mark.slow
@needs_fashion
def test_a_frozen_scheduled_run_trains_through_the_installed_script(tmp_path):
    """Fashion-MNIST, an MLP with only BN's gamma and beta learning, cosine with warmup:
    metrics.csv's lr follows the schedule, the loss falls, the summary shows what trains."""
    path = tmp_path / "frozen.yaml"
    path.write_text("""
name: frozen
data: {limit: 512, test_limit: 500, validation_size: 500, batch_size: 64}
model: {arch: mlp, hidden: [64], activation: relu}
optimizer: {learning_rate: 0.5, momentum: 0.9,
            schedule: {name: cosine, warmup_epochs: 1, final_fraction: 0.2}}
train: {epochs: 2, trainable: norm_only}
""")
    out = run_bnexp("train", path, "--runs-dir", tmp_path / "runs")
    assert out.returncode == 0, out.stderr
    (run,) = (tmp_path / "runs").iterdir()
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    want = [numpy_schedule(8 * e - 1, 0.5, 16, "cosine", warmup=8, final=0.2) for e in (1, 2)]
    assert [float(r["lr"]) for r in rows] == pytest.approx(want, rel=1e-5)
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[1]["test_acc"]) > 0.2  # chance is 0.1: gamma and beta alone learn
    printed = run_bnexp("summary", run / "config.yaml").stdout
    assert "Trainable params: 128" in printed  # dense1_bn's gamma and beta
    assert f"Frozen params: {784 * 64 + 64 * 10 + 10:,}" in printed
