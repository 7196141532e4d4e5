"""Paths that are not files, and checkpoints that are not whole: a FIFO where a config or
a run folder's file should be (open() would wait for a writer for ever), a device that
never ends (/dev/zero), a damaged checkpoint.npz. bnexp answers with one line or reads
around them; it never hangs, never fills the memory, never shows a traceback.

Every test here has a timeout (pytest-timeout): a hang is a failure, not a stuck suite."""

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnexp import config, data, sweep
from bnexp.errors import BadInput, ConfigError, DataError
from bnexp.reporter import NullReporter
from bnexp.runs import checkpoint, csvread, search
from bnexp.runs.plan import plan, resumable
from bnexp.safeopen import TooLarge, read_bounded
from tests.helpers import fake_run

pytestmark = pytest.mark.timeout(30)


class Weight:
    """A model or optimizer variable as checkpoint.save reads it (.numpy(), .shape)."""

    def __init__(self, value):
        self.value = np.asarray(value, np.float32)
        self.shape = self.value.shape

    def numpy(self):
        return self.value

    def assign(self, value):
        self.value = np.asarray(value, np.float32)


class Holder:
    def __init__(self, shapes):
        self.weights = self.variables = self.trainable_variables = [
            Weight(np.full(shape, i + 1.0)) for i, shape in enumerate(shapes)]

    def build(self, variables):
        pass


def write_checkpoint(folder, rows=({"epoch": 1},)):
    model, optimizer = Holder([(3, 2), (2,)]), Holder([()])
    order = np.random.default_rng(0)
    checkpoint.save(folder / checkpoint.FILENAME, model, optimizer, order, list(rows))
    return model, optimizer


def interrupted_run(tmp_path):
    path = fake_run(tmp_path / "runs", 0, [0.5], status="interrupted")
    write_checkpoint(path)
    return path


def test_a_fifo_as_the_config_is_empty_not_a_hang(tmp_path):
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"c\.yaml: the file is empty"):
        config.load(fifo)


def test_a_config_that_never_ends_is_refused_without_reading_it_all():
    with pytest.raises(ConfigError) as e:
        config.load("/dev/zero")
    assert str(e.value) == "/dev/zero: more than 65,536 bytes (it does not end): not a config"


@pytest.mark.skipif(not os.access("/proc/kmsg", os.R_OK), reason="needs a readable /proc/kmsg")
def test_a_file_that_says_regular_and_waits_is_one_line_not_a_hang(tmp_path):
    """/proc/kmsg says it is a regular file of 0 bytes and waits for the kernel's next
    message: `validate /proc/kmsg` hung, as did a run folder whose metrics.csv linked to it."""
    from tests.helpers import run_bnexp

    done = run_bnexp("validate", "/proc/kmsg", timeout=60)
    assert done.returncode == 2 and done.stderr == (
        "error: /proc/kmsg: cannot read: it waits for data that may never come (not a file "
        "on disk, e.g. /proc/kmsg)\n")
    path = fake_run(tmp_path / "runs", 0, [0.5, 0.6])
    (path / "metrics.csv").unlink()
    (path / "metrics.csv").symlink_to("/proc/kmsg")
    for args in (["compare", tmp_path / "runs"], ["doctor", tmp_path / "runs"],
                 ["plot", "runs", tmp_path / "runs", "--out", tmp_path / "figs"]):
        done = run_bnexp(*args, timeout=60)
        assert done.returncode in (0, 2) and "Traceback" not in done.stderr, args


def test_read_bounded_reads_a_regular_file_whole_and_stops_past_the_limit(tmp_path):
    file = tmp_path / "f"
    file.write_bytes(b"x" * 10)
    assert read_bounded(file, 10) == b"x" * 10
    with pytest.raises(TooLarge, match="f is larger than 9 bytes"):
        read_bounded(file, 9)
    with pytest.raises(TooLarge):
        read_bounded("/dev/zero", 1000)


@pytest.mark.parametrize("writer", [False, True])
@pytest.mark.parametrize("name", ["summary.json", "metrics.csv", "config.yaml"])
def test_a_fifo_in_a_run_folder_is_read_around(tmp_path, name, writer):
    """Without a writer a FIFO read as empty; with one that stays open and silent (another
    process), the first read waited for ever. A run folder holds regular files only."""
    path = fake_run(tmp_path / "runs", 0, [0.5, 0.6])
    (path / name).unlink()
    os.mkfifo(path / name)
    held = os.open(path / name, os.O_RDWR) if writer else None  # Linux: a writer, at once
    try:
        records, problems = search.scan(tmp_path / "runs")  # returns: nothing waits
        assert not csvread.torn(path / name)
        metrics = csvread.read_metrics(path)
    finally:
        if held is not None:
            os.close(held)
    if name == "summary.json":
        assert records == [] and problems == [f"skipped {path}: unreadable summary.json "
                                              "(not a regular file)"]
    else:
        assert [r.path for r in records] == [path]
    if name == "metrics.csv":
        assert metrics == []


@pytest.mark.parametrize("name", ["metrics.csv", "train.log", "checkpoint.npz"])
def test_resume_refuses_a_folder_holding_a_fifo(tmp_path, name):
    path = interrupted_run(tmp_path)
    (path / name).unlink(missing_ok=True)
    os.mkfifo(path / name)
    with pytest.raises(BadInput) as e:
        resumable(path)
    assert str(e.value) == (f"{path / name}: --resume: not a regular file (bnexp writes only "
                            "regular files in a run folder)")


def test_resume_refuses_a_config_yaml_that_became_a_sweep(tmp_path):
    """`(spec,) = load(config.yaml)` raised ValueError (a traceback, and in a sweep's plan
    after TensorFlow had started) where a hand edit made it a sweep of several runs."""
    path = interrupted_run(tmp_path)
    with open(path / "config.yaml", "a") as f:
        f.write("sweep:\n  seeds: [0, 1]\n")
    with pytest.raises(BadInput) as e:
        resumable(path)
    assert str(e.value) == (f"{path}/config.yaml: --resume: a sweep of 2 runs, not the "
                            "config of one run; start a new run instead")


def test_a_checkpoint_reads_back_what_was_saved(tmp_path):
    model, optimizer = write_checkpoint(tmp_path, rows=[{"epoch": 1}, {"epoch": 2}])
    assert checkpoint.rows(tmp_path / checkpoint.FILENAME) == [{"epoch": 1}, {"epoch": 2}]
    fresh, fresh_opt = Holder([(3, 2), (2,)]), Holder([()])
    for w in fresh.weights + fresh_opt.variables:
        w.assign(np.zeros(w.shape))
    order = np.random.default_rng(99)
    checkpoint.restore(tmp_path / checkpoint.FILENAME, fresh, fresh_opt, order)
    np.testing.assert_array_equal(fresh.weights[0].value, np.full((3, 2), 1.0))
    np.testing.assert_array_equal(fresh.weights[1].value, np.full((2,), 2.0))
    assert order.integers(1 << 30) == np.random.default_rng(0).integers(1 << 30)


def test_a_checkpoint_of_another_shape_is_refused_before_any_weight_changes(tmp_path):
    write_checkpoint(tmp_path)
    other = Holder([(3, 2), (5,)])
    with pytest.raises(checkpoint.CheckpointError, match=r"model/1 has shape \(2,\)"):
        checkpoint.load_weights(tmp_path / checkpoint.FILENAME, other)
    np.testing.assert_array_equal(other.weights[0].value, np.full((3, 2), 1.0))  # untouched


def test_a_checkpoint_written_before_weights_had_names_still_restores(tmp_path):
    """Checkpoints of earlier bnexp hold model_<i> and no model_names: read by position."""
    meta = {"rows": [{"epoch": 1}], "order": np.random.default_rng(0).bit_generator.state,
            "n_model": 2, "n_optimizer": 1, "n_random": 0}
    np.savez(tmp_path / checkpoint.FILENAME, model_0=np.full((3, 2), 7.0),
             model_1=np.full((2,), 8.0), optimizer_0=np.array(3.0),
             meta=np.array(json.dumps(meta)))
    fresh, fresh_opt = Holder([(3, 2), (2,)]), Holder([()])
    checkpoint.restore(tmp_path / checkpoint.FILENAME, fresh, fresh_opt, np.random.default_rng(1))
    np.testing.assert_array_equal(fresh.weights[1].value, np.full((2,), 8.0))
    assert list(checkpoint.model_weights(tmp_path / checkpoint.FILENAME)) == ["0", "1"]


def test_a_checkpoint_claiming_a_huge_count_is_refused_at_once(tmp_path):
    np.savez(tmp_path / checkpoint.FILENAME, meta=np.array(json.dumps(
        {"rows": [], "order": {}, "n_model": 10**15, "n_optimizer": 0})))
    with pytest.raises(checkpoint.CheckpointError, match="not a whole bnexp checkpoint"):
        checkpoint.read(tmp_path / checkpoint.FILENAME)


def damaged(data: bytes, how) -> bytes:
    """The bytes of a zip file (npz) damaged: cut short, one byte changed (anywhere, or
    in the first central-directory entry: flags, compression method, sizes), or filled."""
    kind, at, value = how
    if kind == "central":  # e.g. flags 1: "encrypted"; method 99: "not supported"
        start = data.index(b"PK\x01\x02")
        return damaged(data, ("flip", start + at % 46, value))
    at = at % (len(data) + 1)
    if kind == "truncate":
        return data[:at]
    if kind == "flip":
        return data[:at] + bytes([value]) + data[at + 1:]
    return bytes([value]) * at


DAMAGE_SETTINGS = settings(max_examples=150, deadline=None,
                           suppress_health_check=[HealthCheck.function_scoped_fixture])
damages = st.one_of(  # what `damaged` does to a zip file's bytes
    st.tuples(st.sampled_from(["truncate", "flip", "fill", "central"]), st.integers(0, 10**6),
              st.integers(0, 255)),
    st.sampled_from([("central", 8, 1), ("central", 10, 99)]))  # found: not to be lost


@DAMAGE_SETTINGS
@given(how=damages)
def test_a_damaged_checkpoint_is_one_line_of_bad_input_or_still_whole(tmp_path_factory, how):
    folder = tmp_path_factory.mktemp("ck")
    write_checkpoint(folder)
    file = folder / checkpoint.FILENAME
    file.write_bytes(damaged(file.read_bytes(), how))
    try:
        arrays, meta = checkpoint.read(file)
    except checkpoint.CheckpointError as e:
        assert str(e).startswith(f"{file}: ") and "\n" not in str(e)
        return
    assert meta["n_model"] == 2 and {"model/0", "model/1", "optimizer_0"} <= set(arrays)


def test_resume_refuses_a_damaged_checkpoint_before_writing_anything(tmp_path):
    path = interrupted_run(tmp_path)
    (path / checkpoint.FILENAME).write_bytes(b"PK\x03\x04 not a zip")
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    with pytest.raises(BadInput, match=r"checkpoint\.npz: not a whole bnexp checkpoint "
                                       r"\(BadZipFile\)"):
        sweep.resume(path, NullReporter())
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before


def test_a_sweep_starts_afresh_a_run_it_cannot_resume_and_says_why(tmp_path):
    path = interrupted_run(tmp_path)
    specs = config.load_all([path / "config.yaml"], [])
    notes = []

    class Noting(NullReporter):
        def note(self, text):
            notes.append(text)

    intact = tmp_path / "intact"
    path.rename(intact)
    _, todo = plan(specs, tmp_path / "runs", False, Noting())
    assert todo == [(specs[0], None)] and notes == []  # nothing there: a new run
    intact.rename(path)
    _, todo = plan(specs, tmp_path / "runs", False, Noting())
    assert todo == [(specs[0], path)] and notes == []  # whole: resumed in its folder
    (path / checkpoint.FILENAME).write_bytes(b"garbage")
    _, todo = plan(specs, tmp_path / "runs", False, Noting())
    assert todo == [(specs[0], None)]
    assert notes == [f"{path}: cannot resume ({path / checkpoint.FILENAME}: not a whole bnexp "
                     "checkpoint (ValueError)); the run starts afresh"]


@DAMAGE_SETTINGS
@given(how=damages)
def test_a_damaged_mnist_npz_is_one_line_of_bad_input_or_still_whole(tmp_path_factory, how):
    file = tmp_path_factory.mktemp("npz") / "mnist.npz"
    x, y = np.zeros((4, 28, 28), np.uint8), np.arange(4, dtype=np.uint8)
    np.savez(file, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    file.write_bytes(damaged(file.read_bytes(), how))
    try:
        arrays = data.read_npz(file)
    except DataError as e:
        assert str(e).startswith(f"{file}: ") and "\n" not in str(e)
        return
    assert len(arrays) == 4


def not_a_regular_file(kind: str, path) -> None:
    """Make `path` a folder, FIFO, socket, symbolic link loop or device (a copy of
    /dev/null's, made with mknod where the tests run as root)."""
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        import socket

        socket.socket(socket.AF_UNIX).bind(str(path))
    elif kind == "loop":
        path.symlink_to(path)
    else:
        if os.geteuid() != 0:
            pytest.skip("mknod needs root")
        os.mknod(path, 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 3))


KINDS = ["folder", "fifo", "socket", "loop", "device"]
OUTPUTS = {  # an output option, and where in tmp_path its file goes
    "compare --out": (["compare", "{runs}", "--out", "{target}", "--format", "csv"], "t.csv"),
    "compare --plot": (["compare", "{runs}", "--plot", "{target}"], "t.png"),
    "plot runs --out": (["plot", "runs", "{runs}", "--out", "{folder}"], "figs/curves.png"),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("output", OUTPUTS)
def test_an_output_that_is_not_a_regular_file_is_refused_and_left_as_it_was(
        tmp_path, kind, output):
    """Writing replaces a file by renaming a temp file over it: over a FIFO, a device or a
    folder that would destroy it (`--out /dev/null` as root once replaced the machine's
    /dev/null). Refused in one line, exit 2, the path left what it was."""
    from typer.testing import CliRunner

    from bnexp.cli import app

    runs = tmp_path / "runs"
    fake_run(runs, 0, [0.5, 0.6])
    args, where = OUTPUTS[output]
    target = tmp_path / where
    target.parent.mkdir(exist_ok=True)
    not_a_regular_file(kind, target)
    before = os.lstat(target)
    values = {"runs": str(runs), "target": str(target), "folder": str(target.parent)}
    result = CliRunner().invoke(app, [a.format(**values) for a in args])
    assert result.exit_code == 2, result.output
    assert "not a regular file" in result.output and len(result.output.splitlines()) == 1
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)


def test_an_output_folder_whose_name_is_too_long_leaves_no_parent_behind(tmp_path):
    """plot runs --out a/b/<300 characters>: a and b were made before the long name failed,
    and left there. Now refused as the option is parsed, before anything is made."""
    from typer.testing import CliRunner

    from bnexp.cli import app

    runs = tmp_path / "runs"
    fake_run(runs, 0, [0.5, 0.6])
    out = tmp_path / "a" / "b" / ("x" * 300)
    result = CliRunner().invoke(app, ["plot", "runs", str(runs), "--out", str(out)])
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1, result.output
    assert "'--out'" in result.output and "too long for a path" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_an_output_through_a_symbolic_link_replaces_the_file_it_leads_to(tmp_path):
    from bnexp.runs import write_text_atomic

    real, link = tmp_path / "real.csv", tmp_path / "link.csv"
    real.write_text("old")
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "made.csv")
    write_text_atomic(dangling, "made")
    assert dangling.is_symlink() and (tmp_path / "made.csv").read_text() == "made"


@pytest.mark.parametrize("link", ["dangling", "loop"])
@pytest.mark.parametrize("below", [False, True])
def test_a_runs_dir_through_a_broken_symbolic_link_is_refused_before_training(
        tmp_path, link, below):
    """ensure_writable walked up to the nearest existing folder and passed; mkdir then
    failed at the first run, after TensorFlow had started."""
    from bnexp.runs import ensure_writable

    broken = tmp_path / "runs"
    broken.symlink_to(tmp_path / "nowhere" if link == "dangling" else broken)
    with pytest.raises(BadInput, match="symbolic link to nothing"):
        ensure_writable(broken / "sub" if below else broken)


@pytest.mark.parametrize("plot_as", ["same", "dot", "link"])
def test_out_and_plot_naming_one_file_are_refused(tmp_path, plot_as):
    """--out x --plot x left the PNG where the table was asked for, exit 0."""
    from typer.testing import CliRunner

    from bnexp.cli import app

    fake_run(tmp_path / "runs", 0, [0.5])
    out = tmp_path / "t.png"  # a table named .png: its --format given
    plot = {"same": out, "dot": tmp_path / "." / "t.png", "link": tmp_path / "l.png"}[plot_as]
    if plot_as == "link":
        plot.symlink_to(out)
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "runs"), "--out", str(out),
                                      "--format", "csv", "--plot", str(plot)])
    assert result.exit_code == 2 and "the same file as --out" in result.output
    assert not out.exists()


@pytest.mark.parametrize("name", ["summary.json", "metrics.csv", "config.yaml"])
def test_an_output_never_replaces_a_run_folders_own_file(tmp_path, name):
    """compare --out RUN/summary.json made the run unreadable."""
    from typer.testing import CliRunner

    from bnexp.cli import app

    run = fake_run(tmp_path / "runs", 0, [0.5])
    before = (run / name).read_bytes()
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "runs"), "--out",
                                      str(run / name), "--format", "csv"])
    assert result.exit_code == 2 and "a run folder's own file" in result.output
    assert (run / name).read_bytes() == before


def test_plot_runs_into_a_run_folder_keeps_its_steps_csv(tmp_path):
    """The group table plot runs writes was named steps.csv: plotting a run into its own
    folder (the default --out) replaced the run's per-step data with it."""
    from typer.testing import CliRunner

    from bnexp.cli import app

    run = fake_run(tmp_path / "runs", 0, [0.5, 0.6])
    steps = "epoch,step,train_loss,train_acc,test_loss,test_acc\n1,0,1,0.1,1,0.1\n1,5,1,0.2,1,0.3\n"
    (run / "steps.csv").write_text(steps)
    result = CliRunner().invoke(app, ["plot", "runs", str(run)])
    assert result.exit_code == 0, result.output
    assert (run / "steps.csv").read_text() == steps and (run / "steps_by_group.csv").exists()


def test_an_output_name_of_250_bytes_is_written(tmp_path):
    """The temp file beside it was `.{name}.XXXXXXXX{suffix}`: over 255 bytes, so a legal
    250-byte name was refused as "File name too long"."""
    from typer.testing import CliRunner

    from bnexp.cli import app

    fake_run(tmp_path / "runs", 0, [0.5, 0.6])
    out = tmp_path / ("t" * 246 + ".csv")
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "runs"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("name,")
