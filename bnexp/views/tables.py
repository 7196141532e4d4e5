"""Tables and lines for the terminal or a file: compare's table (rich, csv, markdown,
json), the model summary, validate's run list, errors and warnings.

On a terminal a rich table; anywhere else (pipes, files, CI) the full width, never
squeezed to 80 columns.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from bnexp.errors import BadInput, escaped, one_line


def print_path(path) -> None:
    """A file or run folder on stdout, one per line (what scripts read): line breaks and
    terminal escapes in its name shown escaped, as everywhere else."""
    print(escaped(str(path)), flush=True)

# what bnexp prints is data (paths, config values, run names), never rich markup: "[/]"
# in a value raised MarkupError, "[bold]" and ":thumbs_up:" were silently rewritten
PLAIN = {"markup": False, "emoji": False, "highlight": False}


def stdout_console() -> Console:
    """Standard output as rich sees it, printing text as it is: the terminal's width on a
    terminal; anywhere else (a pipe, a file, CI) wide enough that no table is squeezed
    to 80 columns."""
    console = Console(**PLAIN)
    return console if console.is_terminal else Console(width=10_000, **PLAIN)


def print_table(console: Console, table: Table) -> None:
    """A table at least as wide as it needs: on a terminal too narrow (or COLUMNS=0), rich
    would cut every cell to an ellipsis or blank; the terminal wraps long lines instead."""
    natural = Measurement.get(console, console.options.update(width=10_000), table).maximum
    console.width = max(console.width, natural)  # print(width=) takes at most console.width
    console.print(table)


def print_model_summary(name: str, rows: list[dict], counts: dict, console=None,
                        weights: bool = False) -> None:
    """Layers, output shapes and parameter counts, with Keras' totals; with `weights`,
    every variable too (name, shape, trainable: BN's moving statistics are not). Frozen
    parameters (counts["frozen"]: Keras-trainable, kept at their initial values by
    train.trainable or a layer's trainable: false) have a line of their own."""
    console = console or stdout_console()
    table = Table(title=name)
    for column in ("layer", "type", "output shape", "params"):
        table.add_column(column, justify="right" if column == "params" else "left")
    for row in rows:
        table.add_row(row["name"], row["type"], row["output_shape"], f"{row['params']:,}")
    print_table(console, table)
    total = counts["trainable"] + counts.get("frozen", 0) + counts["non_trainable"]
    console.print(f"Total params: {total:,}")
    console.print(f"Trainable params: {counts['trainable']:,}")
    if counts.get("frozen"):
        console.print(f"Frozen params: {counts['frozen']:,}")
    console.print(f"Non-trainable params: {counts['non_trainable']:,}")
    if weights:
        table = Table(title="variables")
        for column in ("variable", "shape", "trainable"):
            table.add_column(column)
        for row in rows:
            for variable, shape, trainable in row["weights"]:
                table.add_row(variable, str(shape), str(trainable))
        print_table(console, table)


def print_run_list(source: str, specs, console=None) -> None:
    """validate's answer: the config is valid and expands to these runs; with
    sweep.cells, first its arms (each label and the keys it sets), then each run's label
    and grid values."""
    from bnexp.config.cells import LABEL, cell_text

    console = console or Console(soft_wrap=True, **PLAIN)  # scripts read these lines
    console.print(f"{escaped(source)}: valid, {len(specs)} run{'s' * (len(specs) != 1)}")
    arms = {spec.arm[LABEL]: spec.arm for spec in specs if spec.arm}
    if arms:
        console.print(f"  {len(arms)} arm{'s' * (len(arms) != 1)}:")
    for label, arm in arms.items():
        keys = ", ".join(f"{k}={_flow(v)}" for k, v in arm.items() if k != LABEL)
        console.print(f"    {label}: {escaped(keys) or '(the config as written)'}")
    for spec in specs:  # a path or grid value with a line break must not start a line
        cell = escaped(cell_text(spec))
        console.print(f"  {escaped(spec.label)}" + (f"  ({cell})" if cell else ""))


def _flow(value) -> str:
    """A value as YAML's flow style writes it on one line ({rmax: 3}, [1, 2], null)."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix(
        "\n...").removesuffix("...").strip()


def print_error(message: str) -> None:
    """Bad input: one line on stderr per mistake (a config's several are several lines)."""
    for line in message.split("\n"):
        print(f"error: {line}", file=sys.stderr, flush=True)


FORMATS = ("table", "csv", "markdown", "json")
SUFFIX_FORMATS = {".csv": "csv", ".md": "markdown", ".markdown": "markdown", ".json": "json"}


def print_warnings(warnings: list[str]) -> None:
    """One line each on stderr; a folder name's line breaks and escapes shown escaped."""
    for warning in warnings:
        print(f"warning: {one_line(warning)}", file=sys.stderr, flush=True)


def emit_table(frame, fmt: str | None, title: str = "", compact: bool = True) -> None:
    """The compare table on standard output: a rich table on the terminal (fmt None or
    table; compact: compare's own view, else the frame's columns as they are), else csv /
    markdown / json text."""
    text = table_text(frame, fmt, None)
    if text is None:
        print_table(stdout_console(), rich_table(frame, title, compact))
    else:
        sys.stdout.write(text)


def table_text(frame, fmt: str | None, out: Path | None) -> str | None:
    """The compare table as text in its format; None for a rich table on the terminal.
    With --out and no --format, the format follows the file's suffix (csv otherwise)."""
    if fmt is None:
        fmt = format_of(out) if out else "table"
    if fmt not in FORMATS:
        raise BadInput(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if fmt == "table" and out is None:
        return None
    return {
        "table": lambda: to_markdown(frame),
        "csv": lambda: frame.to_csv(index=False),
        "markdown": lambda: to_markdown(frame),
        "json": lambda: frame.to_json(orient="records", indent=2) + "\n",
    }[fmt]()


def format_of(out: Path) -> str:
    """--out's format from its suffix (.csv, .md, .json; none or .txt: csv); BadInput for
    another (`--out t.xlsx` or `t.png` held CSV text under a name that promised else)."""
    suffix = out.suffix.lower()
    if suffix in SUFFIX_FORMATS or suffix in ("", ".txt"):
        return SUFFIX_FORMATS.get(suffix, "csv")
    raise BadInput(f"{out}: --out: bnexp writes tables as .csv, .md or .json, not "
                   f"{out.suffix}; rename it or give --format")


def _cell(value, column: str) -> str:
    """A value as a table shows it: numbers to 4 places (p-values to 3 figures), NaN
    blank, text with line breaks and other controls escaped (a `c\nd` value made two
    rows, the second a group that is not there)."""
    if value is None:  # --runs' epoch where none was chosen
        return ""
    if isinstance(value, float):
        if value != value:
            return ""
        if column in ("p_value", "p_holm"):
            return f"{value:.3g}"
        return f"{value:.4f}"
    return escaped(str(value))


def to_markdown(frame) -> str:
    """The table in Markdown; a `|` in a name or value escaped (it split the cell)."""
    columns = list(frame.columns)
    lines = ["| " + " | ".join(_md(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_md(_cell(row[c], c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return escaped(str(text)).replace("|", "\\|")


def rich_table(frame, title: str = "", compact: bool = True) -> Table:
    """The compare table for a terminal: compact columns (else the frame's own: --columns
    chose them); diverged in yellow, failed in red."""
    table = Table(title=title or None)
    if frame.empty:
        table.add_column("no runs found")
        return table
    view = terminal_view(frame) if compact else plain_view(frame)
    for column in view.columns:
        numeric = all(_looks_numeric(v) for v in view[column])
        table.add_column(escaped(column), justify="right" if numeric else "left")
    for _, row in view.iterrows():
        table.add_row(*[_colour(column, escaped(str(row[column]))) for column in view.columns])
    return table


def _looks_numeric(text) -> bool:
    return str(text).lstrip("+-").replace(".", "", 1).replace(",", "").isdigit() or text == ""


def plain_view(frame):
    """The frame's own columns, each value as a table shows it (`_cell`)."""
    import pandas as pd

    return pd.DataFrame({str(c): [_cell(v, str(c)) for v in frame[c]] for c in frame.columns})


def terminal_view(frame):
    """Group keys under their last name, counts, then mean +- std, CI, range and baseline."""
    import pandas as pd

    from bnexp.analysis.compare import BASELINE_COLUMNS, COUNT_COLUMNS, STAT_COLUMNS, UNLIKE

    numeric = set(COUNT_COLUMNS + STAT_COLUMNS + BASELINE_COLUMNS)
    keys = [c for c in frame.columns if c not in numeric and c != "run_id"]
    short = {k: k.rsplit(".", 1)[-1] for k in keys}
    if len(set(short.values())) < len(short):
        short = {k: k for k in keys}
    view = pd.DataFrame({short[k]: frame[k].astype(str) for k in keys})
    if "mean" not in frame:  # --runs: keys, seed, status, value, folder
        metric = [c for c in frame.columns if c not in keys and c != "run_id"]
        for column in metric:
            view[column] = [_cell(v, column) for v in frame[column]]
        view["run_id"] = frame["run_id"]
        return view
    view["n"] = frame["n"].astype(str)
    for column in ("completed", "diverged", "failed", "interrupted", "running"):
        if column == "completed" or frame[column].any():
            view[column] = frame[column].astype(str)
    metric = frame["metric"].iloc[0]
    view[f"{metric} mean ± std"] = [
        f"{_cell(m, 'mean')} ± {_cell(s, 'std') or '?'}" if m == m else ""
        for m, s in zip(frame["mean"], frame["std"], strict=True)]
    view["95% CI"] = [_interval(lo, hi) for lo, hi in zip(frame["ci95_low"], frame["ci95_high"],
                                                         strict=True)]
    view["min … max"] = [_interval(lo, hi, brackets=False) for lo, hi in
                         zip(frame["min"], frame["max"], strict=True)]
    if "delta" in frame:
        view["Δ vs baseline [95% CI]"] = [
            "baseline" if b == "(baseline)" else
            "no baseline alike (other settings differ)" if b == UNLIKE else
            "" if d != d else f"{d:+.4f} {_interval(lo, hi, signed=True)}"
            for b, d, lo, hi in zip(frame["baseline"], frame["delta"], frame["delta_ci95_low"],
                                    frame["delta_ci95_high"], strict=True)]
        view["p (test, n)"] = [_cell(p, "p_value") + _test(row) for p, (_, row) in
                               zip(frame["p_value"], frame.iterrows(), strict=True)]
        if (frame["test"] != "").sum() > 1:  # one test: Holm's p is p
            view["p Holm"] = [_cell(p, "p_holm") for p in frame["p_holm"]]
        view["effect [95% CI]"] = [
            "" if e != e else f"{name} {e:+.2f} {_interval(lo, hi, signed=True, places=2)}"
            for name, e, lo, hi in zip(frame["effect"], frame["effect_size"],
                                       frame["effect_ci95_low"], frame["effect_ci95_high"],
                                       strict=True)]
    return view


def _test(row) -> str:
    """Which test gave the p-value, and on how many: (paired, 3 pairs), (Welch, 3 vs 4)."""
    if row["test"] == "paired":
        return f" (paired, {row['n_pairs']} pairs)"
    if row["test"] == "welch":
        return f" (Welch, {row['n_used']} vs {row['n_baseline']})"
    return ""


def _interval(lo, hi, brackets=True, signed=False, places=4) -> str:
    if lo != lo or hi != hi:
        return ""
    form = f"{{:{'+' if signed else ''}.{places}f}}"
    text = f"{form.format(lo)}, {form.format(hi)}" if brackets else f"{lo:.4f} … {hi:.4f}"
    return f"[{text}]" if brackets else text


def _colour(column: str, text: str) -> str:
    if column == "diverged" and text not in ("0", "") or text == "diverged":
        return f"[yellow]{text}[/]"
    if column == "failed" and text not in ("0", "") or text == "failed":
        return f"[red]{text}[/]"
    return text
