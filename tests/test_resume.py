"""Resume: checkpoints, SIGKILL mid-epoch then --resume == an uninterrupted run; refusals."""

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from typer.testing import CliRunner

from bnexp import config, data, runs, sweep
from bnexp.cli import app
from bnexp.model import build as models
from bnexp.training import lifecycle, stop
from tests.helpers import SYNTHETIC, Quiet, needs_fashion, steps_for

ROOT = Path(__file__).resolve().parents[1]
METRICS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"]


def interrupted_run(write_config, tmp_path, text=SYNTHETIC, after_epochs=1):
    """A real run stopped (as by Ctrl-C) after `after_epochs` epochs; returns its folder."""
    (spec,) = config.load(write_config(text))
    splits = data.load(spec.config.data)

    class StopAfter(Quiet):
        def epoch_done(self, row):
            if row["epoch"] == after_epochs:
                stop.request()

    (tmp_path / "runs").mkdir()
    with stop.handling(), pytest.raises(KeyboardInterrupt):
        lifecycle.run_one(spec, splits, tmp_path / "runs", StopAfter())
    (path,) = list((tmp_path / "runs").iterdir())
    return path, spec


def test_resume_continues_without_gap_or_duplicate(write_config, tmp_path):
    path, spec = interrupted_run(write_config, tmp_path, SYNTHETIC.replace("epochs: 2",
                                                                           "epochs: 3"))
    summary = runs.read_summary(path)
    assert summary["status"] == "interrupted" and summary["epochs_done"] == 1
    result = CliRunner().invoke(app, ["train", "--resume", str(path)])
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in runs.read_metrics(path)] == [1, 2, 3]
    summary = runs.read_summary(path)
    assert summary["status"] == "completed" and summary["resumed"][0]["from_epoch"] == 1
    again = CliRunner().invoke(app, ["train", "--resume", str(path)])  # finished: left alone
    assert again.exit_code == 0 and "already completed" in again.output
    assert [r["epoch"] for r in runs.read_metrics(path)] == [1, 2, 3]


def test_resume_refuses_what_it_cannot_continue(write_config, tmp_path):
    path, _ = interrupted_run(write_config, tmp_path)
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    summary = runs.read_summary(path)
    runs.RunFolder(path).write_summary({**summary, "status": "running", "pid": os.getpid()})
    code = CliRunner().invoke(app, ["train", "--resume", str(path)])
    assert code.exit_code == 2 and "still running" in code.output
    runs.RunFolder(path).write_summary(summary)
    before["summary.json"] = (path / "summary.json").read_bytes()
    (path / "config.yaml").write_text((path / "config.yaml").read_text().replace(
        "epochs: 2", "epochs: 5"))
    code = CliRunner().invoke(app, ["train", "--resume", str(path)])
    assert code.exit_code == 2 and "config changed" in code.output
    for name in ("summary.json", "metrics.csv", "checkpoint.npz"):
        assert (path / name).read_bytes() == before[name]
    code = CliRunner().invoke(app, ["train", "--resume", str(tmp_path)])
    assert code.exit_code == 2 and "not a run folder" in code.output
    code = CliRunner().invoke(app, ["train"])
    assert code.exit_code == 2 and "either CONFIG or --resume" in code.output


def test_a_sweep_rerun_resumes_an_interrupted_run_in_its_own_folder(write_config, tmp_path):
    path, spec = interrupted_run(write_config, tmp_path)
    outcomes = sweep.run_all([spec], tmp_path / "runs", Quiet(), "test")
    assert [(o.path, o.status) for o in outcomes] == [(path, "completed")]
    assert [r["epoch"] for r in runs.read_metrics(path)] == [1, 2]


def test_divergence_is_reported_at_the_exact_step(write_config, tmp_path):
    text = SYNTHETIC + ("model: {arch: mlp, activation: relu, bn: {placement: none}}\n"
                        "optimizer: {learning_rate: 300.0}\n")  # NaN at step 5: inside a call of 16
    (spec,) = config.load(write_config(text))
    cfg, splits = spec.config, data.load(spec.config.data)
    outcome = lifecycle.run_one(spec, splits, tmp_path, Quiet())
    summary = runs.read_summary(outcome.path)
    assert summary["status"] == "diverged"
    # replay step by step, independently, to find the first non-finite loss
    tf.keras.utils.set_random_seed(cfg.seed)
    model = models.build(cfg.model, splits.input_shape)
    steps = steps_for(cfg, model, splits.input_shape)
    order, batch, n = np.random.default_rng(cfg.seed), cfg.data.batch_size, len(splits.x_train)
    first = None
    for epoch in range(1, cfg.train.epochs + 1):
        perm = order.permutation(n)
        for step in range(math.ceil(n / batch)):
            idx = perm[step * batch : (step + 1) * batch]
            if not math.isfinite(float(steps.train_step(splits.x_train[idx],
                                                        splits.y_train[idx])[0])):
                first = {"epoch": epoch, "step": step + 1}
                break
        if first:
            break
    assert summary["diverged_at"] == first and first["step"] % cfg.train.steps_per_call != 0
    assert len(runs.read_metrics(outcome.path)) == summary["epochs_done"] == first["epoch"] - 1


@pytest.mark.e2e
@needs_fashion
def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path):
    text = ("name: det\ndata: {limit: 4000, validation_size: 500, test_limit: 1000, "
            "batch_size: 64}\noptimizer: {learning_rate: 0.1, momentum: 0.9}\n"
            "train: {epochs: 3, deterministic: true}\n")
    cfg = tmp_path / "det.yaml"
    cfg.write_text(text)
    exe = str(Path(sys.executable).with_name("bnexp"))
    env = {**os.environ, "BNEXP_NO_DOWNLOAD": "1"}

    def train_cli(*args, **kw):
        return subprocess.run([exe, "train", *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=300, **kw)

    assert train_cli(cfg, "--runs-dir", tmp_path / "whole").returncode == 0
    seed = random.randrange(10**6)
    delay = random.Random(seed).uniform(0.0, 2.5)
    proc = subprocess.Popen([exe, "train", str(cfg), "--runs-dir", str(tmp_path / "killed")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "killed").glob("*/summary.json")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    time.sleep(delay)  # a random point: before, within or between epochs
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (killed,) = list((tmp_path / "killed").iterdir())
    shown = CliRunner().invoke(app, ["compare", str(tmp_path / "killed"), "--runs", "--format",
                                     "json"])
    status = json.loads(shown.output)[0]["status"]
    assert status in ("interrupted", "completed"), f"kill after {delay:.2f}s (seed {seed})"
    resumed = train_cli("--resume", killed)
    assert resumed.returncode == 0, resumed.stderr
    (whole,) = list((tmp_path / "whole").iterdir())
    a = pd.read_csv(whole / "metrics.csv")[METRICS]
    b = pd.read_csv(killed / "metrics.csv")[METRICS]
    pd.testing.assert_frame_equal(a, b, check_exact=True, obj=f"metrics (kill at {delay:.2f}s)")
    with np.load(whole / "checkpoint.npz") as fa, np.load(killed / "checkpoint.npz") as fb:
        for key in fa.files:
            if key != "meta":
                np.testing.assert_array_equal(fa[key], fb[key], err_msg=key)
    assert runs.read_summary(killed)["status"] == "completed"
