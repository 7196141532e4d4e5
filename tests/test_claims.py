"""Claims (bnexp.runs.claims): no run is trained twice, by processes started together,
by a sweep started again while the first runs, or by threads of one process; a folder in
use is refused in one line. Real processes and threads, many rounds."""

import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

import bnexp
from bnexp import runs
from bnexp.runs import claims
from bnexp.runs.plan import settle
from tests.helpers import fake_run

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = ROOT / "tests" / "programs" / "claim_rounds.py"


def attempts_per_run(folder: Path) -> Counter:
    """config hash -> how many run folders trained it, over every round in folder."""
    records, warnings = runs.scan(folder)
    assert not warnings, warnings
    assert all(record.status == "completed" for record in records), \
        [(r.path.name, r.status) for r in records]
    return Counter((record.path.parent.name, record.config_hash) for record in records)


@pytest.mark.slow
def test_processes_started_together_train_each_run_once(tmp_path):
    """Two processes plan the same two-seed sweep within milliseconds of each other, six
    rounds: every run trained exactly once (before claims, most rounds trained both seeds
    twice: each process planned them as missing)."""
    names, rounds = ["a", "b"], 6
    env = {**os.environ, "BNEXP_NO_DOWNLOAD": "1", "BNEXP_THREADS_PER_JOB": "1"}
    procs = [subprocess.Popen([sys.executable, str(ROUNDS), str(tmp_path), me,
                               ",".join(n for n in names if n != me), str(rounds)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=env, cwd=tmp_path)
             for me in names]
    errors = [p.communicate(timeout=400)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    counts = attempts_per_run(tmp_path)
    assert len(counts) == 2 * rounds and set(counts.values()) == {1}, counts


@pytest.mark.tf
def test_threads_of_one_process_train_each_run_once(tmp_path):
    """Three threads call bnexp.train on one runs folder at once, three rounds: one trains
    each run, the others find it finished (training is one at a time per process)."""
    from tests.programs.claim_rounds import CONFIG  # the same sweep

    def train(folder):
        results.extend(bnexp.train(CONFIG, runs_dir=folder))

    for k in range(3):
        results: list = []
        threads = [threading.Thread(target=train, args=(tmp_path / f"round{k}",))
                   for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert sorted(run.status for run in results) == ["completed"] * 6
        assert len({run.folder for run in results}) == 2
    counts = attempts_per_run(tmp_path)
    assert len(counts) == 6 and set(counts.values()) == {1}, counts


def _hold(folder: Path) -> subprocess.Popen:
    """Another process holding run folder `folder`'s lock until killed."""
    code = ("import sys, time; from pathlib import Path; from bnexp.runs import claims\n"
            "with claims.run_folder(Path(sys.argv[1])):\n"
            "    print('held', flush=True); time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_folder_in_use_is_refused_until_its_holder_dies(tmp_path):
    """Another process's lock: Taken at once, naming the folder; SIGKILL the holder and the
    lock is free with nothing to clean up (no lock file: the folder itself is locked)."""
    folder = fake_run(tmp_path / "runs", seed=0, test_accs=[0.5])
    before = sorted(p.name for p in folder.iterdir())
    holder = _hold(folder)
    try:
        with (pytest.raises(claims.Taken, match=f"{folder}: in use by another bnexp"),
              claims.run_folder(folder)):
            pass
    finally:
        holder.kill()
        holder.wait()
    with claims.run_folder(folder):
        pass
    assert sorted(p.name for p in folder.iterdir()) == before
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [folder.name]


def test_resume_of_a_folder_in_use_is_one_line_exit_2(tmp_path):
    """`train --resume` of a folder another process holds: one line naming it, exit 2,
    before TensorFlow starts; the folder untouched."""
    folder = fake_run(tmp_path / "runs", seed=0, test_accs=[0.5], status="interrupted")
    summary = (folder / "summary.json").read_bytes()
    holder = _hold(folder)
    try:
        result = subprocess.run([str(Path(sys.executable).with_name("bnexp")), "train",
                                 "--resume", str(folder)], capture_output=True, text=True,
                                timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {folder}: in use by another bnexp process (being " \
                            "resumed or evaluated); try again once it has finished\n"
    assert (folder / "summary.json").read_bytes() == summary


@pytest.mark.tf
def test_eval_leaves_a_run_in_training_or_in_use_alone(tmp_path):
    """bnexp.eval of a run whose folder another process holds, or whose summary says it
    trains in a live process: BadInput naming the folder, and no eval.csv."""
    from tests.programs.claim_rounds import CONFIG

    (run,) = bnexp.train({**CONFIG, "sweep": {}}, runs_dir=tmp_path / "runs")
    holder = _hold(run.folder)
    try:
        with pytest.raises(bnexp.BadInput, match="in use by another bnexp process"):
            bnexp.eval(run.folder)
    finally:
        holder.kill()
        holder.wait()
    summary = runs.read_summary(run.folder)
    runs.RunFolder(run.folder).write_summary({**summary, "status": "running"})
    with pytest.raises(bnexp.BadInput, match=r"still training \(pid \d+ on "):
        bnexp.eval(run.folder)
    assert not (run.folder / "eval.csv").exists()


def test_settle_sees_what_others_did_since_the_plan(tmp_path):
    """The plan made again under the lock: a run finished meanwhile is skipped (unless
    --force); one running in a live process is skipped, even with --force beside a
    finished attempt; nothing there: start."""
    runs_dir = tmp_path / "runs"
    done = fake_run(runs_dir, seed=0, test_accs=[0.5])
    key = runs.read_summary(done)["config_hash"]
    assert settle(runs_dir, key, fresh=False) == ("skip", done, "completed")
    assert settle(runs_dir, key, fresh=True).action == "start"
    assert settle(runs_dir, "0" * 16, fresh=False).action == "start"
    live = {"config_hash": key, "pid": os.getpid(),
            "pid_started": runs.process_started(os.getpid())}
    running = fake_run(runs_dir, seed=0, test_accs=[], status="running", name="again",
                       summary=live)
    for fresh in (False, True):
        assert settle(runs_dir, key, fresh).action == "skip"
    assert settle(runs_dir, key, fresh=True) == ("skip", running, "running")
