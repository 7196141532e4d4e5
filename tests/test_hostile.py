"""Hostile input, searched for rather than listed: Hypothesis generates configs, --set
values and broken run folders; bnexp must answer with a result or bad input (exit 2,
one line per mistake: at most MAX_MISTAKES and a count of the rest; nothing written),
never a traceback."""

import json
import math
import os
import string
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import typer
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bnexp import config, runs
from bnexp.analysis import compare, doctor, series
from bnexp.cli import app
from bnexp.config.messages import MAX_MISTAKES
from bnexp.errors import MAX_MESSAGE, BadInput
from tests.helpers import fake_run

KEYS = config.leaf_keys()
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 28, 256, 2**32, 2**64, 1e309, -0.0, 0.5]),
)
words = st.one_of(st.sampled_from(["auto", "none", "before", "lenet", "layers", "conv", "bn",
                                   "relu", "sgd", "true", "", "~", "~nosuchuser/x"]),
                  st.text(alphabet=string.printable, max_size=20))
scalars = st.one_of(numbers, words, st.booleans(), st.none())
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(words, st.sampled_from(["type", "filters", "units"])), inner,
                    max_size=4)), max_leaves=12)


def nested(dotted: str, value):
    out = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def merge(a: dict, b: dict) -> dict:
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(a.get(key), dict):
            merge(a[key], value)
        else:
            a[key] = value
    return a


configs = st.lists(st.tuples(st.sampled_from(KEYS + ["sweep.grid", "sweep.seeds",
                                                     "model.layers", "bogus.key"]), values),
                   max_size=6).map(
    lambda pairs: {k: v for pair in pairs for k, v in merge({}, nested(*pair)).items()})


def bad_input_lines(error: BadInput, source: str = "") -> list[str]:
    """The lines of bad input, checked: one per mistake (each a message of its own, never
    a line break inside one), at most MAX_MISTAKES and the count of the rest, each of
    bounded length and starting with `source`."""
    lines = str(error).split("\n")
    assert lines == list(error.args), error.args
    assert 1 <= len(lines) <= MAX_MISTAKES + 1, lines
    for line in lines:
        assert line and "Traceback" not in line and len(line) <= MAX_MESSAGE, line
        assert line.startswith(source), (source, line)
    return lines


def expect_result_or_bad_input(call, source: str = ""):
    try:
        return call()
    except BadInput as e:
        bad_input_lines(e, source)
        return None


@SETTINGS
@given(raw=configs)
def test_generated_configs_validate_or_are_one_line_bad_input(tmp_path_factory, raw):
    folder = tmp_path_factory.mktemp("c")
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    try:
        specs = config.load(path)
    except BadInput as e:  # bad input: train says the same, one line per mistake, and
        lines = bad_input_lines(e, str(path))  # writes nothing
        result = CliRunner().invoke(app, ["train", str(path), "--runs-dir",
                                          str(folder / "runs")])
        assert result.exit_code == 2, result.output
        assert result.output.strip().splitlines() == [f"error: {line}" for line in lines]
        assert not (folder / "runs").exists()
    else:
        for spec in specs[:3]:
            for value in (spec.config.seed, spec.config.optimizer.learning_rate,
                          spec.config.model.bn.epsilon):
                assert math.isfinite(value)


@SETTINGS
@given(text=st.text(max_size=300))
def test_any_text_as_a_config_file_is_read_or_refused(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("t") / "c.yaml"
    path.write_text(text)
    expect_result_or_bad_input(lambda: config.load(path), str(path))


@SETTINGS
@given(key=st.one_of(st.sampled_from(KEYS), st.text(max_size=30)),
       value=st.text(max_size=60))
def test_any_set_override_is_applied_or_refused(write_config, key, value):
    path = write_config("data: {dataset: synthetic}\n")
    expect_result_or_bad_input(lambda: config.load(path, [f"{key}={value}"]), str(path))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
              st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=10)
SUMMARY_KEYS = ["status", "final", "best", "started", "config", "config_hash", "epochs_done",
                "pid", "host", "data", "seed", "notes", "diverged_at", "bn_gap"]


def damage_run(victim, damage) -> None:
    """Apply a generated damage to a run folder: a summary.json field set to a generated
    JSON value, summary.json truncated, or a file's bytes replaced."""
    kind, what = damage
    if kind == "summary-field":
        summary = json.loads((victim / "summary.json").read_text())
        summary[what[0]] = what[1]
        (victim / "summary.json").write_text(json.dumps(summary))
    elif kind == "truncate":
        data = (victim / "summary.json").read_bytes()
        (victim / "summary.json").write_bytes(data[:what])
    else:
        (victim / kind).write_bytes(what)


@pytest.mark.slow  # over ~2 s: out of the fast loop
@settings(SETTINGS, max_examples=80)  # 0.3-0.5 s each: 150 took the suite 45-75 s
@given(damage=st.one_of(
    st.tuples(st.just("summary.json"), st.binary(max_size=200)),
    st.tuples(st.just("metrics.csv"), st.binary(max_size=200)),
    st.tuples(st.just("config.yaml"), st.binary(max_size=200)),
    st.tuples(st.just("activations.csv"), st.binary(max_size=200)),
    st.tuples(st.just("summary-field"), st.tuples(st.sampled_from(SUMMARY_KEYS), json_values)),
    st.tuples(st.just("truncate"), st.integers(0, 400)),
))
def test_broken_run_folders_are_skipped_or_read_never_a_traceback(tmp_path_factory, damage):
    """A folder of healthy runs and one damaged in a generated way: compare, the plots'
    numbers and the doctor all answer (warnings and skips), or say bad input."""
    runs_dir = tmp_path_factory.mktemp("runs")
    for seed in range(2):
        fake_run(runs_dir, seed, [0.5, 0.6], model__bn__placement="before")
    victim = fake_run(runs_dir, 5, [0.4, 0.7], model__bn__placement="none")
    damage_run(victim, damage)
    found = expect_result_or_bad_input(lambda: compare.load(runs_dir))
    if found is not None:
        for at in ("final", "best"):
            expect_result_or_bad_input(
                lambda at=at: compare.table(found, "test_acc", at, None,
                                            "model.bn.placement=none"))
        expect_result_or_bad_input(lambda: compare.run_rows(found))
        expect_result_or_bad_input(lambda: series.standard(found))
    expect_result_or_bad_input(lambda: doctor.diagnose_all(runs_dir))
    runs.latest_attempts(runs_dir)


def test_a_reused_or_impossible_pid_is_not_taken_for_a_live_run():
    import os
    import socket

    here, me = socket.gethostname(), os.getpid()
    started = runs.process_started(me)
    alive = {"status": "running", "host": here, "pid": me, "pid_started": started}
    assert runs.effective_status(alive) == "running"
    reused = {**alive, "pid_started": started + 1}  # this pid, another process's start
    assert runs.effective_status(reused) == "interrupted"
    for pid in (10**30, -5, 0, True, "12"):
        assert runs.effective_status({**alive, "pid": pid}) == "interrupted"


def test_a_baseline_pairs_only_with_the_group_alike(tmp_path):
    """Two experiments in one folder: the placement study's groups get their Δ against its
    own `none` group; the other study's groups have no like baseline and get none."""
    for seed in range(3):
        for placement, acc in (("none", 0.6), ("before", 0.8)):
            fake_run(tmp_path, seed, [acc + seed / 100], model__bn__placement=placement,
                     data__batch_size=128)
        fake_run(tmp_path, seed, [0.9], name="other", model__bn__placement="before",
                 data__batch_size=256)
    table = compare.table(compare.load(tmp_path), baseline="model.bn.placement=none")
    rows = {(r["name"], r["model.bn.placement"]): r for _, r in table.iterrows()}
    assert rows[("exp", "before")]["delta"] == pytest.approx(0.2)
    assert rows[("other", "before")]["baseline"] == compare.UNLIKE
    assert math.isnan(rows[("other", "before")]["p_value"])


def test_yaml_bombs_nesting_duplicates_and_octal_are_one_line_errors(write_config):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    for text, needle in ((bomb, "aliases"), ("a: " + "[" * 5000 + "]" * 5000, "nested"),
                         ("seed: 1\nseed: 2\n", "duplicate key 'seed'"),
                         ("seed: 010\n", "leading zero")):
        result = CliRunner().invoke(app, ["validate", str(write_config(text))])
        assert result.exit_code == 2 and needle in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("damage, needle", [
    ("flip", "cannot read"),
    ("labels-out-of-range", "labels outside 0..9"),
    ("fewer-labels", "but 30 labels"),
    ("test-size", "must be the same size"),
    ("npz", "not a readable Keras mnist.npz"),
])
def test_dataset_contents_are_checked_once_for_every_source(tmp_path, damage, needle):
    """Corrupt or inconsistent dataset files are bad input naming the file, whatever is
    wrong with them: exit 2 before any run folder."""
    import numpy as np

    from bnexp import data
    from tests.helpers import tiny_mnist, write_idx_folder

    x, y, xt, yt = tiny_mnist(n_train=40, n_test=10)
    folder = tmp_path / "m"
    if damage == "labels-out-of-range":
        y = y.copy()
        y[3] = 12
    if damage == "fewer-labels":
        y = y[:30]
    if damage == "test-size":
        xt = np.zeros((10, 20, 20), np.uint8)
    write_idx_folder(folder, (x, y, xt, yt))
    if damage == "flip":
        target = folder / "train-images-idx3-ubyte.gz"
        raw = bytearray(target.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        raw[len(raw) // 2 + 1] ^= 0xFF
        target.write_bytes(bytes(raw))
    if damage == "npz":
        for f in folder.iterdir():
            f.unlink()
        (folder / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    cfg = config.DataConfig(dataset="mnist", path=str(folder), batch_size=4,
                            validation_size=5)
    with pytest.raises(BadInput, match=needle):
        data.load(cfg)


@pytest.mark.parametrize("args, needle", [
    (["--resume", "somewhere", "--set", "seed=1"], "--resume: continues a run"),
    (["--resume", "somewhere", "--runs-dir", "elsewhere"], "--resume: continues a run"),
    (["--resume", "somewhere", "--smoke"], "--resume: continues a run"),
    (["CONFIG", "--runs-dir", ""], "--runs-dir: an empty folder name"),
    (["CONFIG", "--runs-dir", "a\nb"], "control character"),
    (["CONFIG", "--runs-dir", "x" * 300], "too long"),
    (["CONFIG", "--runs-dir", "/".join(["d" * 200] * 20)], "too long"),
])
def test_train_options_that_cannot_apply_are_bad_input(write_config, tmp_path, args, needle,
                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_config("data: {dataset: synthetic}\n")
    args = [str(path) if a == "CONFIG" else a for a in args]
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 2 and needle in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not [p for p in tmp_path.iterdir() if p.name != path.name]


def _one_line_or_result(result, allowed=(0, 2)):
    """A command's answer: an allowed exit code; exit 2 is one line per mistake (a
    config's several; at most MAX_MISTAKES and a count) and no traceback."""
    assert result.exit_code in allowed, (result.exit_code, result.output[-2000:])
    assert "Traceback" not in result.output, result.output[-2000:]
    if result.exit_code == 2:
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert 1 <= len(errors) <= MAX_MISTAKES + 1, result.output


@settings(SETTINGS, max_examples=40)
@given(raw=configs)
def test_generated_configs_through_summary_exit_0_or_2(tmp_path_factory, raw):
    """`bnexp summary` builds the model: a config that validates either builds or is one
    line of bad input, like `train`'s check before the first run."""
    folder = tmp_path_factory.mktemp("s")
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump(merge(raw, {"data": {"dataset": "synthetic"}}),
                                   allow_unicode=True))
    _one_line_or_result(CliRunner().invoke(app, ["summary", str(path)]))


@pytest.mark.slow
@settings(SETTINGS, max_examples=8)
@given(raw=configs)
def test_generated_configs_through_train_smoke_exit_0_or_2(tmp_path_factory, raw):
    """`bnexp train --smoke` on generated configs (synthetic data, one epoch): a result
    (0, or 1 for a run that failed and said so) or one line of bad input and no folder."""
    folder = tmp_path_factory.mktemp("t")
    path = folder / "c.yaml"
    raw = merge(raw, {"data": {"dataset": "synthetic"}, "train": {"epochs": 1}})
    raw.pop("sweep", None)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    result = CliRunner().invoke(app, ["train", str(path), "--smoke", "--runs-dir",
                                      str(folder / "runs")])
    _one_line_or_result(result, allowed=(0, 1, 2))
    if result.exit_code == 2:
        assert not (folder / "runs").exists()


@pytest.mark.slow
@settings(SETTINGS, max_examples=20)
@given(damage=st.one_of(
    st.tuples(st.sampled_from(["summary.json", "metrics.csv", "config.yaml", "checkpoint.npz"]),
              st.binary(max_size=200)),
    st.tuples(st.just("summary-field"), st.tuples(st.sampled_from(SUMMARY_KEYS), json_values)),
    st.tuples(st.just("truncate"), st.integers(0, 400)),
))
def test_damaged_run_folders_through_resume_and_plot(tmp_path_factory, damage):
    """`train --resume` and `plot runs` on a damaged run folder: a result, a run that
    failed and says so, or one line of bad input; never a traceback."""
    runs_dir = tmp_path_factory.mktemp("runs")
    small = {"data__limit": 100, "data__validation_size": 20, "train__epochs": 1,
             "model__arch": "mlp", "model__hidden": [8]}
    fake_run(runs_dir, 0, [0.5], status="interrupted", **small)
    victim = fake_run(runs_dir, 1, [0.4], status="interrupted", **small)
    damage_run(victim, damage)
    figures = tmp_path_factory.mktemp("figures")
    _one_line_or_result(CliRunner().invoke(app, ["plot", "runs", str(runs_dir), "--out",
                                                 str(figures)]))
    _one_line_or_result(CliRunner().invoke(app, ["train", "--resume", str(victim)]),
                        allowed=(0, 1, 2))


@pytest.fixture(scope="module")
def two_groups(tmp_path_factory):
    """Four fake runs: BN none and before, two seeds each."""
    folder = tmp_path_factory.mktemp("groups")
    for seed in (0, 1):
        for placement, acc in (("none", 0.7), ("before", 0.8)):
            fake_run(folder, seed, [acc - 0.1, acc + 0.01 * seed], model__bn__placement=placement)
    return folder


option_text = st.one_of(st.text(max_size=40), st.sampled_from(
    ["model.bn.placement=[1", "model.bn.placement=!!int x", "model.bn.placement=&a 1",
     "model.bn.placement=none", "=", "seed=0", "model.bn.placement={a: [", "a.b.c=%"]))


@pytest.mark.slow  # over ~2 s: out of the fast loop
@SETTINGS
@given(baseline=option_text, by=st.lists(st.text(max_size=20), max_size=2),
       metric=st.one_of(st.sampled_from(["test_acc", "train_loss", "nope"]),
                        st.text(max_size=12)),
       at=st.sampled_from(["final", "best"]), per_run=st.booleans())
def test_any_compare_options_give_a_table_or_one_line(two_groups, baseline, by, metric, at,
                                                      per_run):
    """--baseline, --by and --metric are text a user types: any of it is a table or one
    line of bad input (the API raises BadInput with that line)."""
    args = ["compare", str(two_groups), "--metric", metric, "--at", at, "--format", "csv"]
    args += ["--runs"] if per_run else ["--baseline", baseline]
    for key in by:
        args += ["--by", key]
    _one_line_or_result(CliRunner().invoke(app, args))


TF_FREE_COMMANDS = [("validate",), ("compare",), ("doctor",), ("plot", "runs"), ("plot", "sweep")]


def _options(path: tuple[str, ...]) -> list:
    """The options of the command at `path`, read from the CLI itself: an option added
    later is searched too, with no list here to keep up to date."""
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return [p for p in command.params
            if isinstance(p, typer.core.TyperOption) and p.name != "help"]


@pytest.fixture(scope="module")
def places(tmp_path_factory, two_groups):
    """Paths a user might give: a config, runs, one run, nothing, a FIFO, an endless file."""
    folder = tmp_path_factory.mktemp("places")
    (folder / "c.yaml").write_text("data: {dataset: synthetic}\nsweep: {seeds: [0, 1]}\n")
    os.mkfifo(folder / "fifo")
    return [str(folder / "c.yaml"), str(two_groups), str(next(two_groups.iterdir())),
            str(folder / "missing"), str(folder / "fifo"), "/dev/zero", str(folder / "out.csv"),
            str(folder / "out"), str(folder)]


option_values = st.one_of(
    st.sampled_from(["0", "-1", "2", "1e309", "nan", "inf", "9" * 30, "", "-", "--", "x",
                     "final", "best", "test_acc", "train_loss", "csv", "json", "markdown",
                     "model.bn.placement=none", "seed=0", "a=b", "\n", "\x1b[31m", "é", "2.5",
                     "model.bn.placement", "placement=none=no BN", "svg", "pdf", "std"]),
    st.text(max_size=15))


@pytest.mark.slow  # over ~2 s: out of the fast loop
@settings(SETTINGS, max_examples=200)
@given(pick=st.data())
def test_any_options_of_the_tensorflow_free_commands_give_a_result_or_one_line(places, pick):
    """Every option of validate, compare, doctor, plot runs and plot sweep (read from the
    CLI), with values a user might type or paste: exit 0 or one line of bad input, never a
    traceback and never a hang (the FIFO and /dev/zero are among the paths)."""
    path = pick.draw(st.sampled_from(TF_FREE_COMMANDS))
    options = _options(path)
    args = [*path, pick.draw(st.sampled_from(places))]
    chosen = st.lists(st.sampled_from(options), max_size=4) if options else st.just([])
    for option in pick.draw(chosen):
        args.append(option.opts[0])
        if not option.is_flag:
            args.append(pick.draw(st.one_of(option_values, st.sampled_from(places))))
    with tempfile.TemporaryDirectory() as cwd:  # relative outputs land here, not the checkout
        old = os.getcwd()
        os.chdir(cwd)
        try:
            _one_line_or_result(CliRunner().invoke(app, args))
        finally:
            os.chdir(old)


# ---------------------------------------------------------------- plot runs on damaged folders


def two_runs_with_diagnostics(folder):
    """Two completed runs whose folders hold every file plot draws: metrics, steps,
    activations (units 0 and all of layer L) and drift."""
    paths = [fake_run(folder, seed, [0.5, 0.6], model__bn__placement="before")
             for seed in (0, 1)]
    for path in paths:
        (path / "steps.csv").write_text("epoch,step,test_acc\n1,0,0.3\n1,5,0.5\n")
        (path / "activations.csv").write_text(
            "step,layer,unit,p15,p50,p85\n0,L,0,-1,0,1\n0,L,all,-1,0,1\n5,L,0,-2,0,2\n"
            "5,L,all,-2,0,2\n")
        (path / "drift.csv").write_text("epoch,layer,mean_error,variance_error\n1,L,0.1,0.2\n"
                                        "2,L,0.05,0.1\n")
    return paths


DAMAGES = {
    "metrics.csv a folder": lambda p: (p / "metrics.csv").unlink() or (p / "metrics.csv").mkdir(),
    "metrics.csv a link loop": lambda p: (p / "metrics.csv").unlink() or (
        p / "metrics.csv").symlink_to("metrics.csv"),
    "metrics.csv endless": lambda p: (p / "metrics.csv").unlink() or (
        p / "metrics.csv").symlink_to("/dev/urandom"),
    "metrics.csv noise": lambda p: (p / "metrics.csv").write_bytes(
        bytes(range(256)) * 12),
    "metrics.csv a huge field": lambda p: (p / "metrics.csv").write_text(
        "epoch,test_acc\n1," + "1" * 200_000 + "\n"),
    "metrics.csv epoch 1e300": lambda p: (p / "metrics.csv").write_text(
        "epoch,train_loss,test_acc\n1,1,0.5\n1e300,1,0.6\n"),
    "steps.csv step 1e308": lambda p: (p / "steps.csv").write_text(
        "epoch,step,test_acc\n1,0,0.5\n1,1e308,0.6\n"),
    "activations.csv 1e308": lambda p: (p / "activations.csv").write_text(
        "step,layer,unit,p15,p50,p85\n0,L,0,-1e308,0,1e308\n5,L,0,-1e308,0,1e308\n"),
    "drift.csv not positive": lambda p: (p / "drift.csv").write_text(
        "epoch,layer,mean_error,variance_error\n1,L,0,-1\n2,L,-0.5,0\n"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_plot_runs_draws_around_damaged_files(tmp_path, damage):
    """A file that is not one, bytes that are no CSV, numbers beyond what an axis can
    show, a log scale without a positive value: plot draws what it can, no traceback."""
    import warnings

    paths = two_runs_with_diagnostics(tmp_path / "runs")
    for path in paths if damage.startswith("drift") else paths[:1]:  # drift: a mean of both
        DAMAGES[damage](path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "cannot be log-scaled" among them
        result = CliRunner().invoke(app, ["plot", "runs", str(tmp_path / "runs"), "--out",
                                          str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    assert {"curves.png", "drift.png"} <= {p.name for p in (tmp_path / "figs").iterdir()}


@pytest.mark.parametrize("args, message", [
    (["--layer", "nope"], "--layer nope: no such layer in activations.csv (layers: L)"),
    (["--unit", "99"], "--unit 99: layer L has no unit 99 in activations.csv (units: 0, all)"),
    (["--unit", "x"], "--unit x: layer L has no unit x in activations.csv (units: 0, all)"),
    (["--layer", "l"], "--layer l: no such layer in activations.csv (layers: L)"),
])
def test_plot_runs_names_the_layers_and_units_there_are(tmp_path, args, message):
    two_runs_with_diagnostics(tmp_path / "runs")
    result = CliRunner().invoke(app, ["plot", "runs", str(tmp_path / "runs"), "--out",
                                      str(tmp_path / "figs"), *args])
    assert (result.exit_code, result.output) == (2, f"error: {message}\n")
    assert not (tmp_path / "figs").exists()


def test_plot_runs_default_unit_of_a_layer_recorded_whole_draws_the_layer(tmp_path):
    """activation_units: 0 records unit "all" only: the default unit 0 draws the layer's
    inputs together (it was skipped without a word), so does --unit all; --layer without
    activations.csv anywhere is an error."""
    for path in two_runs_with_diagnostics(tmp_path / "runs"):
        (path / "activations.csv").write_text("step,layer,unit,p15,p50,p85\n0,L,all,-1,0,1\n")
    for extra in ([], ["--unit", "all"]):
        result = CliRunner().invoke(app, ["plot", "runs", str(tmp_path / "runs"), *extra])
        assert result.exit_code == 0 and "activations.png" in result.output
    other = tmp_path / "bare"
    fake_run(other, 0, [0.5])
    result = CliRunner().invoke(app, ["plot", "runs", str(other), "--layer", "L"])
    assert result.exit_code == 2 and "--layer L: no completed run here recorded" in result.output


def test_plot_runs_checks_every_output_before_writing_one(tmp_path):
    two_runs_with_diagnostics(tmp_path / "runs")
    (tmp_path / "figs" / "activations.png").mkdir(parents=True)  # after curves and steps
    (tmp_path / "figs" / "drift.png").write_text("old")
    result = CliRunner().invoke(app, ["plot", "runs", str(tmp_path / "runs"), "--out",
                                      str(tmp_path / "figs")])
    assert result.exit_code == 2 and "activations.png: --out: cannot write" in result.output
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["activations.png",
                                                                      "drift.png"]
    assert (tmp_path / "figs" / "drift.png").read_text() == "old"


def test_plot_runs_that_cannot_finish_writing_leaves_no_folder(tmp_path):
    """Files over the size limit (RLIMIT_FSIZE: EFBIG, a real write failing part way):
    the files written before are removed, and the folders the command made."""
    two_runs_with_diagnostics(tmp_path / "runs")
    program = f"""
import resource, signal
from pathlib import Path
from typer.testing import CliRunner
from bnexp.cli import app
from bnexp.errors import BadInput
from bnexp.runs import write_folder
runner = CliRunner()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (5_000, resource.RLIM_INFINITY))
out = Path({str(tmp_path)!r}) / "new" / "figs"
result = runner.invoke(app, ["plot", "runs", {str(tmp_path / "runs")!r}, "--out", str(out)])
print(result.exit_code, result.output.replace(str(out), "OUT"), end="")
try:  # the first file fits, the second does not
    write_folder(out, {{"a.csv": b"small", "b.png": b"x" * 9_000}}, "--out")
except BadInput as e:
    print(str(e).replace(str(out), "OUT"))
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=300)
    assert done.stdout == ("2 error: OUT/curves.png: --out: cannot write (File too large)\n"
                           "OUT/b.png: --out: cannot write (File too large)\n"), done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_a_config_yaml_bomb_in_a_run_folder_is_skipped_at_once(tmp_path):
    """A billion-laughs config.yaml (10 levels of 10 aliases) where summary.json has no
    config: skipped with a warning, never expanded."""
    good = fake_run(tmp_path, 0, [0.5])
    bomb = fake_run(tmp_path, 1, [0.6])
    summary = json.loads((bomb / "summary.json").read_text())
    del summary["config"]
    (bomb / "summary.json").write_text(json.dumps(summary))
    (bomb / "config.yaml").write_text("name: x\na: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefghi", "bcdefghij",
                                                                     strict=True)))
    for args in (["compare", str(tmp_path)], ["plot", "runs", str(tmp_path), "--out",
                                              str(tmp_path / "figs")]):
        done = subprocess.run([str(Path(sys.executable).with_name("bnexp")), *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        first, *rest = done.stderr.splitlines()
        assert first == f"warning: skipped {bomb}: no readable config in summary.json " \
                        "or config.yaml"
        assert all(line.startswith("note: ") and "not drawn" in line for line in rest)
    assert good.exists()


def test_accuracies_outside_0_and_1_are_left_out_with_a_warning(tmp_path):
    """A metrics.csv edited by hand (or not bnexp's) with accuracies of -0.5 and 1.7: never
    averaged silently."""
    for seed, acc in enumerate([0.5, 0.6, 1.7, -0.5]):
        fake_run(tmp_path, seed, [acc])
    table = compare.table(compare.load(tmp_path))
    assert table["n_used"].iloc[0] == 2 and table["mean"].iloc[0] == pytest.approx(0.55)
    (note,) = table.attrs["warnings"]
    assert note.startswith("test_acc: 2 completed run(s) hold an accuracy outside [0, 1] (")
    assert "left out of the statistics" in note
    losses = compare.table(compare.load(tmp_path), "train_loss")  # a loss may be anything
    assert losses["n_used"].iloc[0] == 4 and not losses.attrs["warnings"]
