"""`bnexp report`: a study (bnexp.analysis.study) as one self-contained HTML page, or as
Markdown with its figures in a folder beside it.

The page needs nothing but itself: inline CSS, figures as data: URIs, no script from
anywhere else, no font or request over the network; it reads on a phone (tables scroll
sideways, figures shrink) and prints. The trap: every text that comes from a run folder
or a config (names, values, errors) is HTML-escaped and control characters shown
escaped; each number in the table carries its exact value (`data-value`) beside the
rounded one a reader sees, so a check against `compare --format json` compares values.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bnexp.analysis.study import Study, swept_numbers
from bnexp.errors import BadInput, escaped
from bnexp.runs import check_writable_file, write_files, write_folder
from bnexp.version import __version__

MAX_SWEEP_FIGURES = 3  # one figure per swept numeric setting, the first three
CAPTIONS = {
    "curves": "Learning curves: mean over seeds per group, band: 95% interval.",
    "gap": "Test accuracy with moving (population) statistics against batch statistics: "
           "BN's train/inference gap.",
}
STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;
max-width:68rem;padding:0 1rem 3rem;color:#1b1b1b;background:#fff}
h1{font-size:1.5rem;margin:1.2rem 0 .2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}p.meta{color:#555;margin:.2rem 0}
.scroll{overflow-x:auto;margin:.6rem 0}table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1rem 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9rem}pre{background:#f6f6f6;padding:.6rem;
overflow-x:auto;font-size:.85rem}code{font-size:.9em}.warn{color:#8a4b00}
details{margin:.5rem 0}
@media print{body{max-width:none}h2{break-after:avoid}figure,table{break-inside:avoid}
.scroll{overflow:visible}}
"""
# sets data-images-loaded on <body> once every figure has decoded: the browser test
# reads it (an inline script, the page's only one; it asks nothing of the network)
LOADED_CHECK = ("<script>addEventListener('load',function(){var i=document.images,n=0;"
                "for(var k=0;k<i.length;k++){if(i[k].complete&&i[k].naturalWidth>0)n++}"
                "document.body.dataset.imagesLoaded=n+'/'+i.length})</script>")


SUFFIXES = (".html", ".htm", ".md", ".markdown")


def check_out(out: Path) -> None:
    """BadInput unless `out` is an .html or .md file that can be written: checked before
    the study is read (seconds for many runs)."""
    if out.suffix.lower() not in SUFFIXES:
        raise BadInput(f"{out}: --out: a report is .html or .md, not "
                       f"{out.suffix or 'a file without a suffix'}")
    check_writable_file(out, "--out")


def write(study: Study, figures: dict[str, bytes], out: Path) -> list[Path]:
    """The report into `out` (.html: one page; .md: Markdown and `<stem>_files/` with
    the figures, PNG bytes by name); all or nothing. Returns the files written."""
    if out.suffix.lower() in (".md", ".markdown"):
        folder = out.with_name(f"{out.stem}_files")
        text = markdown(study, list(figures), folder.name)
        written = write_folder(folder, {f"{name}.png": data
                                        for name, data in figures.items()}, "--out")
        write_files([(out, text.encode("utf-8"), "--out")])
        return [out, *written]
    write_files([(out, page(study, figures).encode("utf-8"), "--out")])
    return [out]


def draw(study: Study, dpi: int = 100) -> tuple[dict[str, bytes], list[str]]:
    """The report's figures as PNG bytes by name: the learning curves and the gap figure
    (`plot runs`'), and the metric against each swept numeric setting at which a group
    has runs at two values or more (`plot sweep`'s; the first MAX_SWEEP_FIGURES); notes
    for those that could not be drawn."""
    from bnexp.analysis import series, sweep_points
    from bnexp.views import plot_words, plots
    from bnexp.views.plot_sweep import figure_sweep

    found, by = study.found, study.by
    names = plot_words.legend_names(series.group_values(found, by))
    figures, notes = {}, []
    try:
        drawn = plots.render_all(series.learning(found, by), str(study.runs_dir), names=names,
                                 dpi=dpi)
        figures.update({name.removesuffix(".png"): data for name, data in drawn.items()
                        if name in ("curves.png", "gap.png")})
    except BadInput as e:
        notes.append(f"figures not drawn: {str(e).splitlines()[0]}")
    for key in swept_numbers(found)[:MAX_SWEEP_FIGURES]:
        try:
            points = sweep_points.sweep(found, key, [k for k in by or [] if k != key] or None,
                                        study.metric)
            if not any(len(frame) > 1 for frame in points.groups.values()):
                continue  # each group at one value (arms that set it): no line to draw
            plots.check_group_count(len(points.groups), str(study.runs_dir))
            figure = figure_sweep(points, plot_words.legend_names(points.values), "ci")
            figures[f"sweep_{key}"] = plots.render(figure, "png", dpi)
        except BadInput as e:
            notes.append(f"{study.metric} against {key} not drawn: {str(e).splitlines()[0]}")
    return figures, notes


# ---------------------------------------------------------------- HTML


def page(study: Study, figures: dict[str, bytes]) -> str:
    """The whole page."""
    title = f"bnexp study: {study.runs_dir.name or study.runs_dir}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{_e(_subtitle(study))}</p>',
        *[f'<p class="meta warn">warning: {_e(w)}</p>' for w in study.warnings],
        "<h2>Comparison</h2>", f"<p>{_e(_table_caption(study))}</p>",
        _html_table(comparison(study.table), numbers=True),
        "<h2>Figures</h2>", *_html_figures(figures, study.metric),
        "<h2>Doctor's findings</h2>", _html_findings(study.findings),
        "<h2>Settings</h2>", _html_settings(study),
        "<h2>Runs</h2>", _html_table(study.run_rows, numbers=True),
        "<h2>Provenance</h2>", _html_provenance(study),
        "<h2>Reproduce</h2>",
        "<p>Train the runs again (finished ones are skipped), then rebuild this page:</p>",
        "<pre><code>" + "\n".join(_e(c) for c in study.commands) + "</code></pre>",
        LOADED_CHECK, "</body></html>",
    ]
    return "\n".join(parts) + "\n"


FIRST = ["n", "completed", "mean", "std", "ci95_low", "ci95_high"]
LAST = ["min", "max", "n_used", "diverged", "failed", "interrupted", "running"]
IN_CAPTION = ("metric", "at", "selected_by")  # one value for the whole table
STATUS_COUNTS = ("diverged", "failed", "interrupted", "running")


def comparison(table: pd.DataFrame) -> pd.DataFrame:
    """compare's table with what a reader looks for first: the group's keys, its counts,
    mean, std and interval, then the baseline's columns, then the rest; the columns the
    caption states (metric, at) and status counts that are all zero left out. Every
    value as compare computed it."""
    if "n" not in table:  # no group (an empty table)
        return table
    keys = list(table.columns[:list(table.columns).index("n")])
    rest = [c for c in table.columns if c not in keys + FIRST + LAST + list(IN_CAPTION)]
    shown = [c for c in [*keys, *FIRST, *rest, *LAST] if c in table
             and not (c in STATUS_COUNTS and (table[c] == 0).all())]
    return table[shown]


def _html_table(frame: pd.DataFrame, numbers: bool = False) -> str:
    if frame.empty:
        return "<p>(none)</p>"
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for value in row:
            if numbers and _is_number(value):
                cells.append(f'<td class="num" data-value="{_exact(value)}">{_shown(value)}</td>')
            else:
                cells.append(f"<td>{_e(_text(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table></div>")


def _html_figures(figures: dict[str, bytes], metric: str) -> list[str]:
    if not figures:
        return ["<p>(no figure: no completed run with metrics)</p>"]
    out = []
    for name, data in figures.items():
        source = base64.b64encode(data).decode("ascii")
        out.append(f'<figure><img src="data:image/png;base64,{source}" alt="{_e(name)}">'
                   f"<figcaption>{_e(_caption(name, metric))}</figcaption></figure>")
    return out


def _html_findings(findings: pd.DataFrame) -> str:
    if findings.empty:
        return "<p>No problems found.</p>"
    rows = []
    for finding, runs in _grouped(findings):
        names = "".join(f"<li>{_e(name)}</li>" for name in runs)
        rows.append(f"<tr><td>{_e(finding['severity'])}</td><td>{_e(finding['id'])}</td>"
                    f"<td><details><summary>{len(runs)} run{'s' * (len(runs) != 1)}"
                    f"</summary><ul>{names}</ul></details></td>"
                    f"<td>{_e(finding['evidence'])}</td><td>{_e(finding['advice'])}</td></tr>")
    return ('<div class="scroll"><table><thead><tr><th>severity</th><th>id</th><th>runs</th>'
            "<th>evidence (the first run's)</th><th>advice</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


def _grouped(findings: pd.DataFrame) -> list[tuple[pd.Series, list[str]]]:
    """One entry per finding id and severity, in doctor's order: its first row (whose
    evidence is shown) and the names of every run it was found in."""
    out: dict[tuple, tuple[pd.Series, list[str]]] = {}
    for _, row in findings.iterrows():
        key = (row["id"], row["severity"])
        out.setdefault(key, (row, []))[1].append(Path(row["run"]).name)
    return list(out.values())


def _html_settings(study: Study) -> str:
    differing = pd.DataFrame({"key": list(study.differing),
                              "values": [", ".join(v) for v in study.differing.values()]})
    shared = pd.DataFrame({"key": list(study.shared), "value": list(study.shared.values())})
    return ("<p>What differs between the groups:</p>" + _html_table(differing)
            + f"<details><summary>What every run shares ({len(shared)} settings)</summary>"
            + _html_table(shared) + "</details>")


def _html_provenance(study: Study) -> str:
    rows = pd.DataFrame({"what": list(study.provenance),
                         "value (runs)": [_counted(c) for c in study.provenance.values()]})
    return _html_table(rows)


# ---------------------------------------------------------------- Markdown


def markdown(study: Study, figures: list[str], figures_dir: str) -> str:
    """The report as Markdown; figures referenced in `figures_dir` beside the file."""
    lines = [f"# bnexp study: {_m(study.runs_dir.name or str(study.runs_dir))}", "",
             _m(_subtitle(study)), ""]
    lines += [f"> warning: {_m(w)}" for w in study.warnings]
    lines += ["", "## Comparison", "", _m(_table_caption(study)), "",
              _md_table(comparison(study.table)), "", "## Figures", ""]
    for name in figures:
        lines += [f"![{name}]({figures_dir}/{name}.png)", "",
                  f"*{_m(_caption(name, study.metric))}*", ""]
    lines += ["## Doctor's findings", "", _md_findings(study.findings), "",
              "## Settings", "", "What differs between the groups:", "",
              _md_table(pd.DataFrame({"key": list(study.differing), "values": [
                  ", ".join(v) for v in study.differing.values()]})), "",
              f"What every run shares ({len(study.shared)} settings):", "",
              _md_table(pd.DataFrame({"key": list(study.shared),
                                      "value": list(study.shared.values())})), "",
              "## Runs", "", _md_table(study.run_rows), "", "## Provenance", "",
              _md_table(pd.DataFrame({"what": list(study.provenance), "value (runs)": [
                  _counted(c) for c in study.provenance.values()]})), "",
              "## Reproduce", "", "```sh", *study.commands, "```", ""]
    return "\n".join(lines)


def _md_findings(findings: pd.DataFrame) -> str:
    if findings.empty:
        return "No problems found."
    return _md_table(pd.DataFrame([{
        "severity": row["severity"], "id": row["id"], "runs": len(runs),
        "evidence (the first run's)": row["evidence"], "advice": row["advice"]}
        for row, runs in _grouped(findings)]))


def _md_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)"
    head = "| " + " | ".join(_m(str(c)) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(_shown(v) if _is_number(v) else _m(_text(v)) for v in row)
            + " |" for _, row in frame.iterrows()]
    return "\n".join([head, rule, *body])


# ---------------------------------------------------------------- words


def _subtitle(study: Study) -> str:
    return (f"{len(study.run_rows)} runs in {study.runs_dir}; report made "
            f"{time.strftime('%Y-%m-%d %H:%M %Z')} by bnexp {__version__}")


def _table_caption(study: Study) -> str:
    by = f", grouped by {', '.join(study.by)}" if study.by else ""
    base = f", against {study.baseline}" if study.baseline else ""
    hidden = [c for c in STATUS_COUNTS if c in study.table and (study.table[c] == 0).all()]
    none = f" No run {'/'.join(hidden)}." if hidden else ""
    return (f"{study.metric} at the final epoch{by}{base}: statistics over completed runs "
            "(diverged, failed, interrupted: counted, not averaged), as `bnexp compare` "
            f"computes them; 95% CI: Student's t over seeds.{none}")


def _caption(name: str, metric: str) -> str:
    if name.startswith("sweep_"):
        return f"{metric} at the final epoch against {name.removeprefix('sweep_')}."
    return CAPTIONS.get(name, name)


def _counted(counts) -> str:
    return "; ".join(f"{value} ({n})" for value, n in counts.most_common())


def _is_number(value) -> bool:
    """A finite int or float (NumPy's too: a DataFrame's cells are), not true/false."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
            and math.isfinite(value))


def _shown(value) -> str:
    """A number as a reader sees it: four significant digits, whole numbers whole."""
    return f"{float(value):.4g}" if isinstance(value, float) else str(int(value))


def _exact(value) -> str:
    """A number as Python writes it back exactly (repr of a float or an int)."""
    return repr(float(value)) if isinstance(value, float) else repr(int(value))


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _e(text) -> str:
    return html.escape(escaped(str(text)))


def _m(text: str) -> str:
    return escaped(text).replace("|", "\\|")
