"""`bnexp eval`: the shifts (NumPy checks on tiny arrays), eval.csv (appended whole under a
lock, read back by compare's `test_acc@SHIFT/STATS` and by Run.evals), the refusals (one
line, before TensorFlow), and the evaluations of a trained run against independent
computations: population statistics give metrics.csv's last test metrics again, batch
statistics leave the moving statistics as they were, adapt sets them to the test
images' own and never touches checkpoint.npz."""

import io
import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import bnexp
from bnexp import runs, shifts
from bnexp.analysis import compare
from bnexp.cli import app
from bnexp.errors import BadInput
from bnexp.runs import evals
from tests.helpers import (
    fake_run_rows,
    needs_fashion,
    run_bnexp,
    synthetic_config,
    tiny_mnist,
    write_idx_folder,
)

# ---------------------------------------------------------------- shifts


def grey(n=40, h=12, w=12, value=None, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if value is not None:
        return np.full((n, h, w, 1), value, np.uint8)
    return rng.integers(0, 256, (n, h, w, 1)).astype(np.uint8)


def test_noise_has_the_asked_std_in_pixel_units_and_is_the_same_every_call():
    x = grey(200, value=128)
    y = shifts.parse("noise=20").apply(x)
    assert y.dtype == np.uint8 and y.shape == x.shape
    d = y.astype(float) - 128
    assert abs(d.mean()) < 0.5 and d.std() == pytest.approx(20, rel=0.02)  # 4 std errors
    np.testing.assert_array_equal(y, shifts.parse("noise=20.0").apply(x))  # deterministic
    assert not np.array_equal(y[0], y[1])  # each image its own noise


def test_strong_noise_is_clipped_to_pixels():
    x = np.concatenate([grey(50, value=250), grey(50, value=3)])
    y = shifts.parse("noise=80").apply(x)
    assert y.dtype == np.uint8 and y.max() == 255 and y.min() == 0
    z = np.clip(np.rint(x + 80 * np.random.default_rng(shifts.NOISE_SEED).standard_normal(
        x.shape, dtype=np.float32)), 0, 255)
    np.testing.assert_array_equal(y, z)


@pytest.mark.parametrize("degrees", [90, 180, 270, -90, 450])
def test_rotations_by_quarter_turns_are_rot90(degrees):
    x = grey()
    k = (degrees // 90) % 4
    np.testing.assert_array_equal(shifts.parse(f"rotate={degrees}").apply(x),
                                  np.rot90(x, k, axes=(1, 2)))
    assert shifts.parse(f"rotate={degrees}").label == f"rotate={k * 90}"


def test_rotate_0_and_360_change_nothing():
    x = grey(h=5, w=7)
    for spec in ("rotate=0", "rotate=360"):
        np.testing.assert_array_equal(shifts.parse(spec).apply(x), x)


def bilinear_rotation(x: np.ndarray, degrees: float) -> np.ndarray:
    """Independent of scipy: each output pixel the bilinear value of the input, taken as 0
    outside, at the pixel rotated clockwise about the centre (the image turns
    counter-clockwise as shown, row 0 on top)."""
    n, h, w, c = x.shape
    t = np.deg2rad(degrees)
    rows, cols = np.mgrid[0:h, 0:w].astype(float)
    dr, dc = rows - (h - 1) / 2, cols - (w - 1) / 2
    src_r = dc * np.sin(t) + dr * np.cos(t) + (h - 1) / 2
    src_c = dc * np.cos(t) - dr * np.sin(t) + (w - 1) / 2
    padded = np.pad(x.astype(float), ((0, 0), (2, 2), (2, 2), (0, 0)))
    r0, c0 = np.floor(src_r).astype(int), np.floor(src_c).astype(int)
    fr, fc = src_r - r0, src_c - c0
    out = np.zeros(x.shape)
    for dy, wy in ((0, 1 - fr), (1, fr)):
        for dx, wx in ((0, 1 - fc), (1, fc)):
            rr = np.clip(r0 + dy + 2, 0, h + 3)
            cc = np.clip(c0 + dx + 2, 0, w + 3)
            out += padded[:, rr, cc] * (wy * wx)[None, :, :, None]
    return np.clip(np.rint(out), 0, 255)


@pytest.mark.parametrize("degrees", [30, 45, 200])
def test_other_angles_are_the_documented_bilinear_rotation(degrees):
    x = grey(8, 11, 11)
    got = shifts.parse(f"rotate={degrees}").apply(x).astype(float)
    want = bilinear_rotation(x, degrees)
    assert np.abs(got - want).max() <= 1  # float32 against float64: a rounding apart
    assert (got == want).mean() > 0.99


def test_a_bright_pixel_turns_counter_clockwise():
    x = np.zeros((1, 9, 9, 1), np.uint8)
    x[0, 0, 4] = 255  # top middle
    y = shifts.parse("rotate=45").apply(x)[0, :, :, 0].astype(float)
    rows, cols = np.mgrid[0:9, 0:9]
    centre = (rows * y).sum() / y.sum(), (cols * y).sum() / y.sum()
    turned = 4 - 4 * np.cos(np.pi / 4), 4 - 4 * np.sin(np.pi / 4)  # up and to the left
    np.testing.assert_allclose(centre, turned, atol=0.15)


def test_contrast_scales_deviations_from_each_images_mean():
    x = grey(10, value=None, seed=3) // 2 + 64  # 64..191: no clipping at 1.5
    for f in (0.0, 0.5, 1.0, 1.5):
        y = shifts.parse(f"contrast={f}").apply(x)
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        np.testing.assert_array_equal(y, np.clip(np.rint(mean + f * (x - mean)), 0, 255))
    np.testing.assert_array_equal(shifts.parse("contrast=1").apply(x), x)
    assert shifts.parse("contrast=5").apply(grey(value=None)).max() == 255  # clipped


def test_invert_and_shifts_in_order():
    x = grey()
    np.testing.assert_array_equal(shifts.parse("invert").apply(x), 255 - x)
    chain = shifts.parse_all(["rotate=90", "invert"])
    assert shifts.label_of(chain) == "rotate=90+invert" and shifts.label_of([]) == "none"
    np.testing.assert_array_equal(shifts.apply_all(chain, x), 255 - np.rot90(x, axes=(1, 2)))


@pytest.mark.parametrize("spec", ["blur=1", "nosie=80", "noise", "noise=", "noise=abc",
                                  "noise=-1", "noise=nan", "contrast=inf", "rotate=x",
                                  "invert=1", "=3"])
def test_a_bad_shift_is_one_line_naming_the_option(spec):
    with pytest.raises(BadInput) as raised:
        shifts.parse(spec)
    message = str(raised.value)
    assert message.startswith(f"--shift {spec}: ") and "\n" not in message
    if spec == "nosie=80":
        assert "did you mean 'noise'" in message


# ---------------------------------------------------------------- eval.csv


def row(**values) -> dict:
    base = {"evaluated_at": "2026-01-01T00:00:00", "epoch": 2, "data": "test",
            "shift": "none", "stats": "population", "batch_size": None, "examples": 300,
            "loss": 0.5, "acc": 0.8}
    return {**base, **values}


def test_rows_append_with_one_header_and_a_torn_line_cut_off(tmp_path):
    evals.append(tmp_path, row())
    with open(tmp_path / evals.FILENAME, "a") as f:
        f.write("2026-01-01T00:00:01,2,test,no")  # a kill mid-write
    assert len(evals.read(tmp_path)) == 1  # the torn line is no row
    evals.append(tmp_path, row(stats="batch", batch_size=50, acc=0.75))
    lines = (tmp_path / evals.FILENAME).read_text().splitlines()
    assert lines[0] == ",".join(evals.COLUMNS) and len(lines) == 3
    read = evals.read(tmp_path)
    assert [r["stats"] for r in read] == ["population", "batch"]
    assert read[1]["batch_size"] == 50 and read[0]["batch_size"] is None
    assert read[1]["acc"] == 0.75 and read[1]["epoch"] == 2


def test_concurrent_appends_never_tear_or_interleave(tmp_path):
    def write(k):
        for i in range(25):
            evals.append(tmp_path, row(examples=1000 * k + i, data=f"/d/{'x' * 3000}{k}"))

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / evals.FILENAME).read_text().splitlines()
    assert lines.count(",".join(evals.COLUMNS)) == 1
    read = evals.read(tmp_path)
    assert sorted(r["examples"] for r in read) == sorted(
        1000 * k + i for k in range(4) for i in range(25))
    assert all(r["data"].endswith(str(r["examples"] // 1000)) for r in read)


def test_eval_csv_that_is_not_a_file_is_bad_input(tmp_path):
    (tmp_path / evals.FILENAME).mkdir()
    with pytest.raises(BadInput, match="not a regular file"):
        evals.append(tmp_path, row())
    assert evals.read(tmp_path) == []


# ---------------------------------------------------------------- compare reads it


def eval_runs(tmp_path: Path) -> list[Path]:
    """Three completed runs of 2 epochs (batch size 50), evaluated differently."""
    folders = [fake_run_rows(tmp_path / "runs", [{"test_acc": 0.7}, {"test_acc": 0.8}],
                             seed=s) for s in range(3)]
    for seed, folder in enumerate(folders):
        evals.append(folder, row(shift="noise=80", stats="adapt", acc=0.5 + seed / 10))
        evals.append(folder, row(shift="none", stats="batch", batch_size=50, acc=0.6))
        evals.append(folder, row(shift="none", stats="batch", batch_size=8, acc=0.3))
    evals.append(folders[0], row(shift="noise=80", stats="adapt", acc=0.9))  # the last counts
    evals.append(folders[1], row(data="/x/other", shift="rotate=90", stats="population",
                                 acc=0.2))
    return folders


def test_compare_reads_an_evaluation_metric(tmp_path):
    eval_runs(tmp_path)
    found = compare.load(tmp_path / "runs")
    table = compare.table(found, "test_acc@noise=80.0/adapt")
    assert table["n_used"].tolist() == [3]
    assert table["mean"].iloc[0] == pytest.approx((0.9 + 0.6 + 0.7) / 3)
    assert table.attrs["warnings"] == []
    rows = compare.run_rows(found, "test_acc@clean/batch")
    assert rows["test_acc@clean/batch"].tolist() == [0.6] * 3  # the run's own batch size
    rows = compare.run_rows(found, "test_acc@clean/batch=8")
    assert rows["test_acc@clean/batch=8"].tolist() == [0.3] * 3
    rows = compare.run_rows(found, "test_loss@data=other+rotate=90/population")
    assert rows["test_loss@data=other+rotate=90/population"].tolist()[1] == 0.5


def test_runs_without_the_evaluation_are_left_out_with_a_warning(tmp_path):
    eval_runs(tmp_path)
    fake_run_rows(tmp_path / "runs", [{"test_acc": 0.7}], seed=7)  # never evaluated
    stale = fake_run_rows(tmp_path / "runs", [{"test_acc": 0.7}] * 3, seed=8)
    evals.append(stale, row(epoch=2, shift="noise=80", stats="adapt"))  # of epoch 2 of 3
    table = compare.table(compare.load(tmp_path / "runs"), "test_acc@noise=80/adapt")
    assert table["n"].tolist() == [5] and table["n_used"].tolist() == [3]
    missing, earlier = table.attrs["warnings"]
    assert "1 completed run has no such evaluation" in missing and "_s7_" in missing
    assert "--shift noise=80 --stats adapt" in missing
    assert "earlier epoch's checkpoint" in earlier and "_s8_" in earlier


@pytest.mark.parametrize(("args", "error"), [
    (["--metric", "test_acc@noise=80"], "NAME@SHIFT/STATS"),
    (["--metric", "val_acc@clean/adapt"], "NAME@SHIFT/STATS"),
    (["--metric", "test_acc@clean/moving"], "STATS is population"),
    (["--metric", "test_acc@clean/adapt=3"], "STATS is population"),
    (["--metric", "test_acc@clean/batch=0"], "STATS is population"),
    (["--metric", "test_acc@clean/batch=\u00b2"], "STATS is population"),
    (["--metric", "test_acc@nois=80/adapt"], "SHIFT is clean"),
    (["--metric", "test_acc@noise=80/adapt", "--at", "best"], "use --at final"),
    (["--metric", "test_acc@noise=80/adapt", "--plot", "x.png"], "no value per epoch"),
])
def test_a_bad_evaluation_metric_is_one_line(tmp_path, args, error, monkeypatch):
    monkeypatch.chdir(tmp_path)
    eval_runs(tmp_path)
    result = CliRunner().invoke(app, ["compare", "runs", *args])
    assert result.exit_code == 2, result.output
    assert error in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_eval_csv_columns_are_the_documented_ones_in_order():
    page = (Path(__file__).resolve().parents[1] / "docs" / "run-folder.md").read_text()
    (line,) = [line for line in page.splitlines() if line.startswith("| `eval.csv` |")]
    documented = line.split("appended under a lock:")[1].split("(")[0].strip(" `")
    assert documented.split(", ") == evals.COLUMNS


def test_run_evals_is_eval_csv_as_a_frame(tmp_path):
    folders = eval_runs(tmp_path)
    frame = bnexp.load_run(folders[0]).evals
    assert list(frame.columns) == evals.COLUMNS and len(frame) == 4
    assert frame["acc"].tolist() == [0.5, 0.6, 0.3, 0.9]
    assert bnexp.load_run(fake_run_rows(tmp_path / "new", [{"test_acc": 1.0}])).evals.empty


# ---------------------------------------------------------------- refusals, before TensorFlow


def fake_trained(tmp_path, **keys) -> Path:
    """A run folder whose checkpoint is no checkpoint: each refusal comes before it is read."""
    folder = fake_run_rows(tmp_path / "runs", [{"test_acc": 0.5}], **keys)
    (folder / "checkpoint.npz").write_bytes(b"not read")
    return folder


def refusal(*args) -> str:
    result = CliRunner().invoke(app, ["eval", *map(str, args)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.mark.parametrize("kind", ["group", "layer"])
def test_a_model_without_moving_statistics_has_nothing_to_adapt(tmp_path, kind):
    folder = fake_trained(tmp_path, model__bn__kind=kind)
    assert "nothing to adapt" in refusal(folder, "--stats", "adapt")
    line = refusal(tmp_path / "runs", "--stats", "batch")  # a folder of such runs alike
    assert str(folder) in line and "--stats batch" in line and f"{kind}_norm" in line
    with pytest.raises(BadInput, match="nothing to adapt"):
        bnexp.eval(folder, stats="adapt")
    assert not (folder / evals.FILENAME).exists()


def test_refusals_name_the_run_or_option(tmp_path):
    folder = fake_run_rows(tmp_path / "runs", [{"test_acc": 0.5}])
    line = refusal(folder)
    assert str(folder) in line and "no checkpoint.npz" in line
    fake_trained(tmp_path)
    assert "--batch-size 8: only with --stats batch" in refusal(folder, "--batch-size", "8")
    assert "--shift noise=loud" in refusal(folder, "--shift", "noise=loud")
    assert "no such folder" in refusal(folder, "--data", tmp_path / "absent")
    assert "no t10k-images-idx3-ubyte" in refusal(folder, "--data", tmp_path)
    assert "no such run folder" in refusal(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    assert "no run folder beneath it" in refusal(tmp_path / "empty")


def test_data_of_another_shape_is_refused(tmp_path):
    folder = fake_trained(tmp_path)
    x_train, y_train, x_test, y_test = tiny_mnist()
    write_idx_folder(tmp_path / "small", (x_train[:, :20, :20], y_train,
                                          x_test[:, :20, :20], y_test))
    line = refusal(folder, "--data", tmp_path / "small")
    assert "--data: its test images are 20x20x1, the run" in line and "28x28x1" in line


def test_refusals_import_no_tensorflow(tmp_path):
    import subprocess
    import sys

    folder = fake_trained(tmp_path, model__bn__kind="group")
    probe = f"""
import sys
from typer.testing import CliRunner
from bnexp.cli import app
r = CliRunner().invoke(app, ["eval", {str(folder)!r}, "--stats", "adapt"])
assert r.exit_code == 2, r.output
print("heavy:", [m for m in ("tensorflow", "keras") if m in sys.modules])
"""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=root)
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout


# ---------------------------------------------------------------- a trained run


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One BN MLP run of one epoch on the synthetic set (batch 50), trained in-process."""
    cfg = synthetic_config(model={"arch": "mlp", "hidden": [32, 16]},
                           train={"epochs": 1, "jit_compile": False})
    (run,) = bnexp.train(cfg, runs_dir=tmp_path_factory.mktemp("eval") / "runs")
    assert run.status == "completed"
    return run.folder


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    """The trained run in a folder of this test's own (eval appends to its eval.csv)."""
    return Path(shutil.copytree(trained, tmp_path / "runs" / trained.name))


def test_population_statistics_give_the_runs_last_test_metrics(run_copy):
    last = runs.read_metrics(run_copy)[-1]
    frame = bnexp.eval(run_copy)
    (got,) = frame.to_dict("records")
    assert got["loss"] == pytest.approx(last["test_loss"], rel=2e-5)
    assert got["acc"] == pytest.approx(last["test_acc"], abs=1e-6)
    assert (got["epoch"], got["data"], got["shift"], got["stats"]) == (1, "test", "none",
                                                                       "population")
    assert got["examples"] == 300 and got["batch_size"] is None
    assert evals.read(run_copy)[-1]["acc"] == pytest.approx(last["test_acc"], abs=1e-6)
    table = compare.table(compare.load(run_copy.parent), "test_acc@clean/population")
    assert table["mean"].iloc[0] == pytest.approx(last["test_acc"], abs=1e-6)


def test_data_test_shift_records_the_shifted_test_set_each_epoch(tmp_path):
    """data.test_shift: eval.csv rows per epoch (moving and batch statistics), the last
    epoch's equal to `bnexp eval --shift` of the checkpoint; compare reads them."""
    cfg = synthetic_config(model={"arch": "mlp", "hidden": [32, 16]},
                           data={"test_shift": ["noise=80.0"]},
                           train={"epochs": 2, "jit_compile": False})
    assert cfg.data.test_shift == ["noise=80"]  # stored as its label
    (run,) = bnexp.train(cfg, runs_dir=tmp_path / "runs")
    rows = evals.read(run.folder)
    assert [(r["epoch"], r["shift"], r["stats"], r["batch_size"]) for r in rows] == [
        (1, "noise=80", "population", None), (1, "noise=80", "batch", 50),
        (2, "noise=80", "population", None), (2, "noise=80", "batch", 50)]
    (again,) = bnexp.eval(run.folder, shift="noise=80").to_dict("records")
    assert again["loss"] == pytest.approx(rows[2]["loss"], rel=2e-6)  # 6 digits in the file
    assert again["acc"] == pytest.approx(rows[2]["acc"], abs=1e-6)
    (batch,) = bnexp.eval(run.folder, shift="noise=80", stats="batch").to_dict("records")
    assert batch["acc"] == pytest.approx(rows[3]["acc"], abs=1e-6)
    table = compare.table(compare.load(tmp_path / "runs"), "test_acc@noise=80/population")
    assert table["mean"].iloc[0] == pytest.approx(rows[2]["acc"], abs=1e-6)


def test_a_bad_test_shift_names_the_key():
    with pytest.raises(BadInput, match=r"data.test_shift: shift blur=3: unknown shift"):
        synthetic_config(data={"test_shift": ["blur=3"]})


def rebuilt(folder: Path):
    from bnexp import config
    from bnexp.analysis.evaluate import Evaluator

    (spec,) = config.load(folder / "config.yaml")
    return Evaluator(folder, spec.config), spec.config


def test_batch_statistics_leave_the_moving_statistics_and_match_a_plain_forward(trained):
    import tensorflow as tf

    from bnexp import data
    from bnexp.model.build import to_unit
    from bnexp.model.residual import call_layers

    evaluator, cfg = rebuilt(trained)
    splits = data.load(cfg.data)
    x, y = shifts.parse("contrast=0.5").apply(splits.x_test), splits.y_test
    model = evaluator.model
    before = [v.numpy() for v in model.non_trainable_weights]
    loss, acc = evaluator.measure(x, y, "batch", 64)  # 300 = 4 x 64 + 44
    for a, v in zip(before, model.non_trainable_weights, strict=True):
        np.testing.assert_array_equal(a, v.numpy())
    losses, hits = [], []
    for start in range(0, len(x), 64):
        logits = call_layers(model.layers, to_unit(x[start:start + 64]), True, random=False)
        logits = tf.cast(logits, tf.float64).numpy()
        for v, a in zip(model.non_trainable_weights, before, strict=True):
            v.assign(a)  # training mode moved them: put back
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        labels = y[start:start + 64]
        losses += list(-log_p[np.arange(len(labels)), labels])
        hits += list(logits.argmax(axis=1) == labels)
    assert loss == pytest.approx(np.mean(losses), rel=1e-5)
    assert acc == pytest.approx(np.mean(hits), abs=1e-6)  # a float32 count


def test_adapt_sets_each_bn_layer_to_its_inputs_statistics_and_keeps_the_checkpoint(run_copy):
    from bnexp import data
    from bnexp.model.build import to_unit

    evaluator, cfg = rebuilt(run_copy)
    x = shifts.parse("noise=80").apply(data.load(cfg.data).x_test)
    before = [v.numpy() for v in evaluator.model.non_trainable_weights]
    evaluator.measure(x, data.load(cfg.data).y_test, "adapt")
    for a, v in zip(before, evaluator.model.non_trainable_weights, strict=True):
        np.testing.assert_array_equal(a, v.numpy())  # put back after measuring
    evaluator.adapt(x)
    model = evaluator.model
    h = model.get_layer("dense1")(model.get_layer("flatten")(to_unit(x))).numpy()
    bn = model.get_layer("dense1_bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), h.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), h.var(axis=0), rtol=1e-4,
                               atol=1e-5)
    ckpt = run_copy / "checkpoint.npz"
    saved = ckpt.read_bytes()
    frame = bnexp.eval(run_copy.parent, shift=["noise=80"], stats="adapt")
    assert ckpt.read_bytes() == saved
    assert frame[["shift", "stats", "examples"]].values.tolist() == [["noise=80", "adapt", 300]]
    population = bnexp.eval(run_copy, shift="noise=80")["acc"].iloc[0]
    assert frame["acc"].iloc[0] > population  # strong noise: adapting helps
    assert bnexp.load_run(run_copy).evals["stats"].tolist() == ["adapt", "population"]


def test_data_replaces_the_test_set(run_copy, tmp_path):
    from bnexp import data

    splits = data.load(rebuilt(run_copy)[1].data)
    x, y = splits.x_test[:120, :, :, 0], splits.y_test[:120]
    write_idx_folder(tmp_path / "mine", (x, y, x, y), gz=False)
    result = CliRunner().invoke(app, ["eval", str(run_copy), "--data", str(tmp_path / "mine"),
                                      "--stats", "batch", "--batch-size", "40"])
    assert result.exit_code == 0, result.output
    (got,) = evals.read(run_copy)
    assert got["data"] == str((tmp_path / "mine").resolve())
    assert (got["examples"], got["batch_size"], got["stats"]) == (120, 40, "batch")
    metric = "test_acc@data=mine/batch=40"
    assert compare.run_rows(compare.load(run_copy.parent), metric)[metric].tolist() == [
        got["acc"]]


# ---------------------------------------------------------------- end to end


@pytest.mark.e2e
@needs_fashion
def test_eval_of_a_fashion_mnist_run_through_the_installed_script(tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = run_bnexp("train", root / "configs/smoke/lenet_bn.yaml", "--set", "data.limit=1000",
                    "--set", "data.test_limit=500", "--runs-dir", tmp_path / "runs")
    assert out.returncode == 0, out.stderr
    (run,) = (tmp_path / "runs").iterdir()
    adapt = run_bnexp("eval", run, "--shift", "noise=80", "--stats", "adapt")
    assert adapt.returncode == 0, adapt.stderr
    batch = run_bnexp("eval", tmp_path / "runs", "--stats", "batch")
    assert batch.returncode == 0, batch.stderr
    population = run_bnexp("eval", run, "--stats", "population")
    assert population.returncode == 0, population.stderr
    assert run.name in adapt.stdout and "noise=80" in adapt.stdout
    frame = pd.read_csv(run / "eval.csv")
    assert list(frame.columns) == evals.COLUMNS
    assert frame[["epoch", "data", "shift", "stats", "examples"]].values.tolist() == [
        [1, "test", "noise=80", "adapt", 500], [1, "test", "none", "batch", 500],
        [1, "test", "none", "population", 500]]
    assert frame["batch_size"].isna().tolist() == [True, False, True]
    assert frame["batch_size"].iloc[1] == 128
    assert frame["acc"].between(0.1, 1).all() and np.isfinite(frame["loss"]).all()
    last = runs.read_metrics(run)[-1]  # batch statistics as training's own evaluation
    assert frame["acc"].iloc[1] == pytest.approx(last["test_acc_batchstats"], abs=1e-6)
    assert frame["loss"].iloc[1] == pytest.approx(last["test_loss_batchstats"], rel=1e-4)
    assert frame["acc"].iloc[2] == pytest.approx(last["test_acc"], abs=1e-6)  # as training's
    shown = run_bnexp("compare", tmp_path / "runs", "--metric", "test_acc@noise=80/adapt",
                      "--runs", "--format", "csv")
    assert shown.returncode == 0, shown.stderr
    compared = pd.read_csv(io.StringIO(shown.stdout))
    assert compared["test_acc@noise=80/adapt"].tolist() == [frame["acc"].iloc[0]]
