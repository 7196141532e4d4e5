"""A study as `bnexp report` hands it over, gathered from a folder of run folders: the
compare table, the figures, doctor's findings, the settings that differ and those shared,
each run's status and time, where the runs came from, and how to run them again.

No TensorFlow (doctor's checks here read files only). The trap: the table is computed
exactly as `bnexp compare` computes it (same function, same options), so a reader can
check the page against `compare --format json`; nothing here selects or rounds.
"""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bnexp import runs
from bnexp.analysis import compare as compare_mod
from bnexp.analysis import doctor as doctor_mod
from bnexp.errors import BadInput
from bnexp.yamltext import format_value

MAX_COMMANDS = 20  # distinct `bnexp train` commands listed; the rest counted


@dataclass
class Study:
    """What the report shows (its figures are drawn from `found` by bnexp.views.report)."""

    runs_dir: Path
    metric: str
    by: list[str] | None
    baseline: str | None
    table: pd.DataFrame
    found: compare_mod.RunTable
    findings: pd.DataFrame
    differing: dict[str, list[str]]
    shared: dict[str, str]
    run_rows: pd.DataFrame
    provenance: dict[str, Counter]
    commands: list[str]
    warnings: list[str] = field(default_factory=list)


def gather(runs_dir: Path, by: list[str] | None = None, metric: str = "test_acc",
           baseline: str | None = None) -> Study:
    """The study under runs_dir; BadInput where there is no run to report."""
    found = compare_mod.load(runs_dir)
    if found.table.empty:
        raise BadInput(f"{runs_dir}: RUNS_DIR: no run folder beneath it")
    table = compare_mod.frame(found, metric, "final", by, baseline, per_run=False)
    records, _ = runs.scan_latest(runs_dir)
    findings, doctor_warnings = doctor_mod.diagnose_all(runs_dir)
    return Study(
        runs_dir=runs_dir, metric=metric, by=by, baseline=baseline, table=table, found=found,
        findings=pd.DataFrame([f.to_dict() for f in findings],
                              columns=["run", "id", "severity", "evidence", "advice"]),
        differing=_differing(found), shared=_shared(found), run_rows=_run_rows(records),
        provenance=_provenance(records), commands=_commands(records, runs_dir, by, metric,
                                                            baseline),
        warnings=list(dict.fromkeys([*found.warnings, *table.attrs.get("warnings", []),
                                     *doctor_warnings])))


def swept_numbers(found) -> list[str]:
    """Differing config keys whose values are all numbers (not true/false): a sweep's axis."""
    keys = []
    for key in compare_mod.differing_keys(found):
        values = found.table[key].dropna()
        if len(values) and all(isinstance(v, int | float) and not isinstance(v, bool)
                               for v in values):
            keys.append(key)
    return keys


def _differing(found) -> dict[str, list[str]]:
    """Each config key whose values differ between runs: its values, as YAML writes them."""
    return {key: sorted({str(format_value(v)) for v in found.table[key].dropna()})
            for key in compare_mod.differing_keys(found)}


def _shared(found) -> dict[str, str]:
    """Each config key all runs share (one value), with that value."""
    differing = set(compare_mod.differing_keys(found))
    shared = {}
    for key in found.config_keys:
        values = found.table[key].dropna()
        if key not in differing and len(values):
            shared[key] = str(format_value(values.iloc[0]))
    return shared


def _run_rows(records: list[runs.RunRecord]) -> pd.DataFrame:
    """One row per run: its folder, status, seed, epochs, wall time and start."""
    return pd.DataFrame([{
        "run_id": record.path.name, "status": record.status,
        "seed": record.summary.get("seed"), "epochs_done": record.summary.get("epochs_done"),
        "wall_seconds": record.summary.get("wall_seconds"), "started": record.started,
    } for record in records], columns=["run_id", "status", "seed", "epochs_done",
                                       "wall_seconds", "started"])


def _provenance(records: list[runs.RunRecord]) -> dict[str, Counter]:
    """How many runs had each bnexp, TensorFlow and Python version, git commit, CPU and
    GPU (None: not recorded, an older run folder)."""
    def versions(record, name):
        given = record.summary.get("versions")
        return given.get(name) if isinstance(given, dict) else None

    def machine(record, name):
        given = record.summary.get("machine")
        value = given.get(name) if isinstance(given, dict) else None
        return ", ".join(map(str, value)) or "none" if isinstance(value, list) else value

    fields = {
        "bnexp": lambda r: versions(r, "bnexp"),
        "TensorFlow": lambda r: versions(r, "tensorflow"),
        "Keras": lambda r: versions(r, "keras"),
        "Python": lambda r: versions(r, "python"),
        "git commit": lambda r: r.summary.get("git_commit"),
        "CPU": lambda r: machine(r, "cpu"),
        "GPUs": lambda r: machine(r, "gpus"),
        "host": lambda r: r.summary.get("host"),
    }
    return {name: Counter(str(get(r)) if get(r) is not None else "not recorded"
                          for r in records) for name, get in fields.items()}


def _commands(records: list[runs.RunRecord], runs_dir: Path, by, metric: str,
              baseline: str | None) -> list[str]:
    """The shell commands that train these runs again (each distinct config file and
    --set overrides once; a run that recorded none: its own resolved config.yaml), then
    the report's own command."""
    commands: list[str] = []
    for record in records:
        given = record.summary.get("invocation")
        if isinstance(given, dict) and isinstance(given.get("config_file"), str):
            overrides = [s for s in given.get("set") or [] if isinstance(s, str)]
            words = ["bnexp", "train", given["config_file"],
                     *[w for s in overrides for w in ("--set", s)]]
        else:
            words = ["bnexp", "train", str(record.path / "config.yaml")]
        command = shlex.join([*words, "--runs-dir", str(runs_dir)])
        if command not in commands:
            commands.append(command)
    more = len(commands) - MAX_COMMANDS
    commands = commands[:MAX_COMMANDS] + ([f"# ... and {more} more"] if more > 0 else [])
    options = [*[w for key in by or [] for w in ("--by", key)], "--metric", metric,
               *(["--baseline", baseline] if baseline else [])]
    return [*commands, shlex.join(["bnexp", "report", str(runs_dir), *options])]
