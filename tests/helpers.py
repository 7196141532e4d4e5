"""Helpers the tests share: the synthetic config, fake run folders, tiny IDX datasets,
compiled steps for a model, the installed script in a subprocess, decoded pictures, and
the marker for tests that need Debian's Fashion-MNIST."""

import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bnexp import config, data, runs
from bnexp.config import Config
from bnexp.reporter import NullReporter

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason="Debian's dataset-fashion-mnist is not installed",
)

Quiet = NullReporter  # a reporter that says nothing

SYNTHETIC = """
name: syn
data:
  dataset: synthetic
  batch_size: 50
  validation_size: 200
train:
  epochs: 2
"""


# every diagnostic that writes a file, on a 2 x 2 sweep (conftest's diagnosed_study)
DIAGNOSED = SYNTHETIC + """
diagnostics: {batch_stats_eval: true, drift: 300, step_metrics: true, activations: true,
              every_steps: 10, probe_size: 100}
sweep: {grid: {model.bn.placement: [before, none]}, seeds: [0, 1]}
"""


def synthetic_config(**sections) -> Config:
    raw = {"name": "t", "data": {"dataset": "synthetic", "batch_size": 50,
                                 "validation_size": 200}, "train": {"epochs": 2}}
    for key, value in sections.items():
        if isinstance(value, dict):
            raw.setdefault(key, {}).update(value)
        else:  # a top-level key: seed=1
            raw[key] = value
    return config.validate(raw, "test")


def steps_for(cfg: Config, model, input_shape, jit_compile=False):
    """The compiled Steps of `model` with cfg's optimizer (imports TensorFlow)."""
    from bnexp.training.objective import make_optimizer
    from bnexp.training.steps import Steps

    return Steps(model, make_optimizer(cfg.optimizer), input_shape, jit_compile=jit_compile)


def fake_run(runs_dir: Path, seed: int, test_accs, status="completed", name="exp", **keys):
    """A run folder as bnexp writes it, with these config keys (dotted by "__":
    model__bn__placement="none") and per-epoch test_acc."""
    rows = [{"train_loss": 1.0, "train_acc": a - 0.05, "test_acc": a} for a in test_accs]
    return fake_run_rows(runs_dir, rows, status=status, name=name, seed=seed, **keys)


def idx_bytes(array: np.ndarray) -> bytes:
    magic = data.IDX_IMAGES if array.ndim == 3 else data.IDX_LABELS
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def tiny_mnist(n_train=40, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train),
            rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test))


def write_idx_folder(folder, arrays, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in zip(data.IDX_FILES, arrays, strict=True):
        name = data.IDX_FILES[key]
        raw = idx_bytes(array)
        if gz:
            with gzip.open(folder / f"{name}.gz", "wb") as f:
                f.write(raw)
        else:
            (folder / name).write_bytes(raw)


ACTIVATION_COLUMNS = ["step", "layer", "unit", "p15", "p50", "p85"]  # as recorders writes it


def fake_run_rows(runs_dir: Path, rows: list[dict], status="completed", name="exp", seed=0,
                  train_size=None, summary=None, activations=None, **keys):
    """A run folder as bnexp writes it, with these config keys (dotted by "__", as
    fake_run) and these metrics.csv rows (any EPOCH_COLUMNS, e.g. test_acc_batchstats);
    summary.json's data.train where train_size is given, extra summary keys (`summary`),
    and activations.csv rows (step, layer, unit, p15, p50, p85) where given."""
    raw = {"name": name, "seed": seed, "data": {"dataset": "synthetic", "batch_size": 50,
                                                "validation_size": 200}}
    for dotted, value in keys.items():
        node = raw
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    cfg = config.validate(raw, "test")
    runs_dir.mkdir(parents=True, exist_ok=True)
    path = runs.create(runs_dir, f"{name}_s{seed}")
    folder = runs.RunFolder(path)
    folder.write_config(config.to_yaml(cfg))
    rows = [{"epoch": e, **row} for e, row in enumerate(rows, start=1)]
    folder.start_metrics()
    for row in rows:
        folder.append_metrics(row)
    if activations:
        runs.append_csv(path / "activations.csv", ACTIVATION_COLUMNS, activations)
    folder.write_summary({
        "schema": runs.SCHEMA, "status": status, "seed": seed,
        "config_hash": config.config_hash(cfg),
        "config": cfg.model_dump(exclude={"sweep"}), "epochs_done": len(rows),
        "data": {"train": train_size} if train_size is not None else {},
        "final": runs.final_of(rows[-1]) if rows else {}, "best": runs.best_of(rows),
        "started": f"2026-01-01T00:00:{seed:02d}", "pid": os.getpid(),
        "host": socket.gethostname(), **(summary or {}),
    })
    return path


def drawn_picture(path: Path) -> np.ndarray:
    """The PNG at path decoded (height, width, RGB[A]); fails unless it is a real picture:
    decodable, at least 200 x 150 pixels, with ink on it (not one flat colour)."""
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] >= 150 and image.shape[1] >= 200, image.shape
    rgb = image[..., :3]
    assert rgb.std() > 0.02, f"{path.name}: a blank picture"
    assert (rgb.min(axis=-1) < 0.5).mean() > 0.002, f"{path.name}: no dark ink (text, lines)"
    return image


def run_bnexp(*args, cwd=None, timeout=600, env=None) -> subprocess.CompletedProcess:
    """The installed console script in a subprocess, as a user runs it: stdout and stderr
    apart, nothing downloaded."""
    exe = Path(sys.executable).with_name("bnexp")
    env = {**os.environ, "BNEXP_NO_DOWNLOAD": "1", **(env or {})}
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def whole_and_resumed(cfg: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Through the installed script: the config trained whole (under tmp_path/whole), and
    again interrupted by SIGINT after its first epoch, then resumed (tmp_path/cut); the
    two run folders."""
    import pandas as pd

    exe = str(Path(sys.executable).with_name("bnexp"))
    env = {**os.environ, "BNEXP_NO_DOWNLOAD": "1"}
    whole = subprocess.run([exe, "train", str(cfg), "--runs-dir", str(tmp_path / "whole")],
                           capture_output=True, text=True, env=env, timeout=300)
    assert whole.returncode == 0, whole.stderr
    proc = subprocess.Popen([exe, "train", str(cfg), "--runs-dir", str(tmp_path / "cut")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "cut").glob("*/metrics.csv")) or len(pd.read_csv(
            next((tmp_path / "cut").glob("*/metrics.csv")))) < 1:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    (cut,) = list((tmp_path / "cut").iterdir())
    assert runs.read_summary(cut)["status"] == "interrupted"
    resumed = subprocess.run([exe, "train", "--resume", str(cut)], capture_output=True,
                             text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    (whole_dir,) = list((tmp_path / "whole").iterdir())
    return whole_dir, cut


DIAGNOSTIC_FILES = ("grad_norms.csv", "weight_norms.csv", "predictiveness.csv", "drift.csv",
                    "activations.csv")


def assert_same_run(a: Path, b: Path) -> None:
    """Two run folders with equal metrics (timings aside), equal diagnostics files and
    equal checkpoint arrays."""
    import pandas as pd

    columns = ["epoch", "train_loss", "train_acc", "val_loss", "test_loss", "test_acc"]
    pd.testing.assert_frame_equal(pd.read_csv(a / "metrics.csv")[columns],
                                  pd.read_csv(b / "metrics.csv")[columns], check_exact=True)
    for name in DIAGNOSTIC_FILES:  # written as it trains: cut back and rewritten on resume
        assert (a / name).is_file() == (b / name).is_file(), name
        if (a / name).is_file():
            assert (a / name).read_text() == (b / name).read_text(), name
    with np.load(a / "checkpoint.npz") as x, np.load(b / "checkpoint.npz") as y:
        assert x.files == y.files
        for key in x.files:
            if key != "meta":
                np.testing.assert_array_equal(x[key], y[key], err_msg=key)
