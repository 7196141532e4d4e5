"""The notebooks' failures on real Fashion-MNIST subsets, and `bnexp doctor` naming them:
notebook 004's broken moving average, and each BN behaviour."""

import csv
import json
from pathlib import Path

import pytest

from tests.helpers import needs_fashion, run_bnexp

ROOT = Path(__file__).resolve().parents[1]
NB004 = ROOT / "configs" / "notebooks" / "004_mxnet_lenet_broken_moving_average.yaml"
NB004_FIXED = ROOT / "configs" / "notebooks" / "004_mxnet_lenet_fixed.yaml"
# 004 starts slowly (weights and gamma from N(0, 0.01)): it needs the full training set for
# two epochs to climb, as the notebook did (0.151, 0.756); the others a subset
FULL_TWO_EPOCHS = ["--set", "data.test_limit=2000", "--set", "train.epochs=2"]
SUBSET = ["--set", "data.limit=6000", *FULL_TWO_EPOCHS]
pytestmark = [pytest.mark.e2e, needs_fashion]


def train(config: Path, runs_dir: Path, *args, budget=SUBSET) -> tuple[Path, list[dict]]:
    result = run_bnexp("train", config, "--runs-dir", runs_dir, *budget, *args)
    assert result.returncode == 0, result.stderr
    (run,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    with open(run / "metrics.csv") as f:
        return run, [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(f)]


def doctor(path: Path) -> dict[str, str]:
    """id -> severity of every finding."""
    result = run_bnexp("doctor", path, "--format", "json")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return {f["id"]: f["severity"] for f in json.loads(result.stdout)}


def test_notebook_004_trains_while_its_test_accuracy_sits_at_chance(tmp_path):
    """As the notebook printed: training accuracy climbs (training mode, batch statistics)
    while test accuracy stays at 0.100: the broken moving average; doctor names it."""
    run, rows = train(NB004, tmp_path / "broken", budget=FULL_TWO_EPOCHS)
    assert rows[-1]["train_acc"] > 0.6
    assert all(row["test_acc"] <= 0.15 for row in rows)
    assert rows[-1]["test_acc_batchstats"] > 0.6  # the weights are fine
    assert doctor(run)["moving_stats_broken"] == "error"
    summary = json.loads((run / "summary.json").read_text())
    assert any("mxnet_moving_average" in note for note in summary["notes"])


def test_notebook_004_fixed_reaches_what_its_training_accuracy_promises(tmp_path):
    run, rows = train(NB004_FIXED, tmp_path / "fixed", budget=FULL_TWO_EPOCHS)
    assert rows[-1]["test_acc"] > 0.6
    assert abs(rows[-1]["test_acc"] - rows[-1]["test_acc_batchstats"]) < 0.1
    assert "error" not in doctor(run).values()


LENET = ROOT / "configs" / "d2l_lenet_bn.yaml"


def test_each_bn_behaviour_on_real_data_is_diagnosed(tmp_path):
    """batch_stats_at_inference: inference uses each batch's own statistics (doctor: an
    error); frozen_moving_stats: inference uses the initial 0 / 1 statistics (broken);
    moving_stats_in_training and standard train and evaluate normally (no error). Each
    behaviour once, the two layers taking turns: that they compute the same is tested
    against NumPy in tests/test_bn.py."""
    found = {}
    for behaviour, impl in (("standard", "keras"), ("batch_stats_at_inference", "scratch"),
                            ("frozen_moving_stats", "keras"),
                            ("moving_stats_in_training", "scratch")):
        run, rows = train(LENET, tmp_path / behaviour, "--set", f"model.bn.impl={impl}",
                          "--set", f"model.bn.behaviour={behaviour}")
        found[behaviour] = (doctor(run), rows[-1])
    assert "error" not in found["standard"][0].values()
    assert found["standard"][1]["test_acc"] > 0.5
    assert found["batch_stats_at_inference"][0]["batch_stats_at_inference"] == "error"
    frozen_findings, frozen = found["frozen_moving_stats"]
    assert frozen["test_acc"] < frozen["test_acc_batchstats"] - 0.2
    assert frozen_findings["moving_stats_broken"] == "error"
    assert "error" not in found["moving_stats_in_training"][0].values()
