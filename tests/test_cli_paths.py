"""A path no operating system could open, given to any path argument or option of any
command: a NUL character, a name past NAME_MAX bytes, a path past PATH_MAX. One line
naming the option, exit code 2, nothing read or written and no TensorFlow: every path
parses through bnexp.cli_args.path_arg (or out_path_arg, possible_path), which refuses it before the
command starts. The Python API raises BadInput with the same words.

A NUL in `compare --out` reached os.path.realpath: ValueError('embedded null byte'), a
traceback and exit code 1 (found by tests/test_hostile.py)."""

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import bnexp
from bnexp import api, cli, cli_args
from bnexp.errors import BadInput, one_line
from bnexp.safeopen import NAME_MAX, PATH_MAX, path_problem
from tests.helpers import SYNTHETIC, fake_run

ROOT = Path(__file__).resolve().parents[1]

IMPOSSIBLE = {
    "NUL": "a\x00b",
    "NUL alone": "\x00",
    "NUL in a folder": "runs/\x00/x.csv",
    "name too long": "x" * (NAME_MAX + 1),
    "name too long in a folder": "runs/" + "é" * 128 + "/x.png",  # 256 bytes, 128 characters
    "path too long": "/".join(["d" * 200] * (PATH_MAX // 200 + 1)),
}

BAD = object()  # where the impossible path goes

# every path argument and option: (command, parameter), the option as the error names it,
# a command line (the other paths real: a config, a runs folder with a run)
CASES = [
    (("train", "configs"), "CONFIG", ["train", BAD]),
    (("train", "configs"), "CONFIG", ["train", "c.yaml", BAD]),  # a second config
    (("train", "resume"), "--resume", ["train", "--resume", BAD]),
    (("train", "runs_dir"), "--runs-dir", ["train", "c.yaml", "--runs-dir", BAD]),
    (("summary", "config"), "config", ["summary", BAD]),
    (("validate", "config"), "config", ["validate", BAD]),
    (("compare", "runs_dir"), "runs_dir", ["compare", BAD]),
    (("compare", "out"), "--out", ["compare", "runs", "--out", BAD]),
    (("compare", "plot"), "--plot", ["compare", "runs", "--plot", BAD]),
    (("doctor", "path"), "path", ["doctor", BAD]),
    (("plot runs", "folder"), "folder", ["plot", "runs", BAD]),
    (("plot runs", "out"), "--out", ["plot", "runs", "runs", "--out", BAD]),
    (("plot sweep", "runs_dir"), "runs_dir", ["plot", "sweep", BAD, "--x", "name"]),
    (("plot sweep", "out"), "--out", ["plot", "sweep", "runs", "--x", "name", "--out", BAD]),
    (("plot features", "run_dir"), "run_dir", ["plot", "features", BAD]),
    (("plot features", "out"), "--out", ["plot", "features", "runs", "--out", BAD]),
    (("eval", "path"), "path", ["eval", BAD]),
    (("eval", "data"), "--data", ["eval", "runs", "--data", BAD]),
    (("report", "runs_dir"), "runs_dir", ["report", BAD]),
    (("report", "out"), "--out", ["report", "runs", "--out", BAD]),
    (("export mlflow", "runs_dir"), "runs_dir", ["export", "mlflow", BAD]),
]


def _args(args: list, value: str) -> list[str]:
    return [value if a is BAD else a for a in args]


def _parameters():
    """(command, parameter) for every parameter of every bnexp command."""
    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))
        for param in command.params:
            yield " ".join(path), param
    yield from walk(typer.main.get_command(cli.app), ())


def _is_a_path(annotation) -> bool:
    return annotation is Path or Path in getattr(annotation, "__args__", ())


def test_every_path_parameter_is_checked_and_tested_here():
    """A path argument or option added later without the check (a bare Path, which Typer
    hands over unchecked) fails here, and so does a checked one missing from CASES. (A
    path typed str, like --runs-dir, is found only through its parser.)"""
    checks = (cli_args.path_arg, cli_args.out_path_arg, cli_args.possible_path)
    paths = {(command, p.name): p.type_descriptor.parameter_info.parser
             for command, p in _parameters()
             if _is_a_path(p.type_descriptor.annotation)
             or p.type_descriptor.parameter_info.parser in checks}
    assert {key for key, parser in paths.items() if parser not in checks} == set()
    assert set(paths) == {key for key, _, _ in CASES}


@pytest.mark.parametrize("value", IMPOSSIBLE.values(), ids=IMPOSSIBLE)
@pytest.mark.parametrize(("key", "option", "args"), CASES,
                         ids=[" ".join(map(str, a)).replace(str(BAD), "BAD") for *_, a in CASES])
def test_an_impossible_path_is_one_line_naming_the_option(key, option, args, value, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(SYNTHETIC)
    fake_run(tmp_path / "runs", 0, [0.5, 0.6])
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(cli.app, _args(args, value))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert f"Invalid value for '{option}': " in lines[0]
    assert one_line(path_problem(value)) in lines[0]
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("value", ["\xff", "a\udcffb", "-", "." * 255, "d/" * 2000])
def test_a_possible_path_is_no_problem(value):
    """A byte that is not UTF-8 (a command line's surrogate escape), names of exactly
    NAME_MAX bytes and paths just under PATH_MAX are paths a file system can hold."""
    assert path_problem(value) is None


def test_a_runs_dir_of_a_byte_that_is_not_utf8_is_counted_not_a_traceback(tmp_path):
    """`train --runs-dir $'\\xff'`: counting its bytes was str.encode(), a
    UnicodeEncodeError traceback after the configs were checked."""
    from bnexp.runs.files import ensure_writable

    ensure_writable(tmp_path / "\udcff")


def _api_calls():
    """Every path parameter of the Python API: its name and a call that gives it `p`."""
    synthetic = {"data": {"dataset": "synthetic"}}
    calls = {
        "load_run": ("folder", lambda p: bnexp.load_run(p)),
        "train": ("config", lambda p: bnexp.train(p)),
        "train runs_dir": ("runs_dir", lambda p: bnexp.train(synthetic, runs_dir=p, smoke=True)),
        "doctor": ("path", lambda p: bnexp.doctor(p)),
        "plot_features": ("run_dir", lambda p: bnexp.plot_features(p)),
        "plot_sweep": ("runs_dir", lambda p: bnexp.plot_sweep(p, x="name")),
        "eval": ("path", lambda p: bnexp.eval(p)),
        "eval data": ("data", lambda p: bnexp.eval("runs", data=p)),
        "report": ("runs_dir", lambda p: bnexp.report(p)),
        "report out": ("out", lambda p: bnexp.report("runs", out=p)),
        "export_mlflow": ("runs_dir", lambda p: bnexp.export_mlflow(p)),
    }
    for name in ("load_runs", "compare", "plot_curves", "plot_gap", "plot_steps",
                 "plot_activations", "plot_drift"):
        calls[name] = ("runs_dir", lambda p, name=name: getattr(bnexp, name)(p))
    return calls


API_CALLS = _api_calls()


def test_every_path_parameter_of_the_api_is_tested_here():
    functions = [name for name in api.__all__ if inspect.isfunction(getattr(api, name))]
    paths = {(name, p) for name in functions
             for p, param in inspect.signature(getattr(api, name)).parameters.items()
             if "Path" in str(param.annotation)}
    assert paths == {(call.split()[0], param) for call, (param, _) in API_CALLS.items()}


@pytest.mark.parametrize("value", IMPOSSIBLE.values(), ids=IMPOSSIBLE)
@pytest.mark.parametrize("call", API_CALLS)
def test_the_api_raises_bad_input_with_the_clis_words(call, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    param, function = API_CALLS[call]
    with pytest.raises(BadInput) as raised:
        function(value)
    assert str(raised.value) == one_line(f"{param}: {path_problem(value)}")
    assert list(tmp_path.iterdir()) == []


def test_no_tensorflow_before_an_impossible_path_is_refused(tmp_path):
    """train, summary and plot features import TensorFlow, later: each refusal above comes
    first, in the CLI and in the API alike (a fresh process, where nothing loaded it)."""
    probe = """
import sys
import bnexp
from typer.testing import CliRunner
from bnexp.cli import app
from bnexp.errors import BadInput
from tests.test_cli_paths import API_CALLS, CASES, IMPOSSIBLE, _args
for _, _, args in CASES:
    for value in IMPOSSIBLE.values():
        assert CliRunner().invoke(app, _args(args, value)).exit_code == 2, args
for _, function in API_CALLS.values():
    try:
        function("a\\x00b")
    except BadInput:
        continue
    raise AssertionError(function)
print("heavy:", [m for m in ("tensorflow", "keras") if m in sys.modules])
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout
