"""What every figure shares: the canvas (a matplotlib Figure without pyplot), the file
it becomes (PNG, SVG or PDF by the output's suffix, at a chosen dpi), group labels cut
to fit, axes, and one legend below the panels sized to the canvas.

The trap: a figure is laid out once and saved with a tight bounding box, so whatever
sticks out (a long title, a legend of many columns) widens the canvas and leaves the
panels small in it (gap.png of one group was a small panel in a wide canvas). Titles
are wrapped and legends take as many columns as the figure's width holds.
"""

from __future__ import annotations

import io
import math
import os
import sys
import textwrap
from pathlib import Path

from bnexp.errors import BadInput

# Groups one figure shows (a line, panel or row each) and the characters of a group's
# label it prints. The trap: both come from the runs, so 150 groups drew for a minute
# into panels collapsed to nothing, and a 120 KB config value made a legend that wide
MAX_GROUPS, MAX_LABEL, MAX_TITLE = 40, 60, 40  # a title: over a small panel
FORMATS = ("png", "svg", "pdf")  # by the output's suffix
DPI = 150  # a PNG's pixels per inch (and of pictures inside an SVG or PDF)
LAYOUT_DPI = 120  # the canvas's own (window extents); text sizes are in points
LINESTYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
FEW_POINTS = 40  # a curve of fewer points shows each one with a marker


def format_of(path: Path, option: str) -> str:
    """png, svg or pdf from path's suffix; BadInput naming the option for another one
    (p.pdf held PNG bytes once)."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise BadInput(f"{path}: {option}: bnexp draws figures as .png, .svg or .pdf, not "
                       f"{path.suffix or 'a file without a suffix'}; rename it")
    return suffix


def render(fig, fmt: str = "png", dpi: int = DPI) -> bytes:
    """A figure drawn in memory as png, svg or pdf bytes: nothing is written until all are
    drawn. The same figure gives the same bytes (no date, fixed SVG ids)."""
    import matplotlib

    buffer = io.BytesIO()
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)
    # dpi given: a user's matplotlibrc with savefig.dpi 20000 ate the memory
    # TrueType fonts in a PDF (Type 3, matplotlib's default, is refused by paper checks);
    # an SVG's text as outlines, the same in every viewer
    with matplotlib.rc_context({"svg.hashsalt": "bnexp", "svg.fonttype": "path",
                                "pdf.fonttype": 42}):
        fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.1,
                    metadata=metadata)
    return buffer.getvalue()


def check_group_count(groups: int, where: str) -> None:
    """BadInput, before anything is drawn, where one figure would hold more than
    MAX_GROUPS groups."""
    if groups > MAX_GROUPS:
        raise BadInput(f"{where}: {groups} groups of runs, more than the {MAX_GROUPS} one "
                       "figure can show; choose fewer with --by KEY, or plot a subfolder")


def shown(labels, limit: int = MAX_LABEL) -> dict[str, str]:
    """Each group label as a figure prints it: at most `limit` characters, its middle left
    out (the start names the key, the end often tells groups apart), and still one name
    per group (" #2" where two shortened labels would read the same)."""
    names: dict[str, str] = {}
    head = (limit - 3) // 2
    for label in dict.fromkeys(labels):
        short = label if len(label) <= limit else f"{label[:head]}...{label[-(limit - 3 - head):]}"
        name, k = short, 1
        while name in names.values():
            k += 1
            name = f"{short} #{k}"
        names[label] = name
    return names


def subplots(nrows: int, ncols: int, *, figsize, **shared):
    """A Figure (not pyplot's: nothing global to close) and its 2-D array of axes."""
    import_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=LAYOUT_DPI, layout="constrained")
    FigureCanvasAgg(fig)  # draws and saves without any GUI or pyplot backend
    return fig, fig.subplots(nrows, ncols, squeeze=False, **shared)


def import_matplotlib() -> None:
    """matplotlib imported; an MPLBACKEND it refuses (a typo) is dropped first, not
    raised: bnexp draws on Agg canvases of its own and never uses a backend. A valid one
    (Jupyter's inline backend) is left alone."""
    try:
        import matplotlib  # noqa: F401
    except ValueError:  # raised half way through: its half-made modules go too
        os.environ.pop("MPLBACKEND", None)
        for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
            del sys.modules[name]
        import matplotlib  # noqa: F401


def grid(n: int, width: float, height: float):
    """A figure of n panels (at most 4 a row), shared axes; unused cells removed. Few
    panels are drawn larger, so that the title and legend above and below them never make
    the canvas wider than the panels."""
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    scale = {1: 1.6, 2: 1.25}.get(ncols, 1.0)
    width, height = width * scale, height * scale
    fig, axes = subplots(nrows, ncols, figsize=(width * ncols + 0.4, height * nrows + 0.9),
                         sharex=True, sharey=True)
    flat = list(axes.flat)
    for ax in flat[n:]:
        fig.delaxes(ax)
    for ax in flat[:n]:
        ax.tick_params(labelbottom=True, labelleft=True)
    return fig, flat[:n]


def axis(ax, x_words: str, y_words: str | None, integer_x: bool = True) -> None:
    """Axis titles (words, not column names), integer ticks where x counts, a light grid."""
    import matplotlib.ticker

    if integer_x:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        # steps run to tens of thousands: 12k, not 12000 (five digits a tick overlap
        # in a narrow panel)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
            lambda value, _: f"{value / 1000:g}k" if value and ax.get_xlim()[1] >= 10_000
            else f"{value:g}"))
    low, high = ax.dataLim.intervalx
    if integer_x and low == high:  # one point: its own tick, not -0.045 ... 0.045
        ax.set_xticks([low])
    ax.set_xlabel(x_words)
    if y_words:
        ax.set_ylabel(y_words)
    ax.grid(alpha=0.3)


def title(fig, text: str, fontsize: float = 10) -> None:
    """The figure's title, each line wrapped to the canvas's width."""
    width = fig.get_size_inches()[0]
    chars = max(int(width * 72 / (fontsize * 0.55)), 20)  # ~0.55 em a character
    lines = []
    for line in text.split("\n"):  # cut into lines of even length, not a full one and a word
        even = math.ceil(len(line) / math.ceil(len(line) / chars)) + 8
        lines.append(textwrap.fill(line, min(chars, even)) if len(line) > chars else line)
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def legend_height(entries, ncols: int) -> float:
    """Inches to add below the panels for a legend of these entries in ncols columns: its
    rows past the third, which the figure's own margin holds."""
    return 0.2 * max(math.ceil(len(list(entries)) / ncols) - 3, 0)


def legend(fig, axes, ncols: int = 4) -> None:
    """One legend of the axes' labelled artists (each label once), below the panels, in
    as many columns (at most ncols) as the figure's width holds."""
    seen = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", fontsize=8,
                   frameon=False, ncols=fitting_columns(fig, list(seen), ncols))


def fitting_columns(fig, labels: list[str], ncols: int, fontsize: float = 8) -> int:
    """How many legend columns of these labels the figure's width holds (at most ncols):
    each column as wide as the longest label, its marker and the gaps beside it."""
    longest = max((len(label) for label in labels), default=1)
    column = longest * fontsize * 0.55 + 3.5 * fontsize  # points
    fits = int(fig.get_size_inches()[0] * 72 // column)
    return max(1, min(ncols, len(labels), fits))


def marker_size(points: int) -> float | None:
    """A curve of few points shows each one (larger the fewer); of many, none (None)."""
    if points >= FEW_POINTS:
        return None
    return 7.0 if points <= 3 else 6.0 if points <= 12 else 4.5


def interval(frame, band: str):
    """(rows, low, high): a summary frame's rows that have a band around their mean and
    its edges (ci: the 95% CI of the mean, std: mean ± 1 std); None for no band."""
    if band == "none":
        return None
    if band == "std":
        rows = frame.dropna(subset=["std"]) if "std" in frame else frame.iloc[0:0]
        return rows, rows["mean"] - rows["std"], rows["mean"] + rows["std"]
    rows = frame.dropna(subset=["ci95_low", "ci95_high"])
    return rows, rows["ci95_low"], rows["ci95_high"]


def counts(frames) -> dict:
    """Per group, what its legend entry adds: its number of runs (' (n=2)') where that
    differs from most groups' (which the title gives), else ''. frames: {label: frame}."""
    tops = {label: int(frame["n_used"].max()) for label, frame in frames.items()}
    usual = max(sorted(set(tops.values()), reverse=True), key=list(tops.values()).count,
                default=0)
    return {label: "" if n == usual else f" (n={n})" for label, n in tops.items()}


def plain_log_labels(ax) -> None:
    """A log axis labelled 0.1, 0.2, 0.5, 1, 2, ... in plain numbers, without matplotlib's
    6x10^-1 on every minor tick (a column of them overlaps in a small panel); over more
    than three decades (gradient norms from 1e-8 to 1e4) powers of ten only, as many as
    fit (with 1, 2, 5 in each decade the locator gave up and drew no label at all)."""
    import matplotlib.ticker

    low, high = ax.get_ylim()  # on a log axis: positive, however far a band reaches below 0
    wide = low > 0 and high / low > 1e3
    subs = (1.0,) if wide else (1.0, 2.0, 5.0)
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs, numticks=8))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
