"""BN across replicas: synchronized vs per-slice statistics, and ghost batches on one device.

TensorFlow fixes its devices when it first initializes, so the multi-replica checks run
in a fresh Python process with the CPU split into two logical devices.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from bnexp.model.bn import BatchNorm, batch_norm_numpy

ROOT = Path(__file__).resolve().parents[1]

REPLICAS = r"""
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tensorflow import keras
from bnexp.model.bn import BatchNorm, batch_norm_numpy

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
x = rng.normal(2.0, 3.0, size=(8, 5, 5, 3)).astype(np.float32)
half = len(x) // 2


def run(layer_factory):
    with strategy.scope():
        layer = layer_factory()
        layer.build(x.shape)
        layer.gamma.assign([1.5, 0.5, 2.0])
        layer.beta.assign([0.1, -0.2, 0.3])
    slices = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(x[ctx.replica_id_in_sync_group * half:
                                  (ctx.replica_id_in_sync_group + 1) * half]))
    step = tf.function(lambda xs: layer(xs, training=True))
    outputs = strategy.experimental_local_results(strategy.run(step, args=(slices,)))
    return (np.concatenate([o.numpy() for o in outputs]), layer.moving_mean.numpy(),
            layer.moving_variance.numpy())


gamma, beta = np.array([1.5, 0.5, 2.0]), np.array([0.1, -0.2, 0.3])
args = dict(momentum=0.9, epsilon=1e-3, training=True)
whole = batch_norm_numpy(x.astype(np.float64), gamma, beta, np.zeros(3), np.ones(3), **args)
ghost = batch_norm_numpy(x.astype(np.float64), gamma, beta, np.zeros(3), np.ones(3),
                         virtual_batch_size=half, **args)

for name, factory, expected in [
    ("scratch synchronized",
     lambda: BatchNorm(momentum=0.9, epsilon=1e-3, synchronized=True), whole),
    ("scratch per replica",
     lambda: BatchNorm(momentum=0.9, epsilon=1e-3, synchronized=False), ghost),
    ("keras synchronized", lambda: keras.layers.BatchNormalization(
        momentum=0.9, epsilon=1e-3, synchronized=True), whole),
]:
    got = run(factory)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=name)
    print("ok", name)
"""


def test_two_replicas_synchronized_equal_one_batch_and_unsynchronized_equal_slices():
    out = subprocess.run([sys.executable, "-c", REPLICAS], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[:3] == ["ok scratch synchronized", "ok scratch per replica",
                                          "ok keras synchronized"]


@pytest.mark.parametrize("shape, v", [((12, 4), 4), ((10, 3, 3, 2), 4), ((8, 6), 8)])
def test_ghost_batches_equal_numpy_per_slice_normalization(shape, v):
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 2.0, size=shape).astype(np.float32)
    layer = BatchNorm(momentum=0.8, epsilon=1e-3, virtual_batch_size=v)
    layer.build(x.shape)
    gamma = rng.normal(size=shape[-1]).astype(np.float32)
    layer.gamma.assign(gamma)
    y = layer(tf.constant(x), training=True).numpy()
    expected = batch_norm_numpy(x.astype(np.float64), gamma, np.zeros(shape[-1]),
                                np.zeros(shape[-1]), np.ones(shape[-1]), momentum=0.8,
                                epsilon=1e-3, training=True, virtual_batch_size=v)
    np.testing.assert_allclose(y, expected[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.numpy(), expected[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), expected[2], rtol=1e-5)
    # inference mode ignores ghost batches: the moving statistics, nothing updated
    before = layer.moving_mean.numpy().copy()
    layer(tf.constant(x), training=False)
    np.testing.assert_array_equal(before, layer.moving_mean.numpy())


def test_a_ghost_batch_as_large_as_the_batch_is_plain_bn():
    x = np.random.default_rng(2).normal(size=(16, 5)).astype(np.float32)
    plain, ghost = BatchNorm(), BatchNorm(virtual_batch_size=16)
    for layer in (plain, ghost):
        layer.build(x.shape)
    np.testing.assert_allclose(ghost(x, training=True), plain(x, training=True), atol=1e-5)
    np.testing.assert_allclose(ghost.moving_variance.numpy(), plain.moving_variance.numpy(),
                               rtol=1e-6)


TRAINING = r"""
import sys
import numpy as np
from bnexp import config, data
from bnexp.reporter import NullReporter
from bnexp.training import distribute, lifecycle

distribute.prepare_devices(2)


def weights(bn, **train_keys):
    raw = {"name": "r", "data": {"dataset": "synthetic", "batch_size": 50,
                                 "validation_size": 200},
           "model": {"arch": "lenet", "bn": bn},
           "optimizer": {"learning_rate": 0.5, "momentum": 0.9},
           "train": {"epochs": 1, "jit_compile": False, **train_keys}}
    cfg = config.validate(raw, "t")
    outcome = lifecycle.run_one(config.RunSpec(cfg), data.load(cfg.data), Path(sys.argv[1]),
                                NullReporter())
    assert outcome.status == "completed", (outcome.path / "train.log").read_text()
    with np.load(outcome.path / "checkpoint.npz") as f:
        return [f[k] for k in sorted(f.files) if k.startswith("model_")]


from pathlib import Path

pytestmark = pytest.mark.slow
mirrored = {"strategy": "mirrored", "replicas": 2}
cases = {
    "scratch synchronized": (weights({"impl": "scratch", "synchronized": True}, **mirrored),
                             weights({"impl": "scratch"})),
    "keras synchronized": (weights({"impl": "keras", "synchronized": True}, **mirrored),
                           weights({"impl": "keras"})),
    "scratch per replica = ghost": (weights({"impl": "scratch"}, **mirrored),
                                    weights({"impl": "scratch", "virtual_batch_size": 25})),
}
for name, (a, b) in cases.items():
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=2e-3, atol=2e-4, err_msg=name)
    print("ok", name)
ghost, plain = cases["scratch per replica = ghost"][0], cases["scratch synchronized"][1]
assert max(np.abs(x - y).max() for x, y in zip(ghost, plain)) > 1e-2  # ghost BN differs
print("ok differs")
"""


def test_mirrored_training_equals_one_device_training(tmp_path):
    """An epoch (20 steps) on 2 logical CPU replicas end with the weights (BN moving statistics
    included) of one device on the whole batch (synchronized BN) or with ghost batches of
    half the batch (per-replica BN)."""
    out = subprocess.run([sys.executable, "-c", TRAINING, str(tmp_path)], capture_output=True,
                         text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[:4] == ["ok scratch synchronized", "ok keras synchronized",
                                          "ok scratch per replica = ghost", "ok differs"]


def test_bnexp_train_runs_a_mirrored_config_end_to_end(tmp_path):
    """97 training examples in batches of 8: the last batch (1 example) has fewer than
    the 4 replicas need; it is left out instead of failing the step."""
    config = tmp_path / "m.yaml"
    config.write_text("name: m\ndata: {dataset: synthetic, batch_size: 8, validation_size: 20,"
                      " limit: 97}\nmodel: {bn: {synchronized: true}}\n"
                      "train: {epochs: 1, strategy: mirrored, replicas: 4}\n")
    bnexp = Path(sys.executable).parent / "bnexp"
    out = subprocess.run([str(bnexp), "train", str(config), "--runs-dir", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((Path(out.stdout.split()[-1]) / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["config"]["train"]["strategy"] == "mirrored"
