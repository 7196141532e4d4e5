"""Sweeps: parallel worker processes, skipping finished runs on a re-run, --force."""

import pytest

from bnexp import config, runs, sweep
from bnexp.backends.pool import threads_per_job, usable_cores
from bnexp.errors import BadInput
from tests.helpers import SYNTHETIC, Quiet

SWEEP = SYNTHETIC.replace("epochs: 2", "epochs: 1\n  jit_compile: false") + (
    "sweep:\n  grid:\n    model.bn.placement: [none, before, after]\n  seeds: [0, 1]\n")


@pytest.mark.slow
def test_two_jobs_run_every_cell_and_a_rerun_skips_finished_ones(write_config, tmp_path):
    specs = config.load(write_config(SWEEP))
    runs_dir = tmp_path / "runs"
    first = sweep.run_all(specs, runs_dir, Quiet(), jobs=2)
    assert [o.status for o in first] == ["completed"] * 6
    assert len({o.path for o in first}) == 6 and not any(o.skipped for o in first)
    hashes = {runs.read_summary(o.path)["config_hash"] for o in first}
    assert hashes == {config.config_hash(s.config) for s in specs}
    # a failed run is redone on the re-run; finished ones are skipped
    broken = first[3].path
    summary = runs.read_summary(broken)
    runs.RunFolder(broken).write_summary({**summary, "status": "failed"})
    again = sweep.run_all(specs, runs_dir, Quiet(), jobs=2)
    assert sum(o.skipped for o in again) == 5
    (redone,) = [o for o in again if not o.skipped]
    assert redone.status == "completed" and redone.path != broken
    assert len(list(runs_dir.iterdir())) == 7
    forced = sweep.run_all(specs[:2], runs_dir, Quiet(), jobs=1, force=True)
    assert not any(o.skipped for o in forced) and len(list(runs_dir.iterdir())) == 9


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_worker_that_dies_while_checking_is_one_line_not_a_hang(write_config, tmp_path,
                                                                  monkeypatch):
    """TensorFlow ends its process on a flag it does not know in TF_XLA_FLAGS; the parent
    waited for the dead worker's answer for ever while the other worker idled. Nothing
    is written."""
    monkeypatch.setenv("TF_XLA_FLAGS", "--bogus_flag_for_a_test=1")
    specs = config.load(write_config(SWEEP))
    with pytest.raises(BadInput, match=r"^a worker process died \(exit code 1\) before any "
                                       r"run started; TensorFlow's own message"):
        sweep.run_all(specs, tmp_path / "runs", Quiet(), jobs=2)
    assert not (tmp_path / "runs").exists()


def test_threads_split_the_cores():
    assert threads_per_job(1) == usable_cores()
    assert threads_per_job(usable_cores()) == 1 and threads_per_job(64) == 1


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5", "²", "1e3", "1025", "9" * 400])
def test_a_thread_count_in_the_environment_is_checked(monkeypatch, value):
    monkeypatch.setenv("BNEXP_THREADS_PER_JOB", value)
    with pytest.raises(BadInput) as e:
        threads_per_job(2)
    assert str(e.value).startswith("BNEXP_THREADS_PER_JOB=")
    assert str(e.value).endswith(": expected a whole number of threads from 1 to 1024")
    monkeypatch.setenv("BNEXP_THREADS_PER_JOB", " 3 ")
    assert threads_per_job(2) == 3
