"""The columns and fields the docs promise are the ones a real run writes: the lists are
read from docs/run-folder.md, docs/compare.md and docs/diagnostics.md (what users and
their scripts rely on), not from the code's constants, and compared with the files of a
run trained here."""

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnexp.cli import app

# reads conftest's diagnosed study (trained once, shared with test_plot.py)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("diagnosed_study")]

DOCS = Path(__file__).resolve().parents[1] / "docs"
# summary.json fields written only when something happened
CONDITIONAL = {"resumed", "diverged_at", "notes"}


def doc_row(page: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row of `page` whose first cell is `first_cell`."""
    for line in (DOCS / page).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"{page}: no table row for {first_cell}")


def listed(cell: str) -> list[str]:
    """The column names a cell lists: `a, b, c` or `a`, `b` (in order)."""
    names = []
    for quoted in re.findall(r"`([^`]+)`", cell):
        names += [n.strip() for n in quoted.split(",")]
    return names


@pytest.fixture
def run(diagnosed_study) -> Path:
    """A run with BN and every diagnostic that writes a file switched on (the study's
    first run with BN; its sweep also holds runs without BN)."""
    folders = sorted(p for p in diagnosed_study.iterdir() if "before" in p.name)
    assert len(folders) == 2
    return folders[0]


def header(path: Path) -> list[str]:
    with open(path) as f:
        return next(csv.reader(f))


def test_metrics_csv_has_the_documented_columns_in_order(run):
    cell = doc_row("run-folder.md", "`metrics.csv`")[1]
    documented = listed(cell.split("appended and flushed:")[1].split("(")[0])
    assert header(run / "metrics.csv") == documented


@pytest.mark.parametrize("file", ["drift.csv", "steps.csv", "activations.csv"])
def test_diagnostic_files_have_the_documented_columns_in_order(run, file):
    row = [r for r in (DOCS / "diagnostics.md").read_text().splitlines()
           if f"| `{file}` |" in r]
    assert len(row) == 1, file
    columns = row[0].strip().strip("|").split("|")[2]
    assert header(run / file) == listed(columns.split("(")[0])


def test_summary_json_has_the_documented_fields(run):
    cell = doc_row("run-folder.md", "`summary.json`")[1]
    documented = {name for name in listed(cell) if re.fullmatch(r"[a-z_]+", name)}
    nested = {"trainable", "frozen", "non_trainable"}  # params' fields
    invocation, machine = {"config_file", "set", "runs_dir"}, {"cpu", "cores", "gpus"}
    states = {"running", "completed", "diverged", "failed", "interrupted", "unknown"}
    fields = documented - nested - invocation - machine - states
    summary = json.loads((run / "summary.json").read_text())
    assert fields - CONDITIONAL <= set(summary), "documented but not written"
    assert set(summary) <= fields | {"run_id", "epochs", "data", "pid_started"}, (
        "written but not documented")
    assert set(summary["params"]) == nested
    assert set(summary["invocation"]) == invocation and set(summary["machine"]) == machine
    # best: the epoch of the highest val_acc (the first of equals), every metric at it
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    chosen = max(rows, key=lambda r: (float(r["val_acc"]), -int(r["epoch"])))
    assert summary["schema"] == 2 and summary["best"]["selected_by"] == "val_acc"
    assert summary["best"]["epoch"] == int(chosen["epoch"])
    assert summary["best"]["test_acc"] == pytest.approx(float(chosen["test_acc"]))


def test_compare_csv_has_the_documented_columns_in_order(run, tmp_path):
    out = tmp_path / "t.csv"
    result = CliRunner().invoke(app, ["compare", str(run.parent), "--baseline",
                                      "model.bn.placement=none", "--out", str(out)])
    assert result.exit_code == 0, result.output
    documented = []
    in_table = False
    for line in (DOCS / "compare.md").read_text().splitlines():
        if line.startswith("| column | meaning |"):
            in_table = True
        elif in_table and not line.startswith("|"):
            break
        elif in_table and line.startswith("| ") and not line.startswith("| the grouping"):
            documented += listed(line.split("|")[1].split(":")[-1])  # "with `--baseline`: ..."
    assert header(out) == ["model.bn.placement", *documented]
