"""The bad-input catalogue: every case exits 2 with one line naming the file and the key,
prints no traceback, creates no run folder and changes no existing file."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnexp.cli import app
from tests.helpers import fake_run, tiny_mnist, write_idx_folder

OK = "data: {dataset: synthetic, batch_size: 50, validation_size: 200}\ntrain: {epochs: 1}\n"
MNIST = "data: {dataset: mnist, path: '{ws}/FOLDER', batch_size: 8, validation_size: 10}\n"

# (id, config text, extra CLI args, fragments the one line must hold)
CASES = [
    ("malformed-yaml", "a: [1, 2\n", [], ["{cfg}", "not valid YAML", "line 2"]),
    ("empty-file", "", [], ["{cfg}", "empty"]),
    ("list-at-top", "- a\n- b\n", [], ["{cfg}", "expected a mapping", "a list"]),
    ("list-for-section", "data: [1, 2]\n", [], ["{cfg}", "data:", "dictionary"]),
    ("unknown-top-key", "sed: 1\n", [], ["{cfg}", "sed", "unknown key", "'seed'"]),
    ("unknown-data-key", "data: {batch: 32}\n", [], ["data.batch", "'batch_size'"]),
    ("unknown-model-key", "model: {activaton: relu}\n", [], ["model.activaton", "'activation'"]),
    ("unknown-bn-key", "model: {bn: {placment: after}}\n", [], ["model.bn.placment",
                                                                  "'placement'"]),
    ("unknown-optimizer-key", "optimizer: {lr: 0.1}\n", [], ["optimizer.lr", "unknown key"]),
    ("unknown-train-key", "train: {epoch: 3}\n", [], ["train.epoch", "'epochs'"]),
    ("mirrored-batch-under-replicas", "data: {batch_size: 2}\ntrain: {strategy: mirrored, "
     "replicas: 4}\n", [], ["{cfg}", "data.batch_size", "replicas (4)"]),
    # keys spelled like pydantic's union-branch names (found by Hypothesis)
    ("unknown-key-none", "none: 1\n", [], ["{cfg}", "none: unknown key"]),
    ("unknown-key-float", "train: {float: 1}\n", [], ["train.float: unknown key"]),
    ("unknown-sweep-key", "sweep: {seed: [1]}\n", [], ["sweep.seed", "'seeds'"]),
    ("string-for-int", "data: {batch_size: '64'}\n", [], ["data.batch_size", "'64'"]),
    ("float-for-int", "train: {epochs: 2.5}\n", [], ["train.epochs", "2.5"]),
    ("string-for-bool", "model: {bn: {input: 'yes'}}\n", [], ["model.bn.input", "'yes'"]),
    ("zero-batch", "data: {batch_size: 0}\n", [], ["data.batch_size", "greater than 0"]),
    ("negative-batch", "data: {batch_size: -8}\n", [], ["data.batch_size", "-8"]),
    ("zero-rate", "optimizer: {learning_rate: 0}\n", [], ["optimizer.learning_rate"]),
    ("negative-rate", "optimizer: {learning_rate: -0.1}\n", [], ["optimizer.learning_rate"]),
    ("zero-epochs", "train: {epochs: 0}\n", [], ["train.epochs", "greater than 0"]),
    ("negative-validation", "data: {validation_size: -1}\n", [], ["data.validation_size"]),
    ("momentum-one", "model: {bn: {momentum: 1.0}}\n", [], ["model.bn.momentum"]),
    ("batch-over-limit", "data: {batch_size: 256, limit: 100}\n", [], ["data:", "limit 100"]),
    ("unknown-dataset", "data: {dataset: cifar100}\n", [], ["data.dataset", "'cifar100'"]),
    ("unknown-arch", "model: {arch: vgg}\n", [], ["model.arch", "'vgg'"]),
    ("unknown-activation", "model: {activation: gelu}\n", [], ["model.activation", "'gelu'"]),
    ("unknown-optimizer", "optimizer: {name: adagrad}\n", [], ["optimizer.name", "'adagrad'"]),
    ("unknown-placement", "model: {bn: {placement: middle}}\n", [], ["model.bn.placement"]),
    ("unknown-impl", "model: {bn: {impl: torch}}\n", [], ["model.bn.impl", "'torch'"]),
    ("grid-unknown-key", "sweep: {grid: {model.bn.placment: [none]}}\n", [],
     ["sweep.grid", "'model.bn.placement'"]),
    ("grid-empty-list", "sweep: {grid: {model.bn.placement: []}}\n", [], ["sweep", "empty"]),
    ("grid-bad-value", "sweep: {grid: {model.bn.placement: [none, inside]}}\n", [],
     ["sweep.grid.model.bn.placement", "'inside'"]),
    ("name-with-slash", "name: a/b\n", [], ["{cfg}", "name", "'a/b'"]),
    ("name-dot-dot", "name: ../../etc\n", [], ["{cfg}", "name", "../../etc"]),
    ("python-tag", "name: !!python/object/apply:os.system ['touch {ws}/pwned']\n", [],
     ["{cfg}", "not valid YAML"]),
    ("set-without-equals", OK, ["--set", "model.bn.placement"], ["{cfg}", "KEY=VALUE"]),
    ("set-bad-value", OK, ["--set", "optimizer.learning_rate=fast"],
     ["{cfg}", "--set optimizer.learning_rate", "'fast'"]),
    ("set-unknown-key", OK, ["--set", "model.bn.momentun=0.5"], ["model.bn.momentun",
                                                                 "'momentum'"]),
    ("config-missing", None, ["{ws}/nope.yaml"], ["{ws}/nope.yaml", "no such file"]),
    ("config-is-folder", None, ["{ws}/data"], ["{ws}/data", "is a folder"]),
    ("data-files-missing", MNIST.replace("FOLDER", "empty"), [],
     ["{ws}/empty", "data.path", "no mnist files"]),
    ("data-truncated", MNIST.replace("FOLDER", "truncated"), [],
     ["{ws}/truncated/train-images-idx3-ubyte", "truncated"]),
    ("data-wrong-magic", MNIST.replace("FOLDER", "magic"), [],
     ["{ws}/magic/train-images-idx3-ubyte", "magic"]),
    ("batch-over-data", MNIST.replace("FOLDER", "good").replace("batch_size: 8",
                                                                       "batch_size: 64"), [],
     ["{cfg}", "data.batch_size", "64 is larger than the 30"]),
    ("model-cannot-build", OK + "model: {kernel_size: 15}\n", [], ["{cfg}", "model",
                                                                  "kernel_size"]),
    ("runs-dir-under-a-file", OK, ["--runs-dir", "{ws}/data/afile/runs"],
     ["{ws}/data/afile/runs", "--runs-dir"]),
    ("resume-not-a-run", None, ["--resume", "{ws}/data"], ["{ws}/data", "--resume",
                                                           "not a run folder"]),
]


def workspace(root: Path) -> Path:
    """Good and broken dataset folders, and a finished run that must survive every case."""
    write_idx_folder(root / "good", tiny_mnist())
    write_idx_folder(root / "truncated", tiny_mnist())
    images = root / "truncated" / "train-images-idx3-ubyte.gz"
    import gzip

    raw = gzip.decompress(images.read_bytes())
    images.write_bytes(gzip.compress(raw[:-500]))
    write_idx_folder(root / "magic", tiny_mnist(), gz=False)
    magic = root / "magic" / "train-images-idx3-ubyte"
    magic.write_bytes(b"\x00\x00\x08\x01" + magic.read_bytes()[4:])
    (root / "empty").mkdir()
    (root / "data").mkdir()
    (root / "data" / "afile").write_text("not a folder")
    fake_run(root / "runs", 0, [0.5, 0.6])
    return root


def fill_in(text: str, fill: dict) -> str:
    for key, value in fill.items():
        text = text.replace("{" + key + "}", value)
    return text


def snapshot(root: Path) -> dict:
    return {p: (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_changes_nothing(case, tmp_path):
    name, text, args, fragments = case
    ws = workspace(tmp_path)
    cfg = ws / "c.yaml"
    fill = {"ws": str(ws), "cfg": str(cfg)}
    if text is not None:
        cfg.write_text(fill_in(text, fill))
    before = snapshot(ws)
    args = [fill_in(a, fill) for a in args]
    command = ["train"] + ([] if text is None else [str(cfg)]) + args
    if "--runs-dir" not in args and "--resume" not in args:  # --resume takes no --runs-dir
        command += ["--runs-dir", str(ws / "runs")]
    result = CliRunner().invoke(app, command)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fill_in(fragment, fill) in lines[0], lines[0]
    assert snapshot(ws) == before  # no run folder, no file changed
    assert not (ws / "pwned").exists()


def test_read_only_runs_dir_exits_2(tmp_path):
    """chmod 555 stops a normal user; root writes through it, so for root the folder is
    made immutable (chattr +i) for the duration of the test."""
    import shutil
    import subprocess

    (tmp_path / "c.yaml").write_text(OK)
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir(mode=0o555)
    immutable = os.geteuid() == 0
    if immutable:
        done = shutil.which("chattr") and subprocess.run(["chattr", "+i", str(runs_dir)],
                                                         capture_output=True).returncode == 0
        if not done:
            pytest.skip("running as root without chattr: cannot make a folder read-only")
    try:
        result = CliRunner().invoke(app, ["train", str(tmp_path / "c.yaml"), "--runs-dir",
                                          str(runs_dir)])
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(runs_dir)], check=True)
    assert result.exit_code == 2, result.output
    assert "--runs-dir" in result.output and "cannot write" in result.output
    assert list(runs_dir.iterdir()) == []


@pytest.mark.slow  # over ~2 s: out of the fast loop
@pytest.mark.tf
def test_a_missing_mnist_that_cannot_be_downloaded_exits_2_quietly(tmp_path):
    """No MNIST anywhere and no way to download it (a proxy nobody answers): one note
    and one error line on stderr, no TensorFlow start-up lines, nothing on stdout, and
    no ~/.keras left behind in a home that had none."""
    import subprocess
    import sys

    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "c.yaml").write_text("data: {dataset: mnist}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("BNEXP_NO_DOWNLOAD", "KERAS_HOME",
                                                              "BNEXP_DATA_DIR")}
    env.update(HOME=str(home), HTTPS_PROXY="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    bnexp = Path(sys.executable).parent / "bnexp"
    out = subprocess.run([str(bnexp), "train", str(tmp_path / "c.yaml"), "--runs-dir",
                          str(tmp_path / "runs")], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2 and "keras.datasets" in lines[0], lines
    assert lines[1].startswith(f"error: {tmp_path / 'c.yaml'}: data.dataset: no mnist files")
    assert not (home / ".keras").exists()
    assert not (tmp_path / "runs").exists()
