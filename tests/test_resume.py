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
from bnexp.runs import reader
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


@pytest.mark.slow  # over ~2 s: out of the fast loop
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


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_resume_reads_a_hand_edited_field_of_another_type_as_absent(write_config, tmp_path):
    """"resumed": "yes" crashed --resume with an AttributeError after it had rewritten
    summary.json; every field a run writes has a type the reader checks."""
    path, _ = interrupted_run(write_config, tmp_path)
    summary = json.loads((path / "summary.json").read_text())
    assert set(summary) - {"status"} <= set(reader.SUMMARY_KINDS)
    summary.update(resumed="yes", wall_seconds="12s", notes={"a": 1}, error=["x"])
    (path / "summary.json").write_text(json.dumps(summary))
    result = CliRunner().invoke(app, ["train", "--resume", str(path)])
    assert result.exit_code == 0, result.output
    summary = runs.read_summary(path)
    assert summary["status"] == "completed" and summary["resumed"][0]["from_epoch"] == 1
    assert summary["wall_seconds"] < 600 and summary["error"] is None


@pytest.mark.slow  # over ~2 s: out of the fast loop
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


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_a_sweep_rerun_resumes_an_interrupted_run_in_its_own_folder(write_config, tmp_path):
    path, spec = interrupted_run(write_config, tmp_path)
    outcomes = sweep.run_all([spec], tmp_path / "runs", Quiet())
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


KILL_SEED = int(os.environ.get("BNEXP_KILL_SEED", "20261202"))


@pytest.mark.e2e
@needs_fashion
def test_repeated_sigkill_and_resume_equals_an_uninterrupted_run(tmp_path):
    """One run killed (SIGKILL) at several seeded moments, each time resumed, the resumed
    process killed again: it ends bit-identical to a run never interrupted. The moments
    come from $BNEXP_KILL_SEED (printed on failure), spread over the run's training time."""
    text = ("name: kills\ndata: {limit: 2000, validation_size: 300, test_limit: 500, "
            "batch_size: 50}\noptimizer: {learning_rate: 0.1, momentum: 0.9}\n"
            "train: {epochs: 6, steps_per_call: 4, deterministic: true, jit_compile: false}\n")
    cfg = tmp_path / "kills.yaml"
    cfg.write_text(text)
    exe = str(Path(sys.executable).with_name("bnexp"))
    env = {**os.environ, "BNEXP_NO_DOWNLOAD": "1"}
    whole = subprocess.run([exe, "train", str(cfg), "--runs-dir", str(tmp_path / "whole")],
                           capture_output=True, text=True, env=env, timeout=300)
    assert whole.returncode == 0, whole.stderr
    (whole_dir,) = list((tmp_path / "whole").iterdir())
    training = runs.read_summary(whole_dir)["wall_seconds"]
    rng = random.Random(KILL_SEED)
    killed_dir, kills = None, []
    for attempt in range(3):
        args = (["--resume", str(killed_dir)] if killed_dir else
                [str(cfg), "--runs-dir", str(tmp_path / "killed")])
        proc = subprocess.Popen([exe, "train", *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
        started = _wait_until_training(tmp_path / "killed", attempt, proc)
        delay = rng.uniform(0.0, training * 0.5)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_dir = started
        summary = runs.read_summary(killed_dir)
        kills.append((round(delay, 2), summary["epochs_done"]))
    why = f"$BNEXP_KILL_SEED={KILL_SEED}, (delay s, epochs done) per kill: {kills}"
    final = subprocess.run([exe, "train", "--resume", str(killed_dir)], capture_output=True,
                           text=True, env=env, timeout=300)
    assert final.returncode == 0, final.stderr + why
    a = pd.read_csv(whole_dir / "metrics.csv")[METRICS]
    b = pd.read_csv(killed_dir / "metrics.csv")[METRICS]
    pd.testing.assert_frame_equal(a, b, check_exact=True, obj=f"metrics ({why})")
    with np.load(whole_dir / "checkpoint.npz") as fa, np.load(killed_dir / "checkpoint.npz") as fb:
        for key in fa.files:
            if key != "meta":
                np.testing.assert_array_equal(fa[key], fb[key], err_msg=f"{key} ({why})")
    assert runs.read_summary(killed_dir)["status"] == "completed", why


def _wait_until_training(runs_dir: Path, attempt: int, proc) -> Path:
    """The run folder, once the process has started (attempt 0) or resumed (attempt k) it."""
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the run did not start within 120 s"
        for summary_path in runs_dir.glob("*/summary.json"):
            summary = runs.read_summary(summary_path.parent)
            if attempt == 0 or len(summary.get("resumed", [])) >= attempt:
                return summary_path.parent
        if proc.poll() is not None:  # finished before the kill: resume is then a no-op
            (folder,) = list(runs_dir.iterdir())
            return folder
        time.sleep(0.02)
