"""What `bnexp compare`, `bnexp plot runs` and `bnexp plot sweep` put out, end to end:
the runs read, the table and the figures made, the files written. The CLI parses the
arguments and calls one of these; the numbers come from bnexp.analysis, the drawing
from tables and plots.

The trap: a command writes all or nothing. Every output is checked before the first run
folder is read, and every file is made before the first is written (`write_files`,
`write_folder`): a bad --plot leaves no --out behind, and no file half written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bnexp.analysis import compare as compare_mod
from bnexp.errors import BadInput, one_line
from bnexp.runs import check_writable_file, selector_for, write_files
from bnexp.views import tables


def compare(runs_dir: Path, *, by: list[str] | None, metric: str, at: str,
            baseline: str | None, per_run: bool, fmt: str | None, out: Path | None,
            to_stdout: bool, plot: Path | None, select: str | None = None,
            columns: list[str] | None = None, dpi: int | None = None) -> None:
    """`bnexp compare`: the table on the terminal, as text on standard output (to_stdout:
    `--out -`) or in the file `out`; with `plot`, the learning curves of `metric` per
    group as a PNG (at `dpi`), SVG or PDF. fmt: table, csv, markdown or json (None: from
    out's suffix). select: --at best's validation metric; columns: --columns. What the
    table's reader should know (a --by split, tests on few seeds) goes to stderr after
    it."""
    for path, option in ((None if to_stdout else out, "--out"), (plot, "--plot")):
        if path is not None:
            check_writable_file(path, option)
    if plot is not None:  # plots' imports (bnexp.data, the config schema) only for it
        from bnexp.analysis import series
        from bnexp.views import plots

        plots.format_of(plot, "--plot")
    if out is not None and fmt is None:
        tables.format_of(out)
    found = compare_mod.load(runs_dir)
    tables.print_warnings(found.warnings)
    frame = compare_mod.frame(found, metric, at, by, baseline, per_run, select=select,
                              columns=columns)
    text = tables.table_text(frame, fmt, out)
    files = []  # everything is made before the first file is written
    if out is not None and not to_stdout:
        files.append((out, text.encode("utf-8", "backslashreplace"), "--out"))
    if plot is not None:
        where = f"{runs_dir}: --plot"
        plots.check_group_count(series.group_count(found, by), where)
        figure = _curves_figure(found, metric, by, where)
        files.append((plot, plots.render(figure, plots.format_of(plot, "--plot"), dpi or plots.DPI),
                      "--plot"))
    write_files(files)
    if to_stdout:
        sys.stdout.write(text)
    elif out is None:
        epoch = ("final epoch" if at == "final" else
                 f"epoch of best {select or selector_for(metric)}")
        tables.emit_table(frame, fmt, f"{runs_dir}: {metric} at the {epoch}; statistics over "
                          "completed runs (diverged, failed, interrupted: counted, not averaged)",
                          compact=not columns)
    tables.print_warnings(frame.attrs.get("warnings", []))


def plot_runs(folder: Path, out_dir: Path | None, by: list[str] | None, layer: str | None,
              unit: str, *, fmt: str = "png", dpi: int | None = None, band: str = "ci",
              labels: list[str] | None = None) -> None:
    """`bnexp plot runs`: the standard figures of a run folder or of the runs beneath a
    folder, as .png, .svg or .pdf files (fmt) in out_dir (default: that folder); prints
    each file written, and says on stderr which figures it left out and why. labels:
    --label's KEY=VALUE=TEXT renames."""
    from bnexp.analysis import series
    from bnexp.views import plot_words, plots

    plot_words.check_band(band)
    renames = [plot_words.parse_label(given) for given in labels or []]  # before reading
    found = compare_mod.load(folder)
    tables.print_warnings(found.warnings)
    plots.check_group_count(series.group_count(found, by), str(folder))
    split = compare_mod.compare_keys(found, by)[len(dict.fromkeys(by or [])):] if by else []
    if split:
        tables.print_warnings([f"--by {', '.join(dict.fromkeys(by))}: the runs also differ by "
                               f"{', '.join(split)}: a line for each of its values (runs of "
                               "other settings are never pooled)"])
    figures = series.standard(found, by, layer, unit)
    if not figures.any():
        raise BadInput(f"{folder}: nothing to plot (no completed run with metrics)")
    names = plot_words.legend_names(series.group_values(found, by), [r.given for r in renames])
    written = plots.plot_all(figures, out_dir or folder, str(folder), names=names, band=band,
                             fmt=fmt, dpi=dpi or plots.DPI)
    for path in written:
        tables.print_path(path)
    _print_notes(plots.not_drawn(figures, names, fmt))


def plot_sweep(runs_dir: Path, x: str, by: list[str] | None, metric: str, out: Path | None, *,
               dpi: int | None = None, band: str = "ci", labels: list[str] | None = None) -> None:
    """`bnexp plot sweep`: `metric` at the final epoch against the config key x, one line
    per group, into out (.png, .svg or .pdf; default RUNS_DIR/sweep_<x>_<metric>.png);
    prints the file, and on stderr the runs it left out."""
    from bnexp.analysis import sweep_points
    from bnexp.views import plot_words, plots
    from bnexp.views.plot_sweep import figure_sweep, left_out

    plot_words.check_band(band)
    renames = [plot_words.parse_label(given) for given in labels or []]
    target = out or runs_dir / f"sweep_{x.rsplit('.', 1)[-1]}_{metric}.png"
    fmt = plots.format_of(target, "--out")
    check_writable_file(target, "--out")
    found = compare_mod.load(runs_dir)
    tables.print_warnings(found.warnings)
    points = sweep_points.sweep(found, x, by, metric)
    tables.print_warnings(points.notes)
    plots.check_group_count(len(points.groups), f"{runs_dir}")
    names = plot_words.legend_names(points.values, [r.given for r in renames])
    figure = figure_sweep(points, names, band)
    write_files([(target, plots.render(figure, fmt, dpi or plots.DPI), "--out")])
    tables.print_path(target)
    _print_notes(f"not drawn: {line}" for line in left_out(points, names))


def _curves_figure(found, metric: str, by: list[str] | None, where: str):
    """compare --plot's figure: learning curves of `metric`, its groups named as plot
    runs names them (`BN before`, not `placement=before`)."""
    from bnexp.analysis import series
    from bnexp.views import plot_words, plots

    names = plot_words.legend_names(series.group_values(found, by))
    curves = series.curves(found, metric, by)
    return plots.figure_curves_of({names.get(g, g): f for g, f in curves.items()}, metric, where)


def _print_notes(notes) -> None:
    """What a figure left out and why: one line each on stderr (stdout: the files)."""
    for note in notes:
        print(f"note: {one_line(note)}", file=sys.stderr, flush=True)
