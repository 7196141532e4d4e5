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

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

PROGRAMS = Path(__file__).resolve().parent / "programs"


def test_two_replicas_synchronized_equal_one_batch_and_unsynchronized_equal_slices():
    out = subprocess.run([sys.executable, str(PROGRAMS / "replicas_bn.py")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
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





def test_mirrored_training_equals_one_device_training(tmp_path):
    """An epoch (20 steps) on 2 logical CPU replicas end with the weights (BN moving statistics
    included) of one device on the whole batch (synchronized BN) or with ghost batches of
    half the batch (per-replica BN)."""
    out = subprocess.run([sys.executable, str(PROGRAMS / "mirrored_training.py"),
                          str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=600)
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
