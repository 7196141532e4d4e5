"""compare that never flatters, on real run folders: --at best chooses each run's epoch on
validation (--select), in new and old run folders alike; --by splits runs that differ in
another setting instead of pooling them; rows in the order of their values (numbers as
numbers); --columns; arm labels as columns and baselines. No TensorFlow."""

import json

import pytest
from scipy import stats
from typer.testing import CliRunner

from bnexp import runs
from bnexp.analysis import compare
from bnexp.cli import app
from tests.helpers import fake_run, fake_run_rows

# a run whose best test epoch (2) is not its best validation epoch (3 by val_acc, 4 by
# val_loss): the test set's best would flatter it
EPOCHS = [{"val_loss": 0.80, "val_acc": 0.60, "test_loss": 0.85, "test_acc": 0.58},
          {"val_loss": 0.60, "val_acc": 0.66, "test_loss": 0.50, "test_acc": 0.74},
          {"val_loss": 0.55, "val_acc": 0.70, "test_loss": 0.60, "test_acc": 0.69},
          {"val_loss": 0.50, "val_acc": 0.68, "test_loss": 0.58, "test_acc": 0.67},
          {"val_loss": 0.70, "val_acc": 0.65, "test_loss": 0.70, "test_acc": 0.66}]


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def shifted(rows, by):
    return [{k: v + by for k, v in row.items()} for row in rows]


def test_at_best_reports_the_metric_at_the_epoch_chosen_on_validation(tmp_path):
    """Each run's test accuracy at its best val_acc epoch (3), not its best test accuracy
    (epoch 2); --select val_loss takes epoch 4; --runs shows the epoch chosen; summary.json's
    best records the same epoch and how it was chosen."""
    folders = [fake_run_rows(tmp_path, shifted(EPOCHS, seed / 100), seed=seed)
               for seed in range(3)]
    best = runs.read_summary(folders[0])["best"]
    assert (best["selected_by"], best["epoch"], best["test_acc"]) == ("val_acc", 3, 0.69)
    assert runs.read_summary(folders[0])["schema"] == runs.SCHEMA
    code, out, err = invoke("compare", tmp_path, "--at", "best", "--format", "json")
    assert code == 0, err
    row = json.loads(out)[0]
    assert (row["at"], row["selected_by"]) == ("best", "val_acc")
    assert row["mean"] == pytest.approx(0.70)  # 0.69, 0.70, 0.71; the test's best: 0.75
    code, out, err = invoke("compare", tmp_path, "--at", "best", "--select", "val_loss",
                            "--runs", "--format", "json")
    assert code == 0, err
    assert [(r["epoch"], r["test_acc"]) for r in json.loads(out)] == [
        (4, pytest.approx(0.67)), (4, pytest.approx(0.68)), (4, pytest.approx(0.69))]
    code, out, err = invoke("compare", tmp_path, "--at", "best", "--metric", "test_loss",
                            "--format", "json")  # a loss: at the lowest val_loss
    assert json.loads(out)[0]["selected_by"] == "val_loss"
    assert json.loads(out)[0]["mean"] == pytest.approx(0.59)
    code, out, err = invoke("compare", tmp_path, "--at", "best")
    assert code == 0 and "epoch of best val_acc" in out  # the title (wrapped)


def test_a_run_folder_of_an_older_bnexp_is_chosen_again_from_metrics_csv(tmp_path):
    """Its summary.json (no schema) held each metric's best over epochs, test_acc's
    chosen on the test set (0.74): compare reads metrics.csv and chooses on validation."""
    old_best = runs.record.final_of({}) | {"test_acc": 0.74, "test_acc_epoch": 2}
    folder = fake_run_rows(tmp_path, EPOCHS, summary={"schema": None, "best": old_best})
    assert "schema" not in runs.read_record(folder).summary
    found = compare.load(tmp_path)
    assert found.table["best_test_acc"].isna().all()  # the old best is not read
    assert compare.table(found, at="best")["mean"].iloc[0] == pytest.approx(0.69)
    rows = compare.run_rows(found, at="best", select="val_loss")
    assert (rows["epoch"].iloc[0], rows["test_acc"].iloc[0]) == (4, pytest.approx(0.67))


def test_at_best_without_a_validation_split_refuses_in_one_line(tmp_path):
    for seed in range(2):
        fake_run(tmp_path, seed, [0.5, 0.7, 0.6])  # no val_* columns: validation_size 0
    fake_run(tmp_path, 5, [0.1], status="failed")  # not completed: not in the way
    code, out, err = invoke("compare", tmp_path, "--at", "best")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(
        "error: --at best: 2 completed runs have no val_acc in any epoch (exp_s0_")
    assert "use --at final, or train with data.validation_size > 0" in err
    assert invoke("compare", tmp_path)[0] == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--at", "best", "--select", "test_acc"], "--select test_acc: expected val_loss or val_acc"),
    (["--select", "val_loss"], "--select val_loss: only with --at best"),
])
def test_select_is_a_validation_metric_with_at_best_only(tmp_path, args, message):
    fake_run_rows(tmp_path, EPOCHS)
    code, out, err = invoke("compare", tmp_path, *args)
    assert code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1


def test_by_over_runs_that_also_differ_by_learning_rate_splits_them_never_pools(tmp_path):
    """The issue's case: placement x 3 learning rates x 3 seeds. `--by placement` was 9
    pairs of one pool (p = 1.3e-6); it is a row per placement and rate, each BN row paired
    over its own rate's 3 seeds, its p scipy's ttest_rel over them."""
    acc = {}
    for lr, base in ((0.01, 0.60), (0.1, 0.75), (1.0, 0.82)):
        for seed in range(3):
            for placement, gain in (("none", 0.0), ("before", 0.02 + 0.01 * seed * seed)):
                acc[placement, lr, seed] = base + gain + 0.005 * seed
                fake_run(tmp_path, seed, [acc[placement, lr, seed]],
                         model__bn__placement=placement, optimizer__learning_rate=lr)
    code, out, err = invoke("compare", tmp_path, "--by", "model.bn.placement", "--baseline",
                            "model.bn.placement=none", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["model.bn.placement"], r["optimizer.learning_rate"], r["n"]) for r in rows] == [
        ("before", 0.01, 3), ("before", 0.1, 3), ("before", 1.0, 3),
        ("none", 0.01, 3), ("none", 0.1, 3), ("none", 1.0, 3)]
    for row in rows[:3]:
        lr = row["optimizer.learning_rate"]
        ref = stats.ttest_rel([acc["before", lr, s] for s in range(3)],
                              [acc["none", lr, s] for s in range(3)])
        assert (row["test"], row["n_pairs"], row["baseline"]) == (
            "paired", 3, "model.bn.placement=none")
        assert row["p_value"] == pytest.approx(ref.pvalue)
    assert ("--by model.bn.placement: the runs also differ by optimizer.learning_rate: a row "
            "for each of its values") in err


def test_numeric_keys_sort_as_numbers(tmp_path):
    for size in (2, 32, 4, 8):  # folder names sort 2, 32, 4, 8
        for seed in range(2):
            fake_run(tmp_path / f"bs{size}", seed, [0.5 + size / 100], data__batch_size=size)
    code, out, _ = invoke("compare", tmp_path, "--format", "csv", "--columns",
                          "data.batch_size")
    assert code == 0 and out.split() == ["data.batch_size", "2", "4", "8", "32"]
    code, out, _ = invoke("compare", tmp_path, "--runs", "--format", "csv", "--columns",
                          "data.batch_size,seed")
    assert out.split()[1:] == ["2,0", "2,1", "4,0", "4,1", "8,0", "8,1", "32,0", "32,1"]


def test_columns_chooses_the_columns_in_their_order(tmp_path):
    for seed in range(2):
        for placement in ("none", "before"):
            fake_run(tmp_path, seed, [0.7 + seed / 100 + (placement == "before") / 10],
                     model__bn__placement=placement)
    base = ["compare", tmp_path, "--baseline", "model.bn.placement=none"]
    code, out, _ = invoke(*base, "--format", "csv", "--columns", "model.bn.placement",
                          "--columns", "delta,p_value,effect_size")
    assert code == 0 and out.splitlines()[0] == "model.bn.placement,delta,p_value,effect_size"
    code, out, _ = invoke(*base, "--columns", "model.bn.placement,mean,p_holm")
    assert code == 0 and "p_holm" in out and "95% CI" not in out  # the columns as named
    code, out, err = invoke(*base, "--columns", "mean,p_vlaue")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--columns p_vlaue: not a column of this table" in err
    assert "did you mean 'p_value'" in err


def test_arm_labels_are_columns_and_baselines_at_the_best_epoch(tmp_path):
    """Arms of sweep.cells (summary.json's cell.label) group by label; --baseline label=...
    pairs them seed by seed, at the epoch chosen on validation too."""
    for seed in range(3):
        for label, name, lift in (("adam", "adam", 0.0), ("sgd", "sgd", 0.03 + 0.01 * seed)):
            fake_run_rows(tmp_path, shifted(EPOCHS, lift + seed / 100), seed=seed, name="arms",
                          optimizer__name=name,
                          summary={"cell": {"label": label, "optimizer.name": name}})
    code, out, err = invoke("compare", tmp_path, "--baseline", "label=adam", "--at", "best",
                            "--format", "json")
    assert code == 0, err
    rows = {r["label"]: r for r in json.loads(out)}
    assert "optimizer.name" not in rows["sgd"]  # the label names the arm's keys
    assert (rows["sgd"]["test"], rows["sgd"]["n_pairs"]) == ("paired", 3)
    assert rows["sgd"]["delta"] == pytest.approx(0.04)
    assert rows["adam"]["mean"] == pytest.approx(0.70)
