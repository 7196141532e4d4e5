"""A CSV of a run folder that bnexp appends to, found damaged (garbage, another file):
never trusted. metrics.csv is rebuilt from the checkpoint's rows, a diagnostics CSV
starts anew, each with the old file kept as NAME.damaged; eval.csv is refused in one line
before anything is measured; a full disk under eval leaves no empty eval.csv. No
TensorFlow: the writers themselves, on real files."""

import os

import pytest

from bnexp import runs
from bnexp.errors import BadInput
from bnexp.runs import evals
from bnexp.runs.record import EPOCH_COLUMNS
from tests.helpers import fake_run
from tests.test_full_disk import fill, small_fs  # noqa: F401 - the tmpfs fixture

ROWS = [{"epoch": e, "train_loss": 1.0 / e, "test_acc": 0.5 + e / 100} for e in (1, 2, 3)]
GARBAGE = os.urandom(3000).replace(b"\n", b"") + b"\nmore,garbage\n1,2,3\n"


def metrics_lines(path):
    return (path / "metrics.csv").read_text().splitlines()


@pytest.mark.parametrize("damage", [
    GARBAGE,
    ",".join(EPOCH_COLUMNS).encode() + b"\n7,0.1\nx,y\n",  # our header, rows not ours
    b"a,b\n1,2\n2,3\n3,4\n",  # another CSV with as many lines
])
def test_a_damaged_metrics_csv_is_rebuilt_from_the_checkpoint_and_kept_aside(tmp_path, damage):
    """Kept by line count, garbage was trusted: the resumed run ended "completed" with
    no readable metrics.csv (found by an outside catalogue)."""
    folder = fake_run(tmp_path / "runs", seed=0, test_accs=[0.5, 0.6, 0.7])
    (folder / "metrics.csv").write_bytes(damage)
    runs.repair_metrics(folder, ROWS)
    assert [r["epoch"] for r in runs.read_metrics(folder)] == [1, 2, 3]
    assert metrics_lines(folder)[0] == ",".join(EPOCH_COLUMNS)
    assert (folder / "metrics.csv.damaged").read_bytes() == damage
    assert "metrics.csv: not the metrics.csv bnexp wrote" in (folder / "train.log").read_text()


def test_a_whole_metrics_csv_of_an_older_bnexp_is_kept_as_it_is(tmp_path):
    """An older header (fewer of the last columns) with the right epochs: ours, kept."""
    folder = fake_run(tmp_path / "runs", seed=0, test_accs=[0.5])
    old = ",".join(EPOCH_COLUMNS[:10]) + "\n1,0.5,,,,,0.6,,,\n2,0.4,,,,,0.7,,,\nx"
    (folder / "metrics.csv").write_text(old)
    runs.repair_metrics(folder, ROWS[:2])
    assert metrics_lines(folder) == old.splitlines()[:3]
    assert not (folder / "metrics.csv.damaged").exists()


def test_a_diagnostics_csv_with_another_header_starts_anew_and_bad_rows_go(tmp_path):
    columns = ["step", "layer", "value"]
    (tmp_path / "x.csv").write_text("step,layer,value\n1,a,0.5\nnot,a,1\n3,a,2\n5,a,3\n")
    runs.cut_csv(tmp_path / "x.csv", lambda r: int(r["step"]) <= 3, columns)
    assert (tmp_path / "x.csv").read_text() == "step,layer,value\n1,a,0.5\n3,a,2\n"
    (tmp_path / "x.csv").write_bytes(GARBAGE)
    runs.cut_csv(tmp_path / "x.csv", lambda r: int(r["step"]) <= 3, columns)
    assert not (tmp_path / "x.csv").exists()
    assert (tmp_path / "x.csv.damaged").read_bytes() == GARBAGE


def test_eval_refuses_a_damaged_eval_csv_in_one_line_and_appends_nothing(tmp_path):
    """The row went under the garbage, where compare could never read it."""
    (tmp_path / "eval.csv").write_bytes(GARBAGE)
    row = {c: "1" for c in evals.COLUMNS}
    for call in (lambda: evals.check(tmp_path), lambda: evals.append(tmp_path, row)):
        with pytest.raises(BadInput, match=r"eval.csv: not an eval.csv bnexp wrote") as e:
            call()
        assert "\n" not in str(e.value)
    assert (tmp_path / "eval.csv").read_bytes() == GARBAGE
    (tmp_path / "eval.csv").unlink()
    evals.append(tmp_path, row)
    evals.check(tmp_path)
    evals.append(tmp_path, row)
    assert len((tmp_path / "eval.csv").read_text().splitlines()) == 3


@pytest.mark.slow
def test_eval_onto_a_full_disk_names_the_file_and_leaves_no_empty_one(small_fs):  # noqa: F811
    folder = small_fs / "run"
    folder.mkdir()
    fill(small_fs, 0)
    with pytest.raises(BadInput, match=rf"^{folder / 'eval.csv'}: cannot write \(No space"):
        evals.append(folder, {c: "1" for c in evals.COLUMNS})
    assert not (folder / "eval.csv").exists()
