"""The shell's conventions, through the installed script in real processes: a standard
output whose reader has gone (`| head -1`, `| true`) changes no exit code's meaning; a
working folder deleted under bnexp, with absolute paths, works or is one line (exit 2);
environment variables that name folders (XDG_*, MPLCONFIGDIR, TMPDIR, HOME) are checked
or fall back quietly."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import SYNTHETIC, fake_run

EXE = Path(sys.executable).with_name("bnexp")

# 30 seeds x 10 x 3: 900 runs, ~90 kB of run list, more than a pipe holds (64 kB)
BIG = SYNTHETIC + """
sweep:
  seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
          23, 24, 25, 26, 27, 28, 29]
  grid:
    optimizer.learning_rate: [0.1, 0.01, 0.001, 0.0001, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    model.bn.placement: [before, after, none]
"""
TINY = SYNTHETIC.replace("epochs: 2", "epochs: 1")


def _env(**changes) -> dict:
    """The tests' environment, `changes` applied (None: unset), downloads off."""
    env = {**os.environ, "BNEXP_NO_DOWNLOAD": "1"}
    for name in ("BNEXP_XLA_CACHE", "TF_XLA_FLAGS"):  # conftest's cache folder named there
        env.pop(name, None)  # the default cache folder: from XDG_CACHE_HOME or HOME
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


def into_a_closed_pipe(*args, cwd=None, env=None, timeout=300) -> tuple[int, str]:
    """bnexp ARGS with its standard output a pipe whose reader has already gone, as in
    `bnexp ... | true`: (exit code, stderr). Every write to stdout meets EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.Popen([str(EXE), *map(str, args)], stdout=write,
                                stderr=subprocess.PIPE, text=True, cwd=cwd,
                                env=env or _env())
    finally:
        os.close(write)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def test_validate_into_a_pipe_whose_reader_left_exits_0_or_2_as_documented(write_config):
    """validate promises 0 (valid) or 2 (not): a reader that left (`| true`) changes
    neither (rich's broken-pipe handler made it 1), and nothing reaches stderr."""
    code, err = into_a_closed_pipe("validate", write_config(BIG))
    assert (code, err) == (0, "")
    code, err = into_a_closed_pipe("validate", write_config(TINY + "bogus: 1\n", "bad.yaml"))
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "bogus" in err


def test_validate_piped_into_head_prints_its_first_line_and_exits_0(write_config):
    """`bnexp validate big.yaml | head -1`: the first line, exit 0, no traceback."""
    config = write_config(BIG)
    script = (f"{shlex.quote(str(EXE))} validate {shlex.quote(str(config))} | head -1; "
              'echo "exit=${PIPESTATUS[0]}"')
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=_env(),
                         timeout=120)
    assert out.stdout == f"{config}: valid, 900 runs\nexit=0\n"
    assert out.stderr == ""


@pytest.fixture(scope="module")
def trained_into_a_closed_pipe(tmp_path_factory):
    """`bnexp train tiny.yaml --runs-dir ABS | true`, run from a folder of its own with a
    relative XDG_CACHE_HOME: (exit code, stderr, the runs folder, the working folder)."""
    root = tmp_path_factory.mktemp("shell")
    config, work = root / "tiny.yaml", root / "work"
    config.write_text(TINY)
    work.mkdir()
    code, err = into_a_closed_pipe("train", config, "--runs-dir", root / "runs", "--jobs", "1",
                                   cwd=work, env=_env(XDG_CACHE_HOME="cache"))
    return code, err, root / "runs", work


@pytest.mark.slow  # trains a run (one epoch of the synthetic set)
def test_train_into_a_closed_pipe_exits_0_when_its_run_completed(trained_into_a_closed_pipe):
    """`bnexp train tiny.yaml | true`: the run completed, so exit 0 (1 would say a run
    failed); stderr holds the progress lines and no traceback."""
    code, err, runs_dir, _ = trained_into_a_closed_pipe
    (folder,) = runs_dir.iterdir()
    assert json.loads((folder / "summary.json").read_text())["status"] == "completed"
    assert code == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err


@pytest.mark.slow  # the same training
def test_a_relative_xdg_cache_home_puts_no_cache_into_the_working_folder(
        trained_into_a_closed_pipe):
    """XDG_CACHE_HOME=cache (relative: the XDG spec says to ignore it) put the XLA cache
    into ./cache of whatever folder bnexp was started from."""
    *_, work = trained_into_a_closed_pipe
    assert list(work.iterdir()) == []


def test_a_deleted_working_folder_with_absolute_paths_works_or_is_one_line(tmp_path):
    """From a folder deleted under it: validate and compare of absolute paths work; a
    sweep whose worker processes need the working folder (multiprocessing asks for it)
    is one line, exit 2, and writes nothing (was a FileNotFoundError traceback, exit 1)."""
    config = tmp_path / "two.yaml"
    config.write_text(TINY + "sweep: {seeds: [0, 1]}\n")
    fake_run(tmp_path / "old", 0, [0.5, 0.6])
    gone = tmp_path / "gone"
    script = (f"mkdir -p {shlex.quote(str(gone))} && cd {shlex.quote(str(gone))} && "
              f"rmdir {shlex.quote(str(gone))} && {shlex.quote(str(EXE))} \"$@\"")

    def from_gone(*args):
        return subprocess.run(["bash", "-c", script, "bnexp", *map(str, args)],
                              capture_output=True, text=True, env=_env(), timeout=300)

    out = from_gone("validate", config)
    assert (out.returncode, out.stderr) == (0, ""), out.stderr
    out = from_gone("compare", tmp_path / "old", "--format", "csv")
    assert out.returncode == 0 and out.stdout.startswith("name,"), out.stderr
    out = from_gone("train", config, "--runs-dir", tmp_path / "runs", "--jobs", "2")
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
    assert "working folder" in out.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("setting", [
    "MPLCONFIGDIR=<a file>",  # matplotlib: "mkdir -p failed ...", "created a temporary ..."
    "HOME=home",              # matplotlib made ./home/.config/matplotlib here
    "XDG_CONFIG_HOME=config",  # matplotlib made ./config/matplotlib here
])
def test_folders_named_by_the_environment_fall_back_quietly(tmp_path, setting):
    """`bnexp plot runs` under a variable naming no usable folder: the figures, exit 0,
    nothing on stderr but bnexp's own notes, nothing written into the working folder."""
    fake_run(tmp_path / "runs", 0, [0.5, 0.6])
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder\n")
    work = tmp_path / "work"
    work.mkdir()
    name, _, value = setting.partition("=")
    changes = {name: a_file if value == "<a file>" else value, "XDG_CONFIG_HOME": None,
               "XDG_CACHE_HOME": None}
    if name != "MPLCONFIGDIR":
        changes["MPLCONFIGDIR"] = None
    if name == "XDG_CONFIG_HOME":
        changes[name] = value
    out = subprocess.run([str(EXE), "plot", "runs", str(tmp_path / "runs"), "--out",
                          str(tmp_path / "figs")], capture_output=True, text=True, cwd=work,
                         env=_env(**changes), timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "figs" / "curves.png").is_file()
    noise = [line for line in out.stderr.splitlines() if not line.startswith("note: ")]
    assert noise == []
    assert list(work.iterdir()) == []


def test_a_relative_tmpdir_from_a_deleted_working_folder_falls_back_to_tmp(tmp_path):
    """TMPDIR=tmp (relative) from a deleted folder, where matplotlib needs a temporary
    folder (MPLCONFIGDIR names a file): Python's tempfile asked for the working folder,
    and matplotlib's OSError was a traceback, exit 1. Now TMPDIR is dropped: /tmp."""
    fake_run(tmp_path / "runs", 0, [0.5, 0.6])
    (tmp_path / "a_file").write_text("not a folder\n")
    gone = tmp_path / "gone"
    script = (f"mkdir {shlex.quote(str(gone))} && cd {shlex.quote(str(gone))} && "
              f"rmdir {shlex.quote(str(gone))} && {shlex.quote(str(EXE))} \"$@\"")
    out = subprocess.run(["bash", "-c", script, "bnexp", "plot", "runs", str(tmp_path / "runs"),
                          "--out", str(tmp_path / "figs")], capture_output=True, text=True,
                         env=_env(TMPDIR="tmp", MPLCONFIGDIR=tmp_path / "a_file"), timeout=120)
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stderr.splitlines() if not line.startswith("note: ")] == []
    assert (tmp_path / "figs" / "curves.png").is_file()


def test_train_shows_a_run_folders_terminal_escapes_escaped(tmp_path, capsys):
    """The progress lines and the one-folder-per-line stdout of `train` show a folder
    name's escapes escaped (they reached the terminal raw), as every other command."""
    import io

    from rich.console import Console

    from bnexp.views.progress import PlainReporter, RichReporter

    path = tmp_path / "a\x1b[31mred\x07\nb"
    for kind in (PlainReporter, RichReporter):
        out = io.StringIO()
        reporter = kind(Console(file=out, width=200))
        reporter.run_skipped(path, "completed")
        reporter.run_started(path, 1)
        reporter.run_done(path, {"status": "completed"})
        reporter.sweep_started(1, 1)
        reporter.sweep_run_done(path, {"status": "completed"})
        reporter.sweep_finished()
        shown = out.getvalue() + capsys.readouterr().out
        assert "\x1b[31m" not in shown and "\x07" not in shown and "red\\x07\\nb" in shown
        assert shown.count(f"{tmp_path}/a\\x1b[31mred\\x07\\nb\n") == 3


def test_every_command_that_lists_files_shows_their_escapes_escaped(tmp_path):
    """plot runs, plot sweep and report print the files they wrote one per line, as
    train prints run folders: a line break or escape in the path shown escaped (plot's
    paths reached stdout raw: found by an outside catalogue)."""
    from typer.testing import CliRunner

    from bnexp.cli import app
    from tests.helpers import fake_run

    for seed, placement in ((0, "none"), (1, "before")):
        fake_run(tmp_path / "runs", seed, [0.5, 0.6], model__bn__placement=placement)
    out = tmp_path / "o\x1b[31mred\nx"
    for args in (["plot", "runs", str(tmp_path / "runs"), "--out", str(out)],
                 ["plot", "sweep", str(tmp_path / "runs"), "--x", "model.bn.placement",
                  "--out", f"{out}.png"],
                 ["report", str(tmp_path / "runs"), "--out", f"{out}.html"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.stdout and result.stdout.count("red\\nx") >= 1
        assert all(line.startswith(str(tmp_path)) for line in result.stdout.splitlines())
