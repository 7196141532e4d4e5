"""Reading run folders back, rule by rule: the status that counts (a dead or reused pid),
best/final rows, summary.json types and sizes, torn lines, metrics and diagnostics CSVs,
config.yaml, foreign folders and the latest-attempt rule."""

import json
import math
import os
import re
import shutil
import socket
from pathlib import Path

import pandas  # noqa: F401  (imported once here, not inside a timed test)
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnexp import runs, safeopen
from bnexp.runs import csvread, reader, record, search
from bnexp.runs.record import EPOCH_COLUMNS, RunRecord
from tests.helpers import fake_run

HERE = socket.gethostname()
ME = os.getpid()
GONE = 2**22 + 7  # above Linux's largest pid_max: never a process
NAN = math.nan


def own_start() -> int:
    """Field 22 (starttime) of /proc/self/stat, parsed here independently of bnexp."""
    text = Path(f"/proc/{ME}/stat").read_text()
    after_comm = re.fullmatch(r"\d+ \(.*\) (.*)", text.strip(), re.S).group(1)
    return int(after_comm.split(" ")[19])


@pytest.fixture(autouse=True)
def only_signal_zero(monkeypatch):
    """A liveness probe may only ever send signal 0 (it must not disturb the process)."""
    real_kill = os.kill

    def kill(pid, sig):
        assert sig == 0, f"sent signal {sig!r} to {pid!r}"
        return real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", kill)


def fake_kill(monkeypatch, error=None):
    """os.kill replaced by one that answers for every pid: succeeds, or raises `error`."""
    calls = []

    def kill(pid, sig):
        calls.append((pid, sig))
        if error is not None:
            raise error
    monkeypatch.setattr(os, "kill", kill)
    return calls


# ---------------------------------------------------------------- effective_status


def test_effective_status_table():
    start = own_start()
    cases = [
        ({}, "unknown"),
        ({"status": 3}, "unknown"),
        ({"status": None}, "unknown"),
        ({"status": ["running"]}, "unknown"),
        ({"status": "completed", "host": "elsewhere", "pid": None}, "completed"),
        ({"status": "completed", "host": HERE, "pid": GONE}, "completed"),
        ({"status": "diverged", "host": HERE, "pid": GONE}, "diverged"),
        ({"status": "failed"}, "failed"),
        ({"status": "running", "host": "elsewhere", "pid": GONE}, "running"),
        ({"status": "running", "pid": GONE}, "running"),  # no host: cannot tell
        ({"status": "running", "host": HERE, "pid": ME}, "running"),
        ({"status": "running", "host": HERE, "pid": ME, "pid_started": start}, "running"),
        ({"status": "running", "host": HERE, "pid": ME, "pid_started": "x"}, "running"),
        ({"status": "running", "host": HERE, "pid": ME, "pid_started": start + 1},
         "interrupted"),  # the pid now belongs to another process: the run died
        ({"status": "running", "host": HERE, "pid": GONE}, "interrupted"),
        ({"status": "running", "host": HERE}, "interrupted"),
        ({"status": "running", "host": HERE, "pid": "123"}, "interrupted"),
    ]
    got = [(summary, record.effective_status(summary)) for summary, _ in cases]
    assert got == cases


def test_read_record_status_is_the_effective_one(tmp_path):
    runs.RunFolder(tmp_path).write_summary({"status": "running", "host": HERE, "pid": ME,
                                           "pid_started": own_start() + 5})
    assert runs.read_record(tmp_path).status == "interrupted"
    runs.RunFolder(tmp_path).write_summary({"status": "running", "host": HERE, "pid": ME,
                                           "pid_started": own_start()})
    assert runs.read_record(tmp_path).status == "running"


# ---------------------------------------------------------------- _process_alive


def test_process_alive_never_probes_an_impossible_pid(monkeypatch):
    calls = fake_kill(monkeypatch)  # every probe would say "alive"
    pids = [0, -1, 2**22, 2**22 + 7, 3**22, True, False, "12", None, 1.0]
    assert [record._process_alive(p) for p in pids] == [False] * len(pids)
    assert calls == []
    assert [record._process_alive(p) for p in (1, 45, 2**22 - 1)] == [True, True, True]
    assert calls == [(1, 0), (45, 0), (2**22 - 1, 0)]


def test_process_alive_no_such_process(monkeypatch):
    fake_kill(monkeypatch, ProcessLookupError(3, "No such process"))
    assert record._process_alive(ME) is False
    assert record._process_alive(ME, own_start()) is False


@pytest.mark.parametrize("error", [PermissionError(1, "Operation not permitted"),
                                   OverflowError("too big")])
def test_process_alive_when_the_probe_is_refused_start_time_decides(monkeypatch, error):
    fake_kill(monkeypatch, error)
    start = own_start()
    got = {started: record._process_alive(ME, started)
           for started in (None, "x", start, start + 1, start - 1)}
    assert got == {None: True, "x": True, start: True, start + 1: False, start - 1: False}
    # a process whose start cannot be read is taken as alive
    assert record._process_alive(2**22 - 1, 5) is True


def test_process_alive_real_process_and_pid_reuse():
    start = own_start()
    got = {started: record._process_alive(ME, started)
           for started in (None, "x", 1.5, start, start + 1, start - 1)}
    assert got == {None: True, "x": True, 1.5: True, start: True, start + 1: False,
                   start - 1: False}


# ---------------------------------------------------------------- process_started


def test_process_started_reads_field_22_of_proc_stat():
    assert record.process_started(ME) == own_start()
    assert record.process_started(str(ME)) == own_start()
    for pid in (GONE, -1, "abc", "", math.inf, 2**70):
        assert record.process_started(pid) is None


def test_process_started_parses_a_name_with_parentheses_and_spaces(monkeypatch):
    fields = " ".join(str(i) for i in range(1, 19))
    stat = f"4242 (a) b) c) S {fields} 987654 555 666\n"  # starttime 987654, vsize 555

    class FakePath:
        def __init__(self, path):
            self.path = path

        def read_text(self):
            if self.path != "/proc/4242/stat":
                raise FileNotFoundError(2, "No such file", str(self.path))
            return stat

    monkeypatch.setattr(record, "Path", FakePath)
    assert record.process_started(4242) == 987654
    assert record.process_started(4243) is None


# ---------------------------------------------------------------- best_of, final_of


def test_best_of_exact_with_ties_gaps_and_nan():
    """summary.json's best: the epoch of the best finite validation value (the first of
    equals), every metric at it, and how it was chosen; none without validation."""
    rows = [
        {"epoch": 1, "train_loss": 0.9, "test_acc": 0.5, "val_acc": math.nan, "val_loss": 4.0},
        {"epoch": 2, "train_loss": 0.4, "test_acc": 0.9, "val_acc": None, "val_loss": None},
        {"epoch": 3, "train_loss": 0.4, "test_acc": 0.7, "val_acc": 0.6, "val_loss": math.inf},
        {"epoch": 4, "train_loss": 0.5, "test_acc": 0.6, "val_acc": 0.8, "val_loss": 2.0},
        {"epoch": 5, "train_loss": math.nan, "test_acc": 0.7, "val_acc": 0.8, "val_loss": 2.0},
    ]
    at_4 = {**{k: None for k in EPOCH_COLUMNS if k != "epoch"}, **rows[3]}
    del at_4["epoch"]
    assert runs.best_of(rows) == {"selected_by": "val_acc", "epoch": 4, **at_4}
    assert runs.best_of(rows, "val_loss") == {"selected_by": "val_loss", "epoch": 4, **at_4}
    assert runs.best_of(rows[:2]) == {"selected_by": None}  # no finite val_acc
    assert runs.best_of([]) == {"selected_by": None}
    assert runs.selected_row(rows, "val_acc") is rows[3]
    assert [runs.selector_for(m) for m in ("test_acc", "train_loss", "test_acc_batchstats",
                                           "seconds", "val_acc")] == [
        "val_acc", "val_loss", "val_acc", "val_loss", "val_acc"]


def test_final_of_holds_every_column_but_epoch():
    row = {"epoch": 7, "train_loss": 0.25, "test_acc": 0.875, "other": 1}
    expected = {k: None for k in EPOCH_COLUMNS if k != "epoch"}
    expected.update(train_loss=0.25, test_acc=0.875)
    assert runs.final_of(row) == expected
    assert "epoch" not in runs.final_of(row) and len(runs.final_of(row)) == 12


# ---------------------------------------------------------------- summary.json


def write_summary(folder: Path, summary) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_read_summary_too_deep_json_is_a_value_error(tmp_path):
    (tmp_path / "summary.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="^nested too deeply$"):
        runs.read_summary(tmp_path)
    with pytest.raises(ValueError, match=r"^unreadable summary.json \(ValueError\)$"):
        runs.read_record(tmp_path)


def test_read_record_says_why_a_folder_is_not_a_run(tmp_path):
    cases = {
        "missing": (None, "unreadable summary.json (FileNotFoundError)"),
        "badjson": ("{ not json", "unreadable summary.json (JSONDecodeError)"),
        "list": ('["a"]', "summary.json is not a bnexp summary"),
        "nostatus": ('{"seed": 1}', "summary.json is not a bnexp summary"),
        "intstatus": ('{"status": 1}', "summary.json is not a bnexp summary"),
    }
    for name, (text, why) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        if text is not None:
            (folder / "summary.json").write_text(text)
        with pytest.raises(ValueError) as e:
            runs.read_record(folder)
        assert str(e.value) == why, name
    (tmp_path / "dir" / "summary.json").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"^unreadable summary.json \(not a regular file\)$"):
        runs.read_record(tmp_path / "dir")


def test_summary_fields_of_the_wrong_type_read_as_absent(tmp_path):
    wrong = {"final": "x", "best": [1], "data": 3, "config": "c", "started": 5,
             "config_hash": 7, "epochs_done": "3", "seed": "1", "notes": "n"}
    also_wrong = {"final": None, "best": 0.5, "data": [], "config": ["a"], "started": None,
                  "config_hash": True, "epochs_done": True, "seed": False, "notes": {}}
    still_wrong = {"epochs_done": 2.5, "seed": 1.0, "config_hash": None, "started": True}
    right = {"final": {"test_acc": 0.5}, "best": {}, "data": {"train": 10}, "config": {},
             "started": "2026-01-01T00:00:00", "config_hash": "h", "epochs_done": 3,
             "seed": 0, "notes": ["resumed"]}
    wrong = {**wrong, "pid": "1", "host": 5, "resumed": "yes", "wall_seconds": "12s"}
    also_wrong = {**also_wrong, "pid": True, "host": None, "resumed": {}, "wall_seconds": True}
    other = {"status": "completed", "extra": "kept", "pid": 7, "wall_seconds": 1}
    for i, fields in enumerate((wrong, also_wrong, still_wrong)):
        folder = write_summary(tmp_path / f"w{i}", {**other, **fields})
        expected = {k: v for k, v in other.items() if k not in fields}
        assert runs.read_record(folder).summary == expected, fields
    folder = write_summary(tmp_path / "right", {**other, **right})
    assert runs.read_record(folder).summary == {**other, **right}


# ---------------------------------------------------------------- _read_bounded


def test_a_field_of_another_type_reads_as_absent_whatever_the_field(tmp_path):
    """The class behind `--resume` crashing on a hand-edited summary ("resumed": "yes",
    "wall_seconds": "12s"); that every field a run writes is here: test_resume.py."""
    for key, kind in reader.SUMMARY_KINDS.items():
        for value in ("x", 1.5, ["x"], {"x": 1}, True):
            if isinstance(value, kind) and not isinstance(value, bool):
                continue
            folder = write_summary(tmp_path / "w", {"status": "completed", key: value})
            assert runs.read_record(folder).summary == {"status": "completed"}, (key, value)


def test_read_bounded_limit_message_and_undecodable_bytes(tmp_path):
    file = tmp_path / "f.txt"
    file.write_bytes(b"x" * 1500)
    assert reader.read_text(file, 1500) == "x" * 1500
    assert reader.read_text(file, 1501) == "x" * 1500
    with pytest.raises(ValueError) as e:
        reader.read_text(file, 1499)
    assert str(e.value) == "f.txt is larger than 1,499 bytes"
    file.write_bytes(b"ok\xff\xfe!\xc3\xa9")
    assert reader.read_text(file, 100) == "ok\ufffd\ufffd!\u00e9"
    file.write_bytes(b"")
    assert reader.read_text(file, 0) == ""


def test_read_bounded_never_reads_more_than_it_needs_from_an_endless_file():
    """/dev/zero never ends: read whole, it would fill the memory."""
    with pytest.raises(safeopen.TooLarge, match="zero is larger than 1,000 bytes"):
        safeopen.read_bounded(Path("/dev/zero"), 1000)
    with pytest.raises(OSError, match="not a regular file"):  # a run folder's file
        safeopen.read_bounded(Path("/dev/zero"), 1000, regular=True)


def test_summary_size_limit_is_exact(tmp_path):
    head = '{"status": "completed", "notes": ["'
    pad = reader.MAX_SUMMARY_BYTES - len(head) - len('"]}')
    (tmp_path / "summary.json").write_text(head + "a" * pad + '"]}')
    assert runs.read_record(tmp_path).summary["notes"] == ["a" * pad]
    (tmp_path / "summary.json").write_text(head + "a" * (pad + 1) + '"]}')
    with pytest.raises(ValueError, match=r"^unreadable summary.json \(TooLarge\)$"):
        runs.read_record(tmp_path)


# ---------------------------------------------------------------- read_record's config


def test_read_record_config_only_when_asked_and_summary_first(tmp_path):
    both = write_summary(tmp_path / "both", {"status": "completed",
                                             "config": {"name": "from-summary"}})
    (both / "config.yaml").write_text("name: from-yaml\n")
    assert runs.read_record(both).config is None
    assert runs.read_record(both, with_config=False).config is None
    assert runs.read_record(both, with_config=True).config == {"name": "from-summary"}

    yaml_only = write_summary(tmp_path / "yaml_only", {"status": "completed"})
    (yaml_only / "config.yaml").write_text("name: from-yaml\nseed: 3\nmodel:\n  depth: 2\n")
    expected = {"name": "from-yaml", "seed": 3, "model": {"depth": 2}}
    assert runs.read_record(yaml_only, with_config=True).config == expected
    assert runs.read_record(yaml_only).config is None

    typo = write_summary(tmp_path / "typo", {"status": "completed", "config": "name: x"})
    (typo / "config.yaml").write_text("name: from-yaml\n")
    assert runs.read_record(typo, with_config=True).config == {"name": "from-yaml"}


def test_read_record_config_yaml_problems(tmp_path):
    cases = {
        "missing": (None, "no readable config in summary.json or config.yaml"),
        "broken": ("name: [", "no readable config in summary.json or config.yaml"),
        "list": ("- a\n- b\n", "config.yaml is not a mapping"),
        "empty": ("", "config.yaml is not a mapping"),
        "scalar": ("just text\n", "config.yaml is not a mapping"),
    }
    for name, (text, why) in cases.items():
        folder = write_summary(tmp_path / name, {"status": "completed"})
        if text is not None:
            (folder / "config.yaml").write_text(text)
        assert runs.read_record(folder).config is None  # not asked: no problem
        with pytest.raises(ValueError) as e:
            runs.read_record(folder, with_config=True)
        assert str(e.value) == why, name


# ---------------------------------------------------------------- torn lines


def test_torn_table(tmp_path):
    cases = {b"": False, b"x": True, b"\n": False, b"a,b\n": False, b"a,b\n1": True,
             b"a,b\n1,2\n": False, b"a,b\n1,2\r": True}
    for i, (content, expected) in enumerate(cases.items()):
        folder = tmp_path / f"r{i}"
        folder.mkdir()
        (folder / "metrics.csv").write_bytes(content)
        assert runs.torn_metrics(folder) is expected, content
        assert csvread.torn(folder / "metrics.csv") is expected, content
    assert runs.torn_metrics(tmp_path / "nothing") is False  # no file: nothing torn
    assert csvread.torn(tmp_path) is False  # a folder cannot be read: not torn


# ---------------------------------------------------------------- read_metrics


def same(a, b) -> bool:
    """Equality of row lists where NaN equals NaN and ints stay ints."""
    def norm(v):
        return ("nan",) if isinstance(v, float) and math.isnan(v) else (type(v), v)
    return [{k: norm(v) for k, v in r.items()} for r in a] == \
        [{k: norm(v) for k, v in r.items()} for r in b]


def test_read_metrics_rules(tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "epoch,train_loss,test_acc\n"
        "1,0.5,0.9\n"
        "x,1,1\n"  # not a number: not a row
        "2.5,1,1\n"  # not a whole number: not a row
        ",1,1\n"  # blank epoch
        "inf,1,1\n"
        "nan,1,1\n"
        "3.0,inf,\n"  # epoch 3.0 is epoch 3; inf and blank cells are NaN
        "4,-inf,abc\n"
        "5\n"  # a short row: missing cells are NaN
        "6,0.25,0.75,99\n"  # an extra cell has no column: dropped
        "7,1e-3,1"  # torn: not a row
    )
    nan = math.nan
    expected = [
        {"epoch": 1, "train_loss": 0.5, "test_acc": 0.9},
        {"epoch": 3, "train_loss": nan, "test_acc": nan},
        {"epoch": 4, "train_loss": nan, "test_acc": nan},
        {"epoch": 5, "train_loss": nan, "test_acc": nan},
        {"epoch": 6, "train_loss": 0.25, "test_acc": 0.75},
    ]
    got = runs.read_metrics(tmp_path)
    assert same(got, expected), got
    assert all(type(r["epoch"]) is int for r in got)


def test_read_metrics_of_a_real_run_round_trips(tmp_path):
    folder = runs.RunFolder(tmp_path)
    folder.start_metrics()
    folder.append_metrics({"epoch": 1, "train_loss": 0.5, "test_acc": 0.25})
    got = runs.read_metrics(tmp_path)
    expected = {k: math.nan for k in EPOCH_COLUMNS}
    expected.update(epoch=1, train_loss=0.5, test_acc=0.25)
    assert same(got, [expected])


# ---------------------------------------------------------------- read_table


def test_read_table_keeps_unit_as_text_and_drops_a_torn_line(tmp_path):
    (tmp_path / "activations.csv").write_text(
        "step,layer,unit,p15,p50,p85\n1,dense_1,0,0,0.5,1\n1,dense_1,1,0,0.25,1\n"
        "2,dense_1,1,0,0.1,1")
    t = runs.read_table(tmp_path, "activations.csv")
    assert list(t.columns) == ["step", "layer", "unit", "p15", "p50", "p85"]
    assert list(t["unit"]) == ["0", "1"]
    assert list(t["step"]) == [1, 1] and list(t["p50"]) == [0.5, 0.25]


def test_read_table_of_a_diagnostics_file_lacking_its_columns_is_empty(tmp_path):
    """A file that is not what its name says (hand-made, NULs, another header) gives an
    empty table, never a KeyError in a reader; an unreadable number is NaN."""
    (tmp_path / "activations.csv").write_text("step,layer,unit,p50\n1,dense_1,0,0.5\n")
    assert runs.read_table(tmp_path, "activations.csv").empty
    (tmp_path / "drift.csv").write_text("\x00\n\x00\n")
    assert runs.read_table(tmp_path, "drift.csv").empty
    (tmp_path / "drift.csv").write_text("epoch,layer,mean_error,variance_error\n1,bn,x,0.5\n")
    frame = runs.read_table(tmp_path, "drift.csv")
    assert math.isnan(frame["mean_error"][0]) and frame["variance_error"][0] == 0.5
    (tmp_path / "mixed.csv").write_text("unit,v\n3,1\nall,2\n")
    assert list(runs.read_table(tmp_path, "mixed.csv")["unit"]) == ["3", "all"]


def test_read_table_empty_cases(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "torn_only.csv").write_text("step,unit")
    (tmp_path / "header.csv").write_text("step,unit\n")
    for name in ("absent.csv", "empty.csv", "torn_only.csv"):
        t = runs.read_table(tmp_path, name)
        assert t.empty and list(t.columns) == [], name
    header = runs.read_table(tmp_path, "header.csv")
    assert header.empty and list(header.columns) == ["step", "unit"]
    (tmp_path / "activations.csv").write_text("step,unit,x\n1,all,2\n")  # no layer, p15 ...
    foreign = runs.read_table(tmp_path, "activations.csv")
    assert (len(foreign), list(foreign.columns)) == (0, [])


# ---------------------------------------------------------------- scan, latest


def test_scan_warns_of_a_torn_metrics_file(tmp_path):
    torn_run = write_summary(tmp_path / "a", {"status": "failed"})
    (torn_run / "metrics.csv").write_text("epoch,test_acc\n1,0.5\n2,0.")
    whole = write_summary(tmp_path / "b", {"status": "completed"})
    (whole / "metrics.csv").write_text("epoch,test_acc\n1,0.5\n")
    write_summary(tmp_path / "c", {"status": "completed"})  # no metrics.csv: nothing torn
    finished = write_summary(tmp_path / "d", {"status": "diverged"})  # its summary came last
    (finished / "metrics.csv").write_text("epoch,test_acc\n1,0.")
    records, warnings = runs.scan(tmp_path)
    assert [r.path for r in records] == [torn_run, whole, tmp_path / "c", finished]
    assert warnings == [f"{torn_run}: metrics.csv ends in a torn line (a kill mid-write); "
                        "that line is ignored"]


def test_scan_lists_runs_in_path_order_and_passes_on_what_it_read_as_absent(tmp_path):
    """Folders sorted part by part, as Path objects sort ("a/x" before "a-b/x", which text
    order reverses: "-" < "/"); a value a run cannot hold is named in the warnings."""
    later = write_summary(tmp_path / "a-b" / "x", {"status": "completed"})
    first = write_summary(tmp_path / "a" / "x", {"status": "completed", "epochs_done": "3"})
    records, warnings = runs.scan(tmp_path)
    assert [r.path for r in records] == [first, later] == sorted([later, first])
    assert warnings == [f"{first}: read as absent (not a value a run holds: a number out of "
                        "range, a date, a wrong type): summary.json epochs_done"]


def test_scan_latest_keeps_the_attempt_that_counts(tmp_path):
    def attempt(name, status, started, config_hash="h"):
        summary = {"status": status, "started": started, "config": {"name": name}}
        if config_hash:
            summary["config_hash"] = config_hash
        return write_summary(tmp_path / name, summary)

    attempt("a", "failed", "2026-01-01T00:00:01")
    b = attempt("b", "completed", "2026-01-01T00:00:00")
    attempt("c", "failed", "2026-01-01T00:00:09")
    d = attempt("d", "completed", "2026-01-01T00:00:00", config_hash="other")
    e = attempt("e", "failed", "", config_hash=None)
    f = attempt("f", "failed", "", config_hash=None)
    kept, warnings = runs.scan_latest(tmp_path)
    assert [r.path for r in kept] == [b, d, e, f]
    assert all(r.config is None for r in kept)
    assert warnings == ["ignored 2 earlier attempt(s) of configs that ran again"]
    kept, _ = runs.scan_latest(tmp_path, with_config=True)
    assert [r.config for r in kept] == [{"name": n} for n in "bdef"]


def test_scan_latest_without_reruns_warns_nothing(tmp_path):
    write_summary(tmp_path / "a", {"status": "completed", "config_hash": "1"})
    write_summary(tmp_path / "b", {"status": "completed", "config_hash": "2"})
    kept, warnings = runs.scan_latest(tmp_path)
    assert len(kept) == 2 and warnings == []


def rec(name, status, started="", config_hash=None):
    summary = {"status": status, "started": started}
    if config_hash:
        summary["config_hash"] = config_hash
    return RunRecord(Path("/runs") / name, summary, status)


def test_latest_rule_table():
    first, second = rec("a", "completed", "t1", "h"), rec("b", "completed", "t1", "h")
    assert runs.latest([first, second]) == {"h": first}  # a tie keeps the first seen
    assert runs.latest([second, first]) == {"h": second}
    old_done, new_failed = rec("c", "diverged", "t1", "h"), rec("d", "failed", "t9", "h")
    assert runs.latest([old_done, new_failed]) == {"h": old_done}
    assert runs.latest([new_failed, old_done]) == {"h": old_done}
    late = rec("e", "completed", "t2", "h")
    assert runs.latest([old_done, late, first]) == {"h": late}
    x, y = rec("x", "completed"), rec("y", "completed")
    assert runs.latest([x, y]) == {"/runs/x": x, "/runs/y": y}  # no hash: each stands alone


def test_latest_attempts_of_a_missing_folder_is_empty(tmp_path):
    assert runs.latest_attempts(tmp_path / "nope") == {}
    (tmp_path / "file").write_text("")
    assert runs.latest_attempts(tmp_path / "file") == {}


# ---------------------------------------------------------------- foreign folders


def test_foreign_folders_are_warned_once_each(tmp_path):
    run = write_summary(tmp_path / "group" / "run1", {"status": "completed"})
    (tmp_path / "group" / "README.txt").write_text("a folder above a run")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "ckpt.bin").write_bytes(b"\0")
    (tmp_path / ".trash" / "old").mkdir(parents=True)
    (tmp_path / ".trash" / "old" / "config.yaml").write_text("name: x\n")
    (tmp_path / ".trash" / "loose.txt").write_text("x")
    (tmp_path / "loose.txt").write_text("beside the runs")
    (tmp_path / "m_partial").mkdir()
    (tmp_path / "m_partial" / "metrics.csv").write_text("epoch\n")
    (tmp_path / "c_partial").mkdir()
    (tmp_path / "c_partial" / "config.yaml").write_text("name: x\n")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("hello")
    (tmp_path / "notes" / "sub").mkdir()
    (tmp_path / "notes" / "sub" / "metrics.csv").write_text("epoch\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "starting").mkdir()
    (tmp_path / "starting" / ".summary.json.k2j4.json").write_text("{")
    records, warnings = runs.scan(tmp_path)
    assert [r.path for r in records] == [run]
    assert warnings == [
        f"skipped {tmp_path / 'c_partial'}: a partial run folder (no summary.json)",
        f"skipped {tmp_path / 'm_partial'}: a partial run folder (no summary.json)",
        f"skipped {tmp_path / 'notes'}: not a bnexp run folder",
        f"skipped {tmp_path / 'notes' / 'sub'}: a partial run folder (no summary.json)",
    ]


def test_a_folder_with_loose_files_and_no_runs_warns_nothing(tmp_path):
    (tmp_path / "loose.txt").write_text("x")
    (tmp_path / "config.yaml").write_text("name: x\n")
    assert runs.scan(tmp_path) == ([], [])


def test_foreign_folders_skip_a_run_that_appeared_after_the_listing(tmp_path):
    (tmp_path / "a_new_run").mkdir()
    (tmp_path / "a_new_run" / "summary.json").write_text("{}")
    (tmp_path / "a_new_run" / "config.yaml").write_text("name: x\n")
    (tmp_path / "b_notes").mkdir()
    (tmp_path / "b_notes" / "todo.txt").write_text("x")
    folders = [str(tmp_path / "a_new_run"), str(tmp_path / "b_notes")]  # listed before
    assert search._foreign_folders(tmp_path, set(), folders) == [
        f"skipped {tmp_path / 'b_notes'}: not a bnexp run folder"]


def test_a_link_to_a_folder_is_never_entered_and_named_in_a_warning(tmp_path):
    """As Path.rglob, a link to a folder is not gone into (a run could count twice), but
    it is named: runs behind it were left out without a word."""
    run = write_summary(tmp_path / "elsewhere" / "run1", {"status": "completed"})
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    (runs_dir / "linked_run").symlink_to(run)
    (runs_dir / "linked_runs").symlink_to(tmp_path / "elsewhere")
    (runs_dir / "linked_notes").symlink_to(tmp_path / "notes")
    (runs_dir / ".hidden_link").symlink_to(run)
    why = ("a link to a folder, not followed (a run could count twice); give its target "
           "to read its runs")
    assert runs.scan(runs_dir) == ([], [f"skipped {runs_dir / name}: {why}"
                                        for name in ("linked_notes", "linked_run", "linked_runs")])


def test_read_table_keeps_a_unit_number_as_written_beside_a_blank_one(tmp_path):
    (tmp_path / "activations.csv").write_text(
        "step,layer,unit,p15,p50,p85\n1,dense_1,3,0,0.5,1\n1,dense_1,,0,0.5,1\n")
    assert list(runs.read_table(tmp_path, "activations.csv")["unit"])[0] == "3"
    (tmp_path / "other.csv").write_text("unit,v\n3,1\n")  # any file: unit stays text
    assert list(runs.read_table(tmp_path, "other.csv")["unit"]) == ["3"]


def test_a_folder_named_summary_json_makes_its_parent_an_unreadable_run(tmp_path):
    (tmp_path / "odd" / "summary.json").mkdir(parents=True)
    records, warnings = runs.scan(tmp_path)
    assert records == [] and warnings == [
        f"skipped {tmp_path / 'odd'}: unreadable summary.json (not a regular file)"]


def test_folders_deep_inside_a_run_folder_are_part_of_it(tmp_path):
    run = write_summary(tmp_path / "run1", {"status": "completed"})
    (run / "tensorboard" / "train").mkdir(parents=True)
    (run / "tensorboard" / "train" / "events.out").write_bytes(b"\0")
    records, warnings = runs.scan(tmp_path)
    assert [r.path for r in records] == [run] and warnings == []


# ---------------------------------------------------------------- values no run holds


def plain(value) -> bool:
    """Whether a value read back is one compare, plot and doctor can use: text any output
    encodes, whole numbers of at most 64 bits, finite floats of at most 1e100 in size,
    true, false, null, and lists and mappings (text keys) of them."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, str):
        return value.encode("utf-8") is not None
    if isinstance(value, int):
        return value.bit_length() <= 64
    if isinstance(value, float):
        return math.isfinite(value) and abs(value) <= 1e100
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return isinstance(value, dict) and all(isinstance(k, str) and plain(k) and plain(v)
                                           for k, v in value.items())


def test_undecodable_bytes_limits_and_damage_inside_lists(tmp_path):
    """Bytes that are not UTF-8 read as U+FFFD (not a skipped run); 1e100 itself is a
    number a run holds; a damaged value in a mapping inside a list is named by its path."""
    (tmp_path / "summary.json").write_bytes(
        b'{"status": "completed", "run_id": "a\xffb", "final": {"test_acc": 1e100},'
        b' "notes": [{"x": NaN, "y": 1}]}')
    warnings = []
    record = runs.read_record(tmp_path, warnings=warnings)
    assert record.summary == {"status": "completed", "run_id": "a\ufffdb",
                              "final": {"test_acc": 1e100}, "notes": [{"y": 1}]}
    assert warnings == [f"{tmp_path}: read as absent (not a value a run holds: a number out "
                        "of range, a date, a wrong type): summary.json notes.x"]


def test_a_summary_too_deep_to_check_is_not_a_readable_run(tmp_path, monkeypatch):
    """Checking a summary's values recurses; where Python's stack runs out (a summary
    nested nearly as deep as JSON reads), the run is skipped with the reason."""
    write_summary(tmp_path, {"status": "completed", "final": {"test_acc": float("nan")}})

    def too_deep(*args):
        raise RecursionError

    monkeypatch.setattr(reader, "_plain", too_deep)
    with pytest.raises(ValueError) as info:
        runs.read_record(tmp_path)
    assert str(info.value) == "summary.json or config.yaml nested too deeply"


def test_values_no_run_holds_read_as_absent_and_are_named_once(tmp_path):
    big, huge = "1" + "0" * 400, "9" * 5000  # beyond float range; beyond str()'s 4,300 digits
    (tmp_path / "summary.json").write_text(
        '{"status": "diverged", "diverged_at": "x", "epochs_done": 2, "pid_started": NaN,'
        f' "final": {{"test_acc": {big}, "train_loss": 0.5, "seconds": 1e300}},'
        f' "best": {{"test_acc": Infinity, "train_acc": {huge}}},'
        ' "notes": [1, 1e101], "cell": {"seed": 18446744073709551616},'
        ' "config": {"name": "\\ud800x", "seed": [1, 2], "\\udfffk": 18446744073709551615,'
        f' "optimizer": {{"learning_rate": {big}, "name": "sgd"}}}}}}')
    warnings = []
    record = runs.read_record(tmp_path, with_config=True, warnings=warnings)
    assert record.summary == {
        "status": "diverged", "epochs_done": 2, "final": {"train_loss": 0.5}, "best": {},
        "cell": {}, "config": {"name": "\\ud800x", "seed": [1, 2],
                               "\\udfffk": 2**64 - 1, "optimizer": {"name": "sgd"}}}
    assert record.config == {"name": "\\ud800x", "\\udfffk": 2**64 - 1,
                             "optimizer": {"name": "sgd"}}
    assert warnings == [
        f"{tmp_path}: read as absent (not a value a run holds: a number out of range, a date, "
        "a wrong type): summary.json pid_started, summary.json final.test_acc, summary.json "
        "final.seconds, summary.json best.test_acc, summary.json best.train_acc, summary.json "
        "notes, summary.json cell.seed, summary.json config.optimizer.learning_rate, "
        "summary.json diverged_at, config.seed"]
    assert runs.read_record(tmp_path).summary == record.summary  # no warnings asked: none


json_leaves = st.one_of(
    st.none(), st.booleans(), st.floats(), st.text(st.characters(), max_size=6),
    st.integers(-(2**70), 2**70), st.sampled_from([10**400, -(2**64), 2**64 - 1, 1e100, 1e101]))
json_trees = st.recursive(json_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(st.characters(), max_size=6), inner,
                                                  max_size=3)), max_leaves=8)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(summary=st.dictionaries(st.sampled_from(
    ["final", "best", "data", "started", "config_hash", "epochs_done", "seed", "notes",
     "diverged_at", "pid", "extra"]), json_trees, max_size=5),
       config=st.dictionaries(st.sampled_from(["seed", "data", "model", "x"]), json_trees,
                              max_size=3))
def test_any_json_in_a_summary_reads_as_plain_values(tmp_path, summary, config):
    """Whatever JSON a summary.json holds (lone surrogates, numbers beyond float range or
    of more than 4,300 digits, NaN), what the reader gives back is plain."""
    text = json.dumps({**summary, "status": "completed", "config": {**config, "name": "n"}},
                      allow_nan=True, default=str)
    (tmp_path / "summary.json").write_text(text, encoding="utf-8", errors="surrogatepass")
    record = runs.read_record(tmp_path, with_config=True, warnings=[])
    assert plain(record.summary) and plain(record.config)
    seed = record.config.get("seed")
    assert seed is None or type(seed) is int


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mantissa=st.from_regex(r"\A-?(0|[1-9][0-9]{0,6})(\.[0-9]{1,3})?\Z"),
       e=st.sampled_from(["e", "E"]), sign=st.sampled_from(["", "+", "-"]),
       exponent=st.integers(0, 999), hash_text=st.from_regex(r"\A[0-9a-f]{16}\Z"))
def test_a_number_in_any_spelling_reads_as_itself_or_as_absent_and_named(
        tmp_path, mantissa, e, sign, exponent, hash_text):
    """1e200 (an unsigned exponent, which json.dumps never writes) passed the fast path and
    made compare's spread infinite; 1e400 was dropped without a word."""
    text = f"{mantissa}{e}{sign}{exponent}"
    (tmp_path / "summary.json").write_text(
        f'{{"status": "completed", "config_hash": "{hash_text}", "final": {{"test_acc": {text}}}}}')
    warnings = []
    record = runs.read_record(tmp_path, warnings=warnings)
    if abs(float(text)) <= reader.MAX_NUMBER:
        assert record.summary["final"] == {"test_acc": float(text)} and not warnings
    else:
        assert record.summary["final"] == {} and "final.test_acc" in warnings[0], text
    assert record.summary["config_hash"] == hash_text


def test_a_hex_hash_is_not_taken_for_a_number():
    assert not reader._may_be_odd(b'{"config_hash": "3e450e1e9", "a": "x 1", "b": 1e-05}')
    assert reader._may_be_odd(b'{"a": 1e200}') and reader._may_be_odd(b'{"a": [-1.5E9]}')


BOMB = "name: x\na: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefghi", "bcdefghij",
                                                                 strict=True))


@pytest.mark.parametrize("text, why", [
    (BOMB, "no readable config in summary.json or config.yaml"),  # aliases: refused, unread
    ("name: x\nseed: 0x" + "f" * 4000 + "\n", "no readable config in summary.json or config.yaml"),
    ("name: x\nseed: !!python/name:os.system\n", "no readable config in summary.json or "
                                                 "config.yaml"),
    ("name: x\na: " + "[" * 40 + "]" * 40 + "\n", "no readable config in summary.json or "
                                                  "config.yaml"),
    ("seed: 1\n", "no config with a name in summary.json or config.yaml"),
    ("name: [a]\n", "no config with a name in summary.json or config.yaml"),
    ("x" * 70_000 + ": 1\n", "no readable config in summary.json or config.yaml"),
])
def test_config_yaml_is_read_as_a_config_is(tmp_path, text, why):
    """The hardened config reader (no aliases, tags, deep nesting, 64-bit integers, 64 KiB),
    and a config has a name."""
    write_summary(tmp_path, {"status": "completed", "config": {"seed": 1}})  # no name
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ValueError) as e:
        runs.read_record(tmp_path, with_config=True)
    assert str(e.value) == why


def test_a_config_yaml_date_or_odd_key_is_absent_and_named(tmp_path):
    write_summary(tmp_path, {"status": "completed"})
    (tmp_path / "config.yaml").write_text("name: x\nseed: 2001-01-01\nwhen: 2001-01-01\n"
                                          "1: one\ndata: {batch_size: 64, on: 1.5}\n")
    warnings = []
    record = runs.read_record(tmp_path, with_config=True, warnings=warnings)
    assert record.config == {"name": "x", "data": {"batch_size": 64}}
    assert warnings[0].endswith("config.yaml seed, config.yaml when, config.yaml 1, "
                                "config.yaml data.True")


# ---------------------------------------------------------------- read_csv


@pytest.mark.parametrize("content, rows", [
    (b"epoch,a\n1,0.5\r\n2\r3,0.25\n", [(1, 0.5), (2, NAN), (3, 0.25)]),  # \r ends a line
    (b"epoch,a\n1," + b"1" * 200_000 + b"\n2,0.5\n", [(2, 0.5)]),  # over csv's field limit
    (b"epoch,a\n1e300,1\n-1,1\n9007199254740992,1e100\n9007199254740994,1\n0,1e101\n",
     [(2**53, 1e100), (0, NAN)]),
])
def test_read_csv_rows_of_hostile_lines(tmp_path, content, rows):
    (tmp_path / "metrics.csv").write_bytes(content)
    got = [(r["epoch"], r["a"]) for r in runs.read_metrics(tmp_path)]
    assert same([dict(enumerate(r)) for r in got], [dict(enumerate(r)) for r in rows]), got


def test_read_csv_of_what_is_not_a_file_is_nothing(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "dir").mkdir()
    (tmp_path / "endless").symlink_to("/dev/urandom")
    for name in ("loop", "dir", "endless", "absent"):
        frame = runs.read_csv(tmp_path / name)
        assert frame.empty and list(frame.columns) == [], name
    for name in ("metrics.csv", "steps.csv"):
        (tmp_path / name).symlink_to("/dev/urandom")
    assert runs.read_metrics(tmp_path) == []
    assert runs.read_table(tmp_path, "steps.csv").empty


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(list(csvread.TABLE_COLUMNS)), data=st.data())
def test_any_csv_reads_as_rows_the_plots_can_draw(tmp_path, name, data):
    """Random bytes, or lines of the file's own columns with cells that are numbers of any
    size, text, quotes and line breaks: every row read has whole indexes from 0 to 2^53,
    text where text is expected and every other cell NaN or within +-1e100."""
    columns = ",".join(csvread.TABLE_COLUMNS[name])
    cell = st.one_of(st.floats(), st.integers(-(10**400), 10**400).map(str),
                     st.sampled_from(["1e308", "-1e308", "nan", "", '"', "\r", "all", "1e-320"]),
                     st.text(max_size=5))
    line = st.lists(cell.map(str), max_size=7).map(",".join)
    text = data.draw(st.one_of(
        st.binary(max_size=300),
        st.lists(line, max_size=6).map(lambda ls: "\n".join([columns, *ls, ""]).encode(
            "utf-8", "surrogatepass"))))
    (tmp_path / name).write_bytes(text)
    frame = runs.read_csv(tmp_path / name)
    for column in frame.columns:
        values = frame[column].tolist()
        if column in csvread.TEXT_COLUMNS:
            assert all(isinstance(v, str) for v in values)
        elif column in csvread.INDEX_COLUMNS:
            assert all(type(v) is int and 0 <= v <= 2**53 for v in values)
        else:
            assert all(math.isnan(v) or abs(v) <= 1e100 for v in values)
    table = runs.read_table(tmp_path, name)
    assert table.empty or list(table.columns) == list(frame.columns)
    if name == "metrics.csv":
        assert same(runs.read_metrics(tmp_path),
                    frame.to_dict("records") if "epoch" in frame.columns else [])


def test_a_tree_deeper_than_pythons_recursion_limit_is_scanned(tmp_path):
    """os.walk recurses: a tree 1,000 folders deep (a 2,000-character path) raised
    RecursionError out of compare, plot and doctor."""
    deep = tmp_path / "runs"
    deep.mkdir()
    for _ in range(1100):  # Path.mkdir(parents=True) recurses too
        deep = deep / "d"
        deep.mkdir()
    found = fake_run(deep, 0, [0.5])
    try:
        records, _ = runs.scan(tmp_path / "runs")
        assert [r.path for r in records] == [found]
    finally:  # pytest's own clean-up (shutil.rmtree) recurses too
        shutil.rmtree(found)
        while deep != tmp_path:
            deep.rmdir()
            deep = deep.parent


def test_a_folder_gone_between_the_walk_and_the_look_is_passed_over(tmp_path):
    """A folder deleted after the walk listed it (a cleanup, another run) raised
    FileNotFoundError when its files were looked at."""
    from bnexp.runs.search import _foreign_folders

    gone = str(tmp_path / "runs" / "gone")
    assert _foreign_folders(tmp_path / "runs", set(), [gone]) == []


def test_folders_inside_a_run_folder_are_the_runs_own(tmp_path):
    """A run's own subfolders (TensorBoard's, a user's notes) are neither runs nor
    foreign folders: no warning, however deep."""
    run = write_summary(tmp_path / "exp" / "r1", {"status": "completed"})
    (run / "tensorboard" / "train").mkdir(parents=True)
    (run / "tensorboard" / "train" / "events.out").write_text("x")
    (run / "notes.txt").write_text("x")
    records, warnings = runs.scan(tmp_path)
    assert [r.path for r in records] == [run] and warnings == []


def test_a_csv_of_thousands_of_columns_reads_as_empty_at_once(tmp_path):
    """Each column took ~0.5 ms: a metrics.csv of one row and 50,000 columns (300 KB)
    held doctor for 36 s. A file of more columns than bnexp writes is not its file."""
    columns = ["epoch", *(f"c{i}" for i in range(csvread.MAX_CSV_COLUMNS))]
    row = ",".join(["1"] * len(columns))
    (tmp_path / "metrics.csv").write_text(",".join(columns) + "\n" + row + "\n")
    assert csvread.read_metrics(tmp_path) == []
    (tmp_path / "metrics.csv").write_text(",".join(columns[:-1]) + "\n" + row + "\n")
    assert len(csvread.read_metrics(tmp_path)) == 1  # as many as the limit: read


def test_a_csv_of_millions_of_lines_reads_as_empty_not_into_gigabytes(tmp_path, monkeypatch):
    """30 million blank lines (30 MB) took doctor 72 s and 5.8 GB: each line read became a
    row. A file of more lines than a run writes is not its file."""
    assert csvread.MAX_CSV_ROWS == 1_000_000
    monkeypatch.setattr(csvread, "MAX_CSV_ROWS", 1000)  # the same rule, at a test's size
    header = "epoch,test_acc\n"
    (tmp_path / "metrics.csv").write_text(header + "1,0.5\n" * csvread.MAX_CSV_ROWS)
    assert len(csvread.read_metrics(tmp_path)) == csvread.MAX_CSV_ROWS
    (tmp_path / "metrics.csv").write_text(header + "\n" * (csvread.MAX_CSV_ROWS + 1))
    assert csvread.read_metrics(tmp_path) == []
    (tmp_path / "metrics.csv").write_text(header + "1,0.5\n" * (csvread.MAX_CSV_ROWS + 1))
    assert csvread.read_metrics(tmp_path) == []  # one row too many: none


def pandas_read_csv(file: Path):
    """read_csv as it was, with pandas' conversions (3.5x slower): the reference."""
    import pandas as pd

    from bnexp.runs.csvread import INDEX_COLUMNS, MAX_INDEX, TEXT_COLUMNS, _csv_lines
    from bnexp.runs.reader import MAX_NUMBER

    names, *lines = list(_csv_lines(file.read_bytes().decode("utf-8", "replace"))) or [[]]
    padding = [None] * len(names)
    frame = pd.DataFrame([(line + padding)[: len(names)] for line in lines], dtype=object,
                         columns=range(len(names)))
    frame.columns = names
    frame = frame.loc[:, ~frame.columns.duplicated(keep="last")]
    for column in frame.columns:
        if column in TEXT_COLUMNS:
            frame[column] = frame[column].fillna("")
        else:
            values = pd.to_numeric(frame[column], errors="coerce").astype(float)
            frame[column] = values.where(values.abs() <= MAX_NUMBER)
    for column in (c for c in INDEX_COLUMNS if c in frame.columns):
        values = frame[column]
        frame = frame[(values % 1 == 0) & (values >= 0) & (values <= MAX_INDEX)]
        frame = frame.astype({column: int})
    return frame.reset_index(drop=True)


CELLS = st.one_of(st.sampled_from(["", "1", "1.5", " 1.5", "1_0", "nan", "inf", "-inf",
                                   "1e101", "1e100", "-0", "0x10", "2.0", "-1", "abc", "+3",
                                   ".5", "5.", "Infinity", "9007199254740993", "1,5",
                                   "\ua620", "\u0661.5"]),  # digits float() takes
                  st.text(max_size=4), st.floats().map(repr))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["epoch", "step", "layer", "unit", "test_acc", "x"]),
                min_size=1, max_size=5),
       st.lists(st.lists(CELLS, max_size=6), max_size=6))
def test_read_csv_reads_every_cell_as_pandas_did(header, rows):
    """The reader converts cells in plain Python (pandas' conversions cost ~1 ms a column:
    `plot runs` over 300 runs took a minute); same columns, types and values as before."""
    import csv
    import io
    import tempfile

    text = io.StringIO()
    csv.writer(text).writerows([header, *rows])
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "metrics.csv"
        file.write_text(text.getvalue())
        got, expected = runs.read_csv(file), pandas_read_csv(file)
        records = runs.read_metrics(Path(folder))
    assert len(records) == (len(expected) if "epoch" in expected.columns else 0)
    for one, (_, row) in zip(records, expected.iterrows(), strict=False):
        assert list(one) == list(expected.columns)
        assert all(one[c] == row[c] or (one[c] != one[c] and row[c] != row[c])
                   for c in expected.columns), (one, row)
    assert list(got.columns) == list(expected.columns) and len(got) == len(expected)
    for column in expected.columns:
        assert got[column].dtype == expected[column].dtype, column
        assert got[column].equals(expected[column]), (column, got[column], expected[column])


# ---------------------------------------------------------------- bn_gap


@pytest.mark.parametrize("batch_acc, test_acc, noted", [
    (0.80, 0.70, True), (0.74, 0.70, False), (0.76, 0.70, True), (0.70, 0.70, False),
    (0.60, 0.70, False)])
def test_bn_gap_is_batch_minus_moving_statistics_noted_over_five_points(batch_acc, test_acc,
                                                                        noted):
    gap = record.bn_gap({"test_acc_batchstats": batch_acc, "test_acc": test_acc})
    assert set(gap) == {"test_acc_batchstats", "test_acc", "gap", "note"}
    assert (gap["test_acc_batchstats"], gap["test_acc"]) == (batch_acc, test_acc)
    assert gap["gap"] == pytest.approx(batch_acc - test_acc, abs=0)
    if noted:
        assert gap["note"] == (f"test accuracy is {batch_acc - test_acc:.3f} higher with batch "
                               "statistics than with the moving statistics: the moving "
                               "averages lag (lower model.bn.momentum or train longer)")
    else:
        assert gap["note"] is None


@pytest.mark.parametrize("row", [{"test_acc": 0.7}, {"test_acc": 0.7, "test_acc_batchstats": None},
                                 {"test_acc": 0.7, "test_acc_batchstats": math.nan},
                                 {"test_acc": 0.7, "test_acc_batchstats": math.inf}])
def test_bn_gap_is_none_without_a_finite_batch_statistics_accuracy(row):
    assert record.bn_gap(row) is None


FIRST_SCHEMA = Path(__file__).parent / "data" / "first_schema"


def test_a_run_folder_of_bnexps_first_schema_is_read(tmp_path):
    """A run folder written by bnexp's first commit (7015adc: no config in summary.json,
    no schema, no diagnostics, metrics without lr): compare, doctor and load_runs read
    it; without its config_hash it stands for itself; without a status it reads
    "unknown" (counted, not averaged) with a warning, where it was "not a bnexp summary"."""
    import bnexp

    (folder,) = FIRST_SCHEMA.iterdir()
    runs_dir = tmp_path / "runs"
    shutil.copytree(FIRST_SCHEMA, runs_dir)
    table = bnexp.compare(runs_dir)
    assert list(table["completed"]) == [1] and table["mean"][0] == pytest.approx(0.876667)
    assert bnexp.load_runs(runs_dir)["final_test_acc"].tolist() == [pytest.approx(0.876667)]
    assert bnexp.doctor(runs_dir).empty
    summary = json.loads((folder / "summary.json").read_text())
    copy = runs_dir / folder.name
    for drop in ("config_hash", "status"):
        summary.pop(drop)
        (copy / "summary.json").write_text(json.dumps(summary))
    records, warnings = runs.scan(runs_dir)
    assert [r.status for r in records] == ["unknown"] and records[0].config_hash is None
    assert warnings == [f"{copy}: summary.json has no status (an older or hand-made summary): "
                        "read as unknown, counted but not averaged"]
    assert bnexp.compare(runs_dir)[["n", "completed"]].values.tolist() == [[1, 0]]
