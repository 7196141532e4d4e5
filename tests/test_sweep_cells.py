"""Sweeps of arms (sweep.cells): expansion, labels, refusals, validate's listing,
`summary --cell`, the label as a compare column; one sweep of two arms trained end to
end on Fashion-MNIST through the installed script."""

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnexp import config
from bnexp.analysis import compare
from bnexp.cli import app
from bnexp.config.cells import pick_cell
from bnexp.errors import ConfigError
from bnexp.runs.record import RunRecord
from tests.helpers import SYNTHETIC, fake_run, needs_fashion, run_bnexp

ARMS = SYNTHETIC + """
sweep:
  grid: {model.bn.placement: [before, none]}
  cells:
    - {label: adam, optimizer.name: adam, optimizer.learning_rate: 0.001}
    - {optimizer.name: sgd, optimizer.momentum: 0.9, optimizer.learning_rate: 0.1}
  seeds: [0, 1]
"""


def invoke(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def refused(path: Path, *args) -> str:
    """The one line `bnexp validate` refuses the config with (exit code 2)."""
    code, out, err = invoke("validate", path, *args)
    assert code == 2 and out == "" and len(err.splitlines()) == 1, (code, out, err)
    return err.strip().removeprefix("error: ")


# ---------------------------------------------------------------- expansion


def test_arms_cross_the_grid_and_the_seeds_each_labelled(write_config):
    specs = config.load(write_config(ARMS))
    assert [s.label for s in specs] == [
        "syn_adam_placement=before_s0", "syn_adam_placement=before_s1",
        "syn_adam_placement=none_s0", "syn_adam_placement=none_s1",
        "syn_sgd-0.9-0.1_placement=before_s0", "syn_sgd-0.9-0.1_placement=before_s1",
        "syn_sgd-0.9-0.1_placement=none_s0", "syn_sgd-0.9-0.1_placement=none_s1"]
    adam, sgd = specs[0], specs[-1]
    assert adam.arm == {"label": "adam", "optimizer.name": "adam",
                        "optimizer.learning_rate": 0.001}
    assert adam.cell == {**adam.arm, "model.bn.placement": "before"}  # summary.json's cell
    assert (sgd.config.optimizer.name, sgd.config.optimizer.momentum) == ("sgd", 0.9)
    assert (adam.config.optimizer.name, adam.config.optimizer.momentum) == ("adam", 0.0)
    assert all(s.config.sweep is None for s in specs)
    assert "label" not in config.to_yaml(adam.config)  # config.yaml reproduces the run


def test_a_config_without_cells_expands_as_before(write_config):
    plain = SYNTHETIC + "sweep: {grid: {model.bn.placement: [before, none]}, seeds: [0, 1]}\n"
    specs = config.load(write_config(plain))
    assert [s.label for s in specs] == ["syn_placement=before_s0", "syn_placement=before_s1",
                                        "syn_placement=none_s0", "syn_placement=none_s1"]
    assert specs[0].cell == {"model.bn.placement": "before"} and specs[0].arm == {}
    one_arm = config.load(write_config(plain.replace("seeds:", "cells: [{label: base}], seeds:"),
                                       "b.yaml"))
    assert [config.config_hash(s.config) for s in one_arm] == [
        config.config_hash(s.config) for s in specs]  # an arm of the config as written
    assert one_arm[0].label == "syn_base_placement=before_s0"


def test_an_override_shows_only_in_the_arms_it_reaches(write_config):
    path = write_config(SYNTHETIC + "sweep: {cells: [{label: a, optimizer.learning_rate: 0.5},"
                        " {label: b, model.bn.placement: none}]}\n")
    a, b = config.load(path, ["optimizer.learning_rate=0.2"])
    assert (a.label, a.config.optimizer.learning_rate) == ("syn_a_s0", 0.5)
    assert (b.label, b.config.optimizer.learning_rate) == ("syn_b_learning_rate=0.2_s0", 0.2)


# ---------------------------------------------------------------- refusals, one line each


@pytest.mark.parametrize("cells, message", [
    ("[{label: a}, {label: b, optimizer.learning_rate: 0}]",
     "c.yaml (sweep.cells[1].optimizer.learning_rate): optimizer.learning_rate: input "
     "should be greater than 0; got 0 (an integer)"),
    ("[{optimizer.learnin_rate: 0.1}]",
     "c.yaml: sweep.cells[0]: 'optimizer.learnin_rate' is not a config key (did you mean "
     "'optimizer.learning_rate'?)"),
    ("[{label: a}, {model.bn.placement: none}]",
     "c.yaml: sweep.cells[1] and sweep.grid both set model.bn.placement; set it in one "
     "place (the grid sets it in every arm)"),
    ("[{label: a}, {label: b, optimizer.name: sgd}]",
     "c.yaml: sweep.cells: the arms 'a' and 'b' make the same run (it would train twice)"),
    ("[{label: a, train.epochs: 1}, {label: a, train.epochs: 3}]",
     "c.yaml: sweep.cells[0] and sweep.cells[1] are both labelled 'a' (an arm without a "
     "label is labelled by its values); give each arm a label of its own"),
    ("[{train.epochs: 1}, {label: '1', train.epochs: 3}]",
     "c.yaml: sweep.cells[0] and sweep.cells[1] are both labelled '1' (an arm without a "
     "label is labelled by its values); give each arm a label of its own"),
    ("[{label: a b}]", "c.yaml (sweep.cells[0].label): expected letters, digits, '.', '_' or "
     "'-', starting with a letter or digit, at most 80; got 'a b'"),
    ("[{label: 7}]", "c.yaml (sweep.cells[0].label): expected letters, digits, '.', '_' or "
     "'-', starting with a letter or digit, at most 80; got 7 (not text)"),
    ("[{}]", "c.yaml: sweep.cells[0]: an empty arm; give it keys to set, or a label (an arm "
     "of the config as written)"),
    ("[{seed: 3}]", "c.yaml: sweep.cells[0]: seed is not a sweep key (use sweep.seeds; the "
     "name is the config's)"),
    ("[]", "c.yaml: sweep: cells is an empty list (leave it out for no arms)"),
])
def test_a_bad_arm_is_refused_in_one_line_naming_it(write_config, cells, message):
    path = write_config(SYNTHETIC + "sweep: {grid: {model.bn.placement: [before, none]}, "
                        f"cells: {cells}}}\n")
    assert refused(path) == str(path.parent / message)


def test_an_arm_invalid_for_its_optimizer_is_refused_and_named(write_config):
    """Adam with momentum: the arm is named (the rule spans the optimizer's keys), while
    the same momentum in an SGD arm of the file is fine."""
    path = write_config(ARMS.replace("optimizer.learning_rate: 0.001}",
                                     "optimizer.learning_rate: 0.001, optimizer.momentum: 0.9}"))
    assert refused(path).startswith(f"{path} (sweep.cells[0]): optimizer: momentum")
    assert len(config.load(write_config(ARMS, "ok.yaml"))) == 8


def test_a_set_that_every_arm_overrides_is_refused(write_config):
    path = write_config(ARMS)
    assert refused(path, "--set", "optimizer.name=rmsprop") == (
        f"{path} (--set optimizer.name): sweep.cells sets optimizer.name in every arm, so "
        "this value would be ignored; change the config's sweep.cells instead")
    assert refused(path, "--set", "optimizer={name: rmsprop}").startswith(
        f"{path} (--set optimizer): sweep.cells sets optimizer.name in every arm")


def test_the_run_count_includes_the_arms(write_config):
    seeds = list(range(100))
    path = write_config(SYNTHETIC + f"sweep: {{grid: {{train.epochs: {list(range(1, 101))}}},"
                        f" seeds: {seeds}, cells: [{{label: a}}, {{label: b}}, {{label: c}}]}}\n")
    assert refused(path) == (f"{path}: sweep: 30,000 runs (3 arms x 100 train.epochs x 100 "
                             "seeds): more than 20,000; split it into several configs")


# ---------------------------------------------------------------- validate, summary


def test_validate_lists_the_arms_then_each_run_with_its_label(write_config):
    path = write_config(ARMS)
    code, out, _ = invoke("validate", path)
    assert code == 0
    assert out.splitlines()[:5] == [
        f"{path}: valid, 8 runs", "  2 arms:",
        "    adam: optimizer.name=adam, optimizer.learning_rate=0.001",
        "    sgd-0.9-0.1: optimizer.name=sgd, optimizer.momentum=0.9, "
        "optimizer.learning_rate=0.1",
        "  syn_adam_placement=before_s0  (label=adam, model.bn.placement=before)"]


MODELS = SYNTHETIC + """
model: {arch: mlp, hidden: [8]}
sweep:
  grid: {train.epochs: [1, 2]}
  cells: [{label: narrow}, {label: wide, model.hidden: [16]}]
  seeds: [0, 1]
"""


def test_summary_cells_are_numbered_seeds_aside_and_out_of_range_is_refused(write_config):
    path = write_config(MODELS)
    specs = config.load(path)
    spec, line = pick_cell(specs, None, "m.yaml")
    assert spec is specs[0] and line == (
        "cell 0 of 4 (label=narrow, train.epochs=1); the cells make 2 different models: "
        "--cell N (0 to 3) for the others")
    spec, line = pick_cell(specs, 3, "m.yaml")
    assert spec is specs[6] and spec.config.model.hidden == [16]
    assert line == "cell 3 of 4 (label=wide, train.epochs=2)"
    same = config.load(write_config(SYNTHETIC + "sweep: {grid: {train.epochs: [1, 2]}}", "s.yaml"))
    assert pick_cell(same, None, "s.yaml") == (same[0], "")  # one model: every run's
    with pytest.raises(ConfigError, match=r"^m.yaml: --cell 4: the config has 4 cells \(0 to 3\)$"):
        pick_cell(specs, 4, "m.yaml")
    assert invoke("summary", path, "--cell", "4")[0] == 2


@pytest.mark.tf  # builds the model
def test_summary_cell_shows_that_cells_model(write_config):
    code, out, _ = invoke("summary", write_config(MODELS), "--cell", "2")
    assert code == 0
    assert out.splitlines()[0] == "cell 2 of 4 (label=wide, train.epochs=1)"
    assert "(None, 16)" in out and "(None, 8)" not in out


# ---------------------------------------------------------------- compare


def arm_runs(folder: Path) -> None:
    """Two arms by three seeds: sgd better than adam by 0.05 + 0.01 * seed."""
    for seed in range(3):
        for label, name, acc in (("adam", "adam", 0.80), ("sgd", "sgd", 0.85 + 0.01 * seed)):
            fake_run(folder, seed, [acc], name="arms", optimizer__name=name,
                     summary={"cell": {"label": label, "optimizer.name": name}})
    fake_run(folder, 0, [0.5], name="older")  # a run without arms: no label


def test_the_label_is_a_compare_column_and_pairs_arms_by_seed(tmp_path):
    arm_runs(tmp_path)
    found = compare.load(tmp_path)
    assert "label" in found.config_keys
    assert compare.group_keys(found, None) == ["label", "name"]  # the label names the keys
    out = compare.table(found, by=["label"], baseline="label=adam")
    sgd = out[out["label"] == "sgd"].iloc[0]
    assert (sgd["test"], sgd["n_pairs"]) == ("paired", 3)
    assert sgd["delta"] == pytest.approx(0.06)
    assert math.isnan(out["label"].iloc[-1])  # the older run


def test_compare_by_label_through_the_cli(tmp_path):
    arm_runs(tmp_path)
    code, out, _ = invoke("compare", tmp_path, "--baseline", "label=adam", "--format", "json")
    rows = {row["label"]: row for row in json.loads(out) if row["name"] == "arms"}
    assert code == 0 and rows["sgd"]["test"] == "paired" and rows["sgd"]["n_pairs"] == 3


def test_a_label_that_is_not_text_reads_as_none():
    record = RunRecord(Path("r"), {"cell": {"label": 3}}, "completed")
    assert record.label is None and RunRecord(Path("r"), {}, "completed").label is None


# ---------------------------------------------------------------- end to end


@pytest.mark.e2e
@pytest.mark.slow
@needs_fashion
def test_a_sweep_of_two_arms_trains_and_compare_pairs_them(tmp_path):
    cfg = tmp_path / "arms.yaml"
    cfg.write_text("name: arms\ndata: {batch_size: 64, validation_size: 0, limit: 512, "
                   "test_limit: 500}\nmodel: {arch: mlp, hidden: [32]}\ntrain: {epochs: 1}\n"
                   "sweep:\n  seeds: [0, 1]\n  cells:\n"
                   "    - {label: adam, optimizer.name: adam, optimizer.learning_rate: 0.001}\n"
                   "    - {label: sgd, optimizer.name: sgd, optimizer.momentum: 0.9, "
                   "optimizer.learning_rate: 0.1}\n")
    out = run_bnexp("train", cfg, "--runs-dir", tmp_path / "runs", "--jobs", "1")
    assert out.returncode == 0, out.stderr
    folders = [Path(f) for f in out.stdout.splitlines()]
    assert [f.name.rsplit("_", 1)[0] for f in folders] == [
        "arms_adam_s0", "arms_adam_s1", "arms_sgd_s0", "arms_sgd_s1"]
    summary = json.loads((folders[2] / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["cell"] == {
        "label": "sgd", "optimizer.name": "sgd", "optimizer.momentum": 0.9,
        "optimizer.learning_rate": 0.1}
    assert run_bnexp("validate", folders[2] / "config.yaml").returncode == 0
    table = run_bnexp("compare", tmp_path / "runs", "--by", "label", "--baseline", "label=adam",
                      "--format", "json")
    assert table.returncode == 0, table.stderr
    rows = {row["label"]: row for row in json.loads(table.stdout)}
    assert rows["adam"]["baseline"] == "(baseline)" and rows["adam"]["n"] == 2
    assert (rows["sgd"]["test"], rows["sgd"]["n_pairs"]) == ("paired", 2)
    assert rows["sgd"]["baseline"] == "label=adam" and math.isfinite(rows["sgd"]["delta"])
