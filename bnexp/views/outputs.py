"""What `bnexp compare` and `bnexp plot runs` put out, end to end: the runs read, the
table and the figures made, the files written. The CLI parses the arguments and calls
one of these; the numbers come from bnexp.analysis, the drawing from tables and plots.

The trap: a command writes all or nothing. Every output is checked before the first run
folder is read, and every file is made before the first is written (`write_files`,
`write_folder`): a bad --plot leaves no --out behind, and no file half written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bnexp.analysis import compare as compare_mod
from bnexp.errors import BadInput
from bnexp.runs import check_writable_file, write_files
from bnexp.views import tables


def compare(runs_dir: Path, *, by: list[str] | None, metric: str, at: str,
            baseline: str | None, per_run: bool, fmt: str | None, out: Path | None,
            to_stdout: bool, plot: Path | None) -> None:
    """`bnexp compare`: the table on the terminal, as text on standard output (to_stdout:
    `--out -`) or in the file `out`; with `plot`, the learning curves of `metric` per
    group as a PNG. fmt: table, csv, markdown or json (None: from out's suffix)."""
    for path, option in ((None if to_stdout else out, "--out"), (plot, "--plot")):
        if path is not None:
            check_writable_file(path, option)
    if plot is not None:  # plots' imports (bnexp.data, the config schema) only for it
        from bnexp.analysis import series
        from bnexp.views import plots

        plots.check_png(plot, "--plot")
    if out is not None and fmt is None:
        tables.format_of(out)
    found = compare_mod.load(runs_dir)
    tables.print_warnings(found.warnings)
    frame = compare_mod.frame(found, metric, at, by, baseline, per_run)
    text = tables.table_text(frame, fmt, out)
    files = []  # everything is made before the first file is written
    if out is not None and not to_stdout:
        files.append((out, text.encode("utf-8", "backslashreplace"), "--out"))
    if plot is not None:
        where = f"{runs_dir}: --plot"
        plots.check_group_count(series.group_count(found, by), where)
        figure = plots.figure_curves_of(series.curves(found, metric, by), metric, where)
        files.append((plot, plots.png(figure), "--plot"))
    write_files(files)
    if to_stdout:
        sys.stdout.write(text)
    elif out is None:
        tables.emit_table(frame, fmt, f"{runs_dir}: {metric} at {at} epoch; statistics over "
                          "completed runs (diverged, failed, interrupted: counted, not averaged)")


def plot_runs(folder: Path, out_dir: Path | None, by: list[str] | None, layer: str | None,
              unit: str) -> None:
    """`bnexp plot runs`: the standard figures of a run folder or of the runs beneath a
    folder, as PNGs in out_dir (default: that folder); prints each file written."""
    from bnexp.analysis import series
    from bnexp.views import plots

    found = compare_mod.load(folder)
    tables.print_warnings(found.warnings)
    plots.check_group_count(series.group_count(found, by), str(folder))
    figures = series.standard(found, by, layer, unit)
    if not figures.any():
        raise BadInput(f"{folder}: nothing to plot (no completed run with metrics)")
    for path in plots.plot_all(figures, out_dir or folder, str(folder)):
        print(path)
