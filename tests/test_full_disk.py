"""A full file system during every kind of write, on a real tmpfs of a few hundred KiB.

Each case fills the file system to leave a chosen number of bytes free, then runs a
command into it. Whatever the free space, the command ends with exit 0 (it fitted),
1 (a run failed) or 2 (nothing could be written), with at most one error line and no
traceback; a run folder, where one is left, always holds a whole summary.json; after
exit 2 no run folder is left. Mounting needs root (CAP_SYS_ADMIN): skipped otherwise.
"""

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnexp.cli import app
from tests.helpers import fake_run, fake_run_rows

pytestmark = pytest.mark.slow

CONFIG = ("name: full\nseed: 3\ndata: {dataset: synthetic, batch_size: 50, validation_size: 100,"
          " limit: 300}\nmodel: {arch: mlp, hidden: [16]}\ntrain: {epochs: 3}\n")
SIZE = 512 * 1024


@pytest.fixture
def small_fs(tmp_path):
    """A fresh tmpfs of SIZE bytes, unmounted afterwards."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()[:100]}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave: int) -> None:
    """Write a filler file so that about `leave` bytes stay free."""
    stat = os.statvfs(mount)
    free = stat.f_bavail * stat.f_frsize
    with open(mount / "filler", "wb", buffering=0) as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(0, free - leave))


def invoke(args):
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1, result.output
    if result.exit_code == 2:
        assert len(errors) == 1, result.output
    return result


# free bytes that stop the run at each of its writes: before anything, during the first
# files, the checkpoint of epoch 1 or 2, and the last summary; and enough for all of it
LEAVE = [0, 2_000, 8_000, 16_000, 24_000, 40_000, 64_000, 96_000, 200_000]


def test_train_into_a_full_file_system(small_fs, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    codes = []
    for leave in LEAVE:
        runs_dir = small_fs / f"runs{leave}"
        fill(small_fs, leave)
        result = invoke(["train", str(config), "--runs-dir", str(runs_dir)])
        codes.append(result.exit_code)
        folders = list(runs_dir.iterdir()) if runs_dir.exists() else []
        if result.exit_code == 2:
            assert folders == [], (leave, result.output)
            assert "No space left" in result.output
        for folder in folders:
            summary = json.loads((folder / "summary.json").read_text())
            assert summary["status"] in ("completed", "failed", "running"), summary
        shutil.rmtree(runs_dir, ignore_errors=True)
        (small_fs / "filler").unlink()
    print("exit codes by free bytes:", dict(zip(LEAVE, codes, strict=True)))
    assert codes[0] == 2 and codes[-1] == 0, codes  # none fits nothing, the last fits all
    assert 1 in codes, codes  # a run cut short by the disk: failed, exit 1


def test_a_run_cut_short_by_a_full_disk_resumes_once_there_is_room(small_fs, tmp_path):
    """The disk fills during training: the run exits 1 with its last whole summary; once
    space is freed, --resume finishes it."""
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.replace("epochs: 3", "epochs: 6"))
    runs_dir = small_fs / "runs"
    for leave in (40_000, 64_000, 96_000):
        fill(small_fs, leave)
        result = invoke(["train", str(config), "--runs-dir", str(runs_dir)])
        (small_fs / "filler").unlink()
        if result.exit_code == 1:
            break
        shutil.rmtree(runs_dir, ignore_errors=True)
    else:
        pytest.skip("no free-space setting stopped the run mid-way on this machine")
    (folder,) = runs_dir.iterdir()
    json.loads((folder / "summary.json").read_text())
    resumed = invoke(["train", "--resume", str(folder)])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_done"] == 6
    lines = (folder / "metrics.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [str(e) for e in range(1, 7)]


@pytest.mark.parametrize("command", ["compare", "plot"])
def test_outputs_onto_a_full_file_system_exit_2_and_leave_no_file(command, small_fs, tmp_path):
    runs_dir = tmp_path / "runs"
    for seed in (0, 1):
        fake_run(runs_dir, seed=seed, test_accs=[0.5, 0.6])
    out = small_fs / ("t.csv" if command == "compare" else "figures")
    if command == "plot":
        out.mkdir()
    fill(small_fs, 0)
    args = (["compare", str(runs_dir), "--out", str(out)] if command == "compare"
            else ["plot", "runs", str(runs_dir), "--out", str(out)])
    result = invoke(args)
    assert result.exit_code == 2, result.output
    assert "No space left" in result.output
    left = [p.name for p in small_fs.rglob("*") if p.name != "filler" and p.is_file()]
    assert left == []


@pytest.mark.parametrize("leave", [30_000, 60_000, 90_000, 120_000, 400_000])
def test_outputs_that_replace_files_leave_them_all_old_or_all_new(leave, small_fs, tmp_path):
    """plot runs replaced curves.png, then found no room for gap.png: exit 2 with the
    folder mixing new and old figures. Every new file is staged before one is renamed."""
    runs_dir = tmp_path / "runs"
    for seed in (0, 1):
        fake_run_rows(runs_dir, [{"train_loss": 1.0, "train_acc": 0.5, "test_acc": 0.6,
                                  "test_acc_batchstats": 0.4 + e / 10} for e in range(3)],
                      seed=seed)
    out = small_fs / "figures"
    out.mkdir()
    for name in ("curves.png", "gap.png"):
        (out / name).write_bytes(b"OLD")
    fill(small_fs, leave)
    result = invoke(["plot", "runs", str(runs_dir), "--out", str(out)])
    contents = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(contents) == {"curves.png", "gap.png"}  # no temp file left
    if result.exit_code == 2:
        assert set(contents.values()) == {b"OLD"}, result.output
    else:
        assert result.exit_code == 0 and b"OLD" not in contents.values()
