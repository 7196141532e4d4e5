"""bnexp doctor: each BN problem recognised from real run folders, with its evidence and
advice; healthy runs clean; JSON and text through the CLI; exit codes; no TensorFlow."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnexp import runs
from bnexp.analysis import doctor
from bnexp.cli import app
from tests.helpers import FASHION_DIR, SYNTHETIC, fake_run, fake_run_rows, needs_fashion, run_bnexp

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]

# 1000 training examples in batches of 50: 20 steps an epoch; momentum 0.9 needs 30 steps,
# 0.99 needs 300
TRAIN = 1000
GOOD = {"train_loss": 0.4, "train_acc": 0.88, "test_loss": 0.45, "test_acc": 0.86,
        "test_acc_batchstats": 0.87}


def epochs(n, **values):
    return [{**GOOD, **values} for _ in range(n)]


def ids(findings):
    return [f.id for f in findings]


def only(findings, id_):
    (finding,) = [f for f in findings if f.id == id_]
    return finding


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


# ---------------------------------------------------------------- healthy runs


@pytest.mark.parametrize("keys", [
    {},  # LeNet, BN before the activation, momentum 0.9
    {"model__bn__placement": "none"},
    {"model__arch": "mlp", "model__activation": "relu", "model__bn__placement": "after"},
    {"model__bn__impl": "scratch", "model__bn__virtual_batch_size": 25},
])
def test_a_healthy_run_has_no_findings(tmp_path, keys):
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, **keys)
    assert doctor.diagnose(path) == []


def test_a_healthy_run_with_calm_sigmoid_inputs_has_no_findings(tmp_path):
    bands = [{"step": s, "layer": f"dense{i}_sigmoid", "unit": "all", "p15": -1.2 + s / 500,
              "p50": 0.1, "p85": 1.3} for s in (0, 100, 200) for i in (1, 2)]
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, activations=bands,
                         model__arch="mlp", model__activation="sigmoid")
    assert doctor.diagnose(path) == []


def test_runs_written_by_the_plain_helper_have_no_errors(tmp_path):
    fake_run(tmp_path, 0, [0.7, 0.8])
    fake_run(tmp_path, 1, [0.7, 0.8], model__bn__placement="none")
    found, warnings = doctor.diagnose_all(tmp_path)
    assert warnings == []
    assert [f for f in found if f.severity == "error"] == []


# ---------------------------------------------------------------- moving statistics


def test_moving_stats_broken_with_batch_stats_column(tmp_path):
    # 3 epochs x 20 steps = 60 steps: longer than momentum 0.9 needs, still at chance
    path = fake_run_rows(tmp_path, epochs(3, test_acc=0.098, test_acc_batchstats=0.84),
                         train_size=TRAIN)
    found = doctor.diagnose(path)
    assert ids(found) == ["moving_stats_broken"]
    broken = only(found, "moving_stats_broken")
    assert broken.severity == "error" and broken.run == str(path)
    for number in ("0.098", "0.840", "60 steps", "~30 steps", "momentum 0.9"):
        assert number in broken.evidence
    assert "model.bn.fault: null" in broken.advice and "train.precise_bn" in broken.advice


def test_moving_stats_broken_without_batch_stats_column_uses_train_acc(tmp_path):
    path = fake_run_rows(tmp_path, [{"train_acc": 0.71, "test_acc": 0.1}] * 3,
                         train_size=TRAIN)
    broken = only(doctor.diagnose(path), "moving_stats_broken")
    assert "train_acc is 0.710" in broken.evidence


def test_a_fault_in_the_config_is_broken_even_in_a_short_run(tmp_path):
    # 1 epoch = 20 steps, fewer than momentum 0.9 needs; the fault explains it anyway
    path = fake_run_rows(tmp_path, epochs(1, test_acc=0.1, test_acc_batchstats=0.6),
                         train_size=TRAIN, model__bn__impl="scratch",
                         model__bn__fault="mxnet_moving_average",
                         model__bn__moving_variance_initializer="zeros")
    found = doctor.diagnose(path)
    assert "moving_stats_lag" not in ids(found)
    broken = only(found, "moving_stats_broken")
    assert "fault mxnet_moving_average" in broken.evidence
    assert "initialised with zeros" in broken.evidence


def test_at_chance_in_a_run_too_short_for_its_momentum_is_a_lag(tmp_path):
    # the docs' BN-LeNet after 16 steps: momentum 0.99, 0.100 vs 0.578 with batch statistics
    path = fake_run_rows(tmp_path, epochs(1, test_acc=0.1, test_acc_batchstats=0.578),
                         train_size=TRAIN, model__bn__momentum=0.99)
    found = doctor.diagnose(path)
    assert ids(found) == ["moving_stats_lag"]
    lag = only(found, "moving_stats_lag")
    assert lag.severity == "warning"
    assert "20 steps" in lag.evidence and "~300 steps" in lag.evidence
    assert "model.bn.momentum" in lag.advice and "train.precise_bn" in lag.advice


@pytest.mark.parametrize("test_acc,batch_acc,expected", [
    (0.15, 0.30, ["moving_stats_broken"]),  # both edges count
    (0.151, 0.30, ["moving_stats_lag"]),  # above chance + 0.05: a gap, not broken
    (0.15, 0.299, ["moving_stats_lag"]),  # batch statistics too weak to call it broken
    (0.80, 0.85, []),  # a gap of exactly 0.05 is within the threshold
])
def test_moving_stats_thresholds_at_their_edges(tmp_path, test_acc, batch_acc, expected):
    path = fake_run_rows(tmp_path, epochs(3, test_acc=test_acc, test_acc_batchstats=batch_acc),
                         train_size=TRAIN)
    assert ids(doctor.diagnose(path)) == expected


def test_moving_stats_lag_from_the_gap(tmp_path):
    path = fake_run_rows(tmp_path, epochs(2, test_acc=0.70, test_acc_batchstats=0.81),
                         train_size=TRAIN, model__bn__momentum=0.99)
    lag = only(doctor.diagnose(path), "moving_stats_lag")
    assert lag.severity == "warning"
    assert "0.110 higher" in lag.evidence and "40 steps" in lag.evidence
    assert "momentum 0.99" in lag.evidence


def test_a_gap_within_the_threshold_is_no_lag(tmp_path):
    path = fake_run_rows(tmp_path, epochs(2, test_acc=0.80, test_acc_batchstats=0.84),
                         train_size=TRAIN, model__bn__momentum=0.99)
    assert "moving_stats_lag" not in ids(doctor.diagnose(path))


def test_unmeasured_gap_of_a_short_run_is_info(tmp_path):
    path = fake_run_rows(tmp_path, [{"train_acc": 0.5, "test_acc": 0.45}],
                         train_size=TRAIN, model__bn__momentum=0.99)
    lag = only(doctor.diagnose(path), "moving_stats_lag")
    assert lag.severity == "info" and "batch_stats_eval" in lag.evidence


def test_the_slowest_listed_bn_layer_sets_the_steps_needed(tmp_path):
    layers = [{"type": "flatten"}, {"type": "dense", "units": 32, "use_bias": False},
              {"type": "bn", "momentum": 0.999}, {"type": "activation", "activation": "relu"},
              {"type": "dense", "units": 10}]
    path = fake_run_rows(tmp_path, epochs(2, test_acc=0.5, test_acc_batchstats=0.8),
                         train_size=TRAIN, model__arch="layers", model__layers=layers)
    lag = only(doctor.diagnose(path), "moving_stats_lag")
    assert "momentum 0.999" in lag.evidence and "~3000 steps" in lag.evidence


# ---------------------------------------------------------------- the config's BN


def test_batch_stats_at_inference_from_model_bn(tmp_path):
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN,
                         model__bn__behaviour="batch_stats_at_inference")
    found = only(doctor.diagnose(path), "batch_stats_at_inference")
    assert found.severity == "error"
    assert "conv1_bn" in found.evidence and "test_acc 0.860" in found.evidence
    assert "behaviour: standard" in found.advice


def test_batch_stats_at_inference_on_one_listed_layer(tmp_path):
    layers = [{"type": "flatten"}, {"type": "dense", "units": 32, "use_bias": False},
              {"type": "bn", "behaviour": "batch_stats_at_inference"},
              {"type": "activation", "activation": "relu"}, {"type": "dense", "units": 10}]
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, model__arch="layers",
                         model__layers=layers)
    assert ids(doctor.diagnose(path)) == ["batch_stats_at_inference"]
    assert "bn1" in doctor.diagnose(path)[0].evidence


@pytest.mark.parametrize("keys,evidence", [
    ({"data__batch_size": 8}, "over 8 examples"),
    ({"model__bn__impl": "scratch", "model__bn__virtual_batch_size": 4},
     "virtual_batch_size 4"),
    ({"data__batch_size": 24, "train__strategy": "mirrored", "train__replicas": 2},
     "over 12 examples"),
])
def test_small_batch(tmp_path, keys, evidence):
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, **keys)
    found = only(doctor.diagnose(path), "small_batch")
    assert found.severity == "warning" and evidence in found.evidence


def test_no_small_batch_without_bn_or_with_synchronized_bn(tmp_path):
    none = fake_run_rows(tmp_path / "a", epochs(3), train_size=TRAIN, data__batch_size=8,
                         model__bn__placement="none")
    synced = fake_run_rows(tmp_path / "b", epochs(3), train_size=TRAIN, data__batch_size=24,
                           train__strategy="mirrored", model__bn__synchronized=True)
    assert doctor.diagnose(none) == [] and doctor.diagnose(synced) == []


def test_bias_before_bn_in_a_preset(tmp_path):
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, model__use_bias=True)
    found = only(doctor.diagnose(path), "bias_before_bn")
    assert found.severity == "info"
    assert "226 bias parameters" in found.evidence  # 6 + 16 + 120 + 84
    assert "conv1 (6 biases) -> conv1_bn" in found.evidence
    assert "use_bias" in found.advice and "beta" in found.advice


def test_no_bias_before_bn_when_bn_follows_the_activation(tmp_path):
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, model__use_bias=True,
                         model__bn__placement="after")
    assert doctor.diagnose(path) == []


def test_bias_before_bn_in_a_layer_list_through_pooling(tmp_path):
    layers = [{"type": "conv", "filters": 6, "kernel_size": 5},
              {"type": "max_pool"}, {"type": "bn"}, {"type": "activation", "activation": "relu"},
              {"type": "flatten"}, {"type": "dense", "units": 32, "activation": "relu"},
              {"type": "bn"}, {"type": "dense", "units": 10}]
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, model__arch="layers",
                         model__layers=layers)
    found = only(doctor.diagnose(path), "bias_before_bn")
    # conv1's bias survives max pooling into bn1; dense1 has its own activation first
    assert found.evidence.endswith("6 bias parameters that BN cancels: conv1 (6 biases) -> bn1")


# ---------------------------------------------------------------- activations, divergence


def test_saturated_activations(tmp_path):
    def band(step, layer, p15, p50, p85, unit="all"):
        return {"step": step, "layer": layer, "unit": unit, "p15": p15, "p50": p50, "p85": p85}

    rows = [band(0, "dense1_sigmoid", -1.0, 0.0, 1.0), band(0, "dense2_sigmoid", -1, 0, 1),
            band(500, "dense1_sigmoid", -7.5, -6.0, -4.5),  # saturated: all beyond -4
            band(500, "dense1_sigmoid", 0.0, 0.1, 0.2, unit="0"),  # a unit: not read
            band(500, "dense2_sigmoid", -3.0, 0.5, 3.5)]  # calm: within |x| < 4
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, activations=rows,
                         model__arch="mlp", model__activation="sigmoid",
                         model__bn__placement="none")
    found = only(doctor.diagnose(path), "saturated_activations")
    assert found.severity == "warning"
    assert "dense1_sigmoid" in found.evidence and "dense2_sigmoid" not in found.evidence
    assert "p50 -6.00" in found.evidence and "at step 0: p15 -1.00" in found.evidence
    assert "placement: before" in found.advice


def test_tanh_median_drifting_out_is_saturated_relu_never(tmp_path):
    layers = [{"type": "flatten"}, {"type": "dense", "units": 32},
              {"type": "activation", "activation": "tanh", "name": "squash"},
              {"type": "dense", "units": 32}, {"type": "activation", "activation": "relu"},
              {"type": "dense", "units": 10}]
    rows = [{"step": 100, "layer": "squash", "unit": "all", "p15": 0.0, "p50": 2.7, "p85": 3.0},
            {"step": 100, "layer": "activation2", "unit": "all", "p15": 50, "p50": 60,
             "p85": 70}]
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, activations=rows,
                         model__arch="layers", model__layers=layers)
    found = only(doctor.diagnose(path), "saturated_activations")
    assert "squash (tanh" in found.evidence and "activation2" not in found.evidence


def test_diverged(tmp_path):
    path = fake_run_rows(tmp_path, [], status="diverged", model__bn__placement="none",
                         optimizer__learning_rate=1.0e6,
                         summary={"diverged_at": {"epoch": 1, "step": 3}})
    found = only(doctor.diagnose(path), "diverged")
    assert found.severity == "error"
    assert "epoch 1, step 3" in found.evidence and "learning rate 1e+06" in found.evidence
    assert "100000" in found.advice and "model.bn.placement: before" in found.advice


# ---------------------------------------------------------------- the command


def test_cli_json_lists_the_findings_with_their_fields_and_exits_0(tmp_path):
    fake_run_rows(tmp_path, epochs(3, test_acc=0.1, test_acc_batchstats=0.8),
                  train_size=TRAIN, name="broken", data__batch_size=8)
    fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, name="healthy")
    code, out, _ = invoke("doctor", tmp_path, "--format", "json")
    assert code == 0
    found = json.loads(out)
    assert {(f["id"], f["severity"]) for f in found} == {
        ("moving_stats_broken", "error"), ("small_batch", "warning")}
    for f in found:
        assert set(f) >= {"run", "id", "severity", "evidence", "advice"}
        assert Path(f["run"]).name.startswith("broken_s0")
        assert f["evidence"] and f["advice"]


def test_cli_text_one_block_per_finding_and_a_line_for_a_clean_run(tmp_path):
    broken = fake_run_rows(tmp_path, epochs(3, test_acc=0.1, test_acc_batchstats=0.8),
                           train_size=TRAIN, name="broken")
    healthy = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, name="healthy")
    code, out, _ = invoke("doctor", tmp_path)
    assert code == 0
    assert f"ERROR moving_stats_broken: {broken.name}" in out
    assert "  evidence: test_acc 0.100" in out and "  advice: " in out
    assert f"{healthy.name}: no problems found" in out
    assert out.rstrip().endswith("2 runs: 1 error, 0 warnings, 0 info; 1 run with no findings")


def test_cli_on_one_healthy_run_folder(tmp_path):
    path = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN)
    code, out, _ = invoke("doctor", path)
    assert (code, out) == (0, f"{path.name}: no problems found\n")
    code, out, _ = invoke("doctor", path, "--format", "json")
    assert (code, json.loads(out)) == (0, [])


def test_cli_reports_the_latest_attempt_and_warns_of_broken_folders(tmp_path):
    first = fake_run_rows(tmp_path, [], status="diverged", seed=3,
                          summary={"started": "2026-01-01T00:00:00"})
    again = fake_run_rows(tmp_path, epochs(3), train_size=TRAIN, seed=3,
                          summary={"started": "2026-01-02T00:00:00"})
    assert runs.read_summary(first)["config_hash"] == runs.read_summary(again)["config_hash"]
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "summary.json").write_text("{not json")
    code, out, err = invoke("doctor", tmp_path, "--format", "json")
    assert code == 0
    assert json.loads(out) == []  # the diverged first attempt: superseded by the later one
    assert "skipped" in err and "junk" in err


@pytest.mark.parametrize("make", ["missing", "empty", "file"])
def test_cli_bad_path_exits_2_with_one_line(tmp_path, make):
    target = tmp_path / "runs"
    if make == "empty":
        target.mkdir()
    elif make == "file":
        target.write_text("x")
    code, out, err = invoke("doctor", target)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {target}")


def test_cli_bad_format_exits_2(tmp_path):
    path = fake_run_rows(tmp_path, epochs(1), train_size=TRAIN)
    code, _, err = invoke("doctor", path, "--format", "yaml")
    assert code == 2 and err.startswith("error:")


def test_doctor_imports_no_tensorflow():
    code = ("import sys, bnexp.analysis.doctor, bnexp.views.findings, bnexp.cli; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_every_id_is_documented():
    text = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    section = text[text.index("## Problems a run shows: `bnexp doctor`"):]
    for id_ in doctor.IDS:
        assert f"`{id_}`" in section


# ---------------------------------------------------------------- end to end


@pytest.mark.tf
def test_a_really_diverging_run_is_diagnosed_diverged(tmp_path, write_config):
    """Train through the CLI at a learning rate that blows up, then ask the doctor."""
    path = write_config(SYNTHETIC.replace("epochs: 2", "epochs: 1")
                        + "model: {arch: mlp, activation: relu, bn: {placement: none}}\n"
                        "optimizer: {learning_rate: 1.0e6}\n")
    runs_dir = tmp_path / "runs"
    trained = runner.invoke(app, ["train", str(path), "--jobs", "1", "--runs-dir",
                                  str(runs_dir)])
    assert trained.exit_code == 0, trained.output
    (run,) = runs_dir.iterdir()
    summary = runs.read_summary(run)
    assert summary["status"] == "diverged"
    code, out, _ = invoke("doctor", runs_dir, "--format", "json")
    assert code == 0
    found = {f["id"]: f for f in json.loads(out)}
    assert found["diverged"]["severity"] == "error"
    at = summary["diverged_at"]
    assert f"at epoch {at['epoch']}, step {at['step']}" in found["diverged"]["evidence"]
    assert "no BN" in found["diverged"]["evidence"]


@pytest.mark.e2e
@needs_fashion
def test_the_new_ids_on_real_fashion_mnist_runs_through_the_installed_script(tmp_path):
    """Real runs that show each of degenerate_batch, dropout_before_bn, nothing_trains and
    domain_shift, and one that shows none: each id on its run only, and neither of the
    first and last called moving_stats_lag (as doctor once did)."""
    cfg = tmp_path / "doc.yaml"
    cfg.write_text(f"""
name: doc
data: {{path: {FASHION_DIR}, limit: 2000, test_limit: 1000, validation_size: 0,
       batch_size: 50}}
model: {{arch: mlp, hidden: [64, 32], activation: relu}}
optimizer: {{learning_rate: 0.1, momentum: 0.9}}
train: {{epochs: 2}}
sweep:
  cells:
    - {{label: healthy}}
    - {{label: degenerate, model.bn.impl: scratch, model.bn.virtual_batch_size: 1}}
    - {{label: dropout, model.dropout: {{rate: 0.5, placement: before_bn}}}}
    - {{label: stuck, optimizer.learning_rate: 1.0e-7}}
    - {{label: shifted, model.arch: lenet, train.epochs: 4, data.test_shift: [contrast=0.3]}}
""")
    trained = run_bnexp("train", cfg, "--runs-dir", tmp_path / "runs")
    assert trained.returncode == 0, trained.stderr
    out = run_bnexp("doctor", tmp_path / "runs", "--format", "json")
    assert out.returncode == 0, out.stderr
    ids: dict[str, set] = {}
    for finding in json.loads(out.stdout):
        label = runs.read_summary(Path(finding["run"]))["cell"]["label"]
        ids.setdefault(label, set()).add(finding["id"])
    assert ids == {"degenerate": {"degenerate_batch"}, "dropout": {"dropout_before_bn"},
                   "stuck": {"nothing_trains"}, "shifted": {"domain_shift"}}


def test_a_folder_names_terminal_escapes_are_shown_escaped(tmp_path):
    """A run folder named with an escape sequence: doctor's text shows it escaped, never
    raw (it recoloured the terminal)."""
    path = fake_run_rows(tmp_path / "runs", [{"test_acc": 0.8, "train_acc": 0.8}] * 2,
                         model__bn__placement="none")
    path.rename(path.with_name("evil\x1b[31m_s0"))
    code, out, _ = invoke("doctor", tmp_path / "runs")
    assert code == 0 and "\x1b" not in out and "evil\\x1b[31m_s0" in out
