"""The CLI through Typer's CliRunner: exit codes, messages, files; and what it imports."""

import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bnexp.cli import app
from bnexp.errors import MAX_MESSAGE
from tests.helpers import SYNTHETIC, fake_run, run_bnexp

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, plain(result.output)


def test_help_lists_the_commands():
    """The README's commands, each on its own line of the Commands box, in order."""
    code, out = invoke("--help")
    assert code == 0
    listed = re.findall(r"^│ (\w+)\s{2,}", out.split("Commands")[1], flags=re.M)
    assert listed == ["train", "summary", "validate", "compare", "doctor", "report", "eval",
                      "plot", "export"]


def test_validate_lists_the_runs_a_sweep_expands_to(write_config):
    path = write_config(SYNTHETIC + "sweep:\n  grid:\n    model.bn.placement: [none, after]\n"
                        "  seeds: [0, 1]\n")
    code, out = invoke("validate", path)
    assert code == 0
    assert "valid, 4 runs" in out and "syn_placement=after_s1" in out


def test_validate_shows_a_line_break_in_the_path_or_a_grid_value_escaped(tmp_path):
    """validate's answer is one line per run for scripts: a path or value holding a line
    break (or a terminal escape) is shown escaped, never as a line of its own."""
    path = tmp_path / "a\nb\x1b[31m.yaml"
    path.write_text(SYNTHETIC + "sweep:\n  grid:\n    data.path: ['/x\\ny', '/z']\n")
    code, out = invoke("validate", path)
    assert code == 0, out
    lines = out.splitlines()
    assert len(lines) == 3 and "\x1b" not in out
    assert lines[0].endswith("a\\nb\\x1b[31m.yaml: valid, 2 runs")
    assert "data.path=/x\\ny" in lines[1]


@pytest.mark.parametrize("text,key", [
    ("model:\n  bn:\n    placment: before\n", "model.bn.placment"),
    ("optimizer:\n  learning_rate: -1\n", "optimizer.learning_rate"),
    ("data:\n  dataset: imagenet\n", "data.dataset"),
    ("train: {epochs: ten}\n", "train.epochs"),
])
@pytest.mark.parametrize("command", ["validate", "train", "summary"])
def test_bad_config_exits_2_with_one_line_and_no_run_folder(write_config, tmp_path, text, key,
                                                           command):
    path = write_config(text)
    runs_dir = tmp_path / "runs"
    args = [command, path] + (["--runs-dir", runs_dir] if command == "train" else [])
    code, out = invoke(*args)
    assert code == 2
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and key in lines[0]
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_bad_set_and_missing_file_exit_2(write_config, tmp_path):
    path = write_config(SYNTHETIC)
    code, out = invoke("validate", path, "--set", "model.bn.placement")
    assert code == 2 and "KEY=VALUE" in out
    code, out = invoke("validate", tmp_path / "missing.yaml")
    assert code == 2 and "no such file" in out


def test_missing_dataset_exits_2_before_any_run_folder(write_config, tmp_path):
    path = write_config(f"data:\n  dataset: mnist\n  path: {tmp_path / 'nothing'}\n")
    code, out = invoke("train", path, "--runs-dir", tmp_path / "runs")
    assert code == 2 and "data.path" in out and "no mnist files" in out
    assert not (tmp_path / "runs").exists()  # made only once every check has passed


def test_unbuildable_model_exits_2(write_config, tmp_path):
    path = write_config(SYNTHETIC + "model:\n  kernel_size: 15\n")
    code, out = invoke("train", path, "--runs-dir", tmp_path / "runs")
    assert code == 2 and "cannot build lenet" in out and "conv2" in out
    assert not (tmp_path / "runs").exists()  # found by the config check, before any folder


@pytest.mark.slow  # over ~2 s: out of the fast loop
def test_train_writes_the_run_folder_and_prints_it(write_config, tmp_path):
    path = write_config(SYNTHETIC)
    code, out = invoke("train", path, "--runs-dir", tmp_path / "runs", "--set", "seed=3")
    assert code == 0, out
    (run,) = list((tmp_path / "runs").iterdir())
    assert str(run) in out.splitlines()
    assert run.name.startswith("syn_s3_")
    assert "epoch 2" in out  # the plain per-epoch line without a terminal
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["seed"] == 3
    assert len((run / "metrics.csv").read_text().splitlines()) == 3


@pytest.mark.slow
def test_smoke_runs_each_cell_once(write_config, tmp_path):
    path = write_config(SYNTHETIC + "sweep:\n  grid:\n    model.bn.impl: [keras, scratch]\n"
                        "  seeds: [0, 1, 2]\n")
    code, out = invoke("train", path, "--smoke", "--runs-dir", tmp_path / "runs")
    assert code == 0, out
    folders = sorted((tmp_path / "runs").iterdir())
    assert [f.name.split("_s0_")[0] for f in folders] == ["syn_impl=keras", "syn_impl=scratch"]
    for folder in folders:  # one epoch of three batches of 50; one batch to evaluate
        assert len((folder / "metrics.csv").read_text().splitlines()) == 2
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["data"] == {**summary["data"], "train": 150, "validation": 50,
                                   "test": 50}


def test_summary_prints_keras_totals(write_config):
    code, out = invoke("summary", write_config(SYNTHETIC + "model:\n  bn: {impl: scratch}\n"))
    assert code == 0
    assert "Total params: 45,104" in out and "Trainable params: 44,652" in out
    assert "Non-trainable params: 452" in out and "conv1_bn" in out and "(None, 4, 4, 16)" in out


def test_unwritable_runs_dir_exits_2(write_config, tmp_path):
    (tmp_path / "file").write_text("")
    code, out = invoke("train", write_config(SYNTHETIC), "--runs-dir", tmp_path / "file" / "r")
    assert code == 2 and "--runs-dir" in out


def test_cli_import_help_and_validate_load_no_tensorflow(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(SYNTHETIC)
    probe = f"""
import sys
import bnexp.cli
from typer.testing import CliRunner
r = CliRunner().invoke(bnexp.cli.app, ["--help"])
assert r.exit_code == 0
r = CliRunner().invoke(bnexp.cli.app, ["validate", {str(config)!r}])
assert r.exit_code == 0, r.output
heavy = [m for m in ("tensorflow", "keras", "matplotlib") if m in sys.modules]
print("heavy:", heavy)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_terminal_without_utf8_gets_escapes_not_a_traceback(tmp_path, encoding):
    """An é in a path and compare's ± and … under PYTHONIOENCODING=ascii (or latin-1)
    were a UnicodeEncodeError traceback, exit 1; they are printed escaped."""
    config = tmp_path / "café.yaml"
    config.write_text("data: {dataset: synthetic}\n")
    for seed in (0, 1):
        fake_run(tmp_path / "runs", seed, [0.5, 0.6 + 0.01 * seed])
    def run_bnexp(*args, **_):  # the installed script, its output read in that encoding
        env = {**os.environ, "PYTHONIOENCODING": encoding, "BNEXP_NO_DOWNLOAD": "1"}
        return subprocess.run([str(Path(sys.executable).with_name("bnexp")), *map(str, args)],
                              capture_output=True, encoding=encoding, env=env, timeout=60)

    valid = run_bnexp("validate", config)
    assert valid.returncode == 0 and valid.stderr == ""
    assert ("caf\\xe9.yaml: valid" if encoding == "ascii" else "café.yaml: valid") in valid.stdout
    table = run_bnexp("compare", tmp_path / "runs")
    assert table.returncode == 0 and "Traceback" not in table.stderr
    assert "0.6050" in table.stdout  # the mean of 0.60 and 0.61, in the table
    missing = run_bnexp("validate", tmp_path / "nö.yaml")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=50))
def test_one_line_leaves_nothing_a_terminal_would_act_on(text):
    """Messages quote what the user gave. Only C0 controls were escaped: C1 controls
    (\\x9b starts an escape sequence on some terminals), bidi overrides (\\u202e turns the
    rest of the line around), \\u2028 and lone surrogates went through."""
    from bnexp.errors import one_line

    shown = one_line(text)
    assert len(shown.splitlines()) <= 1
    assert all(unicodedata.category(c) not in {"Cc", "Cf", "Zl", "Zp", "Cs"} for c in shown)
    shown.encode("utf-8")  # no lone surrogate left to raise UnicodeEncodeError
    if text.isprintable():
        assert shown == text


def test_a_warning_naming_a_hostile_folder_stays_one_line(capsys):
    """compare, plot and doctor warn about skipped folders by name; a folder name with a
    line break and a terminal escape printed a forged second line and cleared the screen."""
    from bnexp.views.tables import print_warnings

    print_warnings(["skipped runs/a\nwarning: fake\x1b[2J\u202e: unreadable summary.json"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "\u202e" not in err
    assert "\\nwarning: fake\\x1b[2J" in err


EMPTY_PATHS = [["compare", ""], ["compare", "runs", "--out", ""], ["compare", "runs", "--plot", ""],
               ["plot", "runs", ""], ["plot", "runs", "runs", "--out", ""], ["doctor", ""],
               ["validate", ""], ["summary", ""], ["train", ""], ["train", "--resume", ""],
               ["plot", "features", ""], ["plot", "features", "runs", "--out", ""]]


@pytest.mark.parametrize("args", EMPTY_PATHS, ids=" ".join)
def test_an_empty_path_is_one_line_of_bad_input(args, tmp_path, monkeypatch):
    """Path("") is ".": `compare ''` compared the folder you stood in and `plot runs ''`
    wrote its PNGs there. Every path argument and option refuses an empty one."""
    monkeypatch.chdir(tmp_path)
    fake_run(tmp_path / "runs", 0, [0.5])
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "an empty path" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_data_is_printed_as_it_is_never_as_rich_markup(tmp_path):
    """A value "x[/]" raised rich's MarkupError (a traceback, half a table printed);
    "[red]b[/red]" and ":thumbs_up:" were printed changed."""
    values = ["[red]b[/red]", "x[/]", ":thumbs_up:"]
    for seed, value in enumerate(values):
        run = fake_run(tmp_path / "runs", seed, [0.5])
        summary = json.loads((run / "summary.json").read_text())
        summary["config"]["data"]["path"] = value
        (run / "summary.json").write_text(json.dumps(summary))
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "runs")])
    assert result.exit_code == 0 and all(v in result.output for v in values)
    config = tmp_path / "d[/]" / "c[bold]x.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(SYNTHETIC)
    result = CliRunner().invoke(app, ["validate", str(config)])
    assert result.exit_code == 0 and "c[bold]x.yaml: valid" in result.output


def test_a_table_on_a_narrow_terminal_keeps_every_value_whole():
    """On a terminal of 30 columns (or COLUMNS=0) rich cut every cell to "…" or blank."""
    import io

    from rich.console import Console
    from rich.table import Table

    from bnexp.views.tables import PLAIN, print_table

    table = Table()
    for name in ("model.bn.placement", "test_acc mean ± std"):
        table.add_column(name)
    table.add_row("after_the_activation", "0.8350 ± 0.0508")
    for width in (0, 1, 30):
        out = io.StringIO()
        print_table(Console(file=out, width=width, **PLAIN), table)
        assert "after_the_activation" in out.getvalue() and "0.8350 ± 0.0508" in out.getvalue()


def test_matplotlibs_own_settings_cannot_break_or_blow_up_a_plot(tmp_path):
    """MPLBACKEND=bogus was a ValueError traceback at matplotlib's import; a matplotlibrc
    in the current folder with savefig.dpi 20000 made a PNG of gigabytes (MemoryError).
    bnexp draws on its own Agg canvases at its own dpi."""
    fake_run(tmp_path / "runs", 0, [0.5, 0.6])
    (tmp_path / "matplotlibrc").write_text("savefig.dpi: 20000\n")
    env = {**os.environ, "MPLBACKEND": "bogus"}
    result = subprocess.run([sys.executable, "-m", "bnexp", "compare", "runs", "--plot",
                             "c.png"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert 1_000 < (tmp_path / "c.png").stat().st_size < 1_000_000


def test_with_standard_error_closed_an_error_still_exits_2_and_stdout_stays_clean(tmp_path):
    """Errors went to stdout when stderr was closed (`2>&-`): Python's print(file=None)."""
    result = subprocess.run([sys.executable, "-m", "bnexp", "compare", "nosuch"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            preexec_fn=lambda: os.close(2))
    assert result.returncode == 2 and result.stdout == ""


def test_a_usage_error_quoting_a_huge_value_is_one_line_cut_short(tmp_path):
    """click's own errors (an unknown --format) quoted a 120,000-character value whole."""
    result = run_bnexp("compare", "--format", "x" * 120_000, tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and len(result.stderr) <= MAX_MESSAGE + 1


def test_a_long_message_is_cut_in_the_middle_and_keeps_what_was_expected(tmp_path):
    """Cut at its end, `--metric <5,000 characters>` lost "expected one of ..."."""
    fake_run(tmp_path / "runs", 0, [0.5])
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "runs"), "--metric",
                                      "m" * 5000])
    assert result.exit_code == 2 and len(result.output) <= len("error: ") + MAX_MESSAGE + 1
    assert result.output.startswith("error: --metric mmm") and "expected one of" in result.output


@pytest.mark.parametrize("stdout", ["read-only", "full", "closed"])
@pytest.mark.parametrize("args", [["--help"], ["compare", "runs"], ["validate", "c.yaml"]])
def test_a_standard_output_that_cannot_be_written_is_one_line(tmp_path, stdout, args):
    """stdout opened read-only (EBADF) or a full device (ENOSPC) gave a traceback, exit 1;
    closed (`>&-`), compare's table was lost without a word and exit 0."""
    fake_run(tmp_path / "runs", 0, [0.5])
    (tmp_path / "c.yaml").write_text(SYNTHETIC)
    target = tmp_path / "out"
    if stdout == "closed":
        result = subprocess.run([sys.executable, "-m", "bnexp", *args], cwd=tmp_path,
                                stderr=subprocess.PIPE, text=True, timeout=60,
                                preexec_fn=lambda: os.close(1))
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "cannot write" in result.stderr
        return
    if stdout == "full":
        if os.geteuid() != 0:
            pytest.skip("mknod needs root")
        os.mknod(target, 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 7))
        handle = open(target, "w")  # noqa: SIM115
    else:
        target.write_text("")
        handle = open(target)  # noqa: SIM115
    with handle:
        result = subprocess.run([sys.executable, "-m", "bnexp", *args], cwd=tmp_path,
                                stdout=handle, stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "cannot write" in result.stderr


@pytest.mark.parametrize("args, error", [
    (["--plot", "p.jpg"], "p.jpg: --plot: bnexp draws figures as .png, .svg or .pdf, not "
                          ".jpg; rename it"),
    (["--out", "t.xlsx"], "t.xlsx: --out: bnexp writes tables as .csv, .md or .json, not "
                          ".xlsx; rename it or give --format"),
    (["--out", "t.png"], "t.png: --out: bnexp writes tables as .csv, .md or .json, not .png;"
                         " rename it or give --format"),
])
def test_an_output_named_for_another_format_is_refused(tmp_path, monkeypatch, args, error):
    """--plot p.pdf held PNG bytes (a .jpg would have) and --out t.xlsx held CSV text."""
    fake_run(tmp_path / "runs", 0, [0.5])
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["compare", "runs", *args])
    assert result.exit_code == 2 and result.output == f"error: {error}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    ok = CliRunner().invoke(app, ["compare", "runs", "--out", "t.txt"])
    assert ok.exit_code == 0 and (tmp_path / "t.txt").read_text().startswith("name,")
    ok = CliRunner().invoke(app, ["compare", "runs", "--out", "t.tab", "--format", "markdown"])
    assert ok.exit_code == 0 and (tmp_path / "t.tab").read_text().startswith("| name")
