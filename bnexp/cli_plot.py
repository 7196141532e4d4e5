"""`bnexp plot`'s commands: runs (the standard figures), sweep (a metric against a swept
setting) and features (feature maps). Parsing only, as bnexp.cli: what they put out is
bnexp.views.outputs, the drawing bnexp.views.plots. Only `plot features` starts
TensorFlow (tests check it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bnexp.cli_args import (
    Band,
    FigureFormat,
    StandardOutput,
    exit_codes,
    out_path_arg,
    path_arg,
)
from bnexp.errors import BadInput
from bnexp.tfquiet import import_tensorflow

plot_app = typer.Typer(no_args_is_help=True,
                       help="Draw figures of finished runs as PNG, SVG or PDF files (no "
                       "TensorFlow, except for feature maps).")
ByOpt = Annotated[list[str] | None, typer.Option(
    "--by", help="Group by these config keys instead of the keys that differ.",
    show_default=False)]

DpiOpt = Annotated[int | None, typer.Option(
    "--dpi", min=20, max=1200, help="A PNG's pixels per inch (default 150).",
    show_default=False)]
BandOpt = Annotated[Band, typer.Option(
    "--band", help="Around each mean over seeds: its 95% CI, ± 1 std, or none.")]
LabelOpt = Annotated[list[str] | None, typer.Option(
    "--label", help="KEY=VALUE=TEXT: call the groups with KEY=VALUE TEXT in legends "
    "and titles (repeatable).", show_default=False)]


@plot_app.command("runs")
def plot_runs(
    folder: Annotated[Path, typer.Argument(parser=path_arg,
                                           help="A run folder or a folder of runs.")],
    out: Annotated[Path | None, typer.Option(
        "--out", parser=out_path_arg, help="Folder for the figures (default: FOLDER).",
        show_default=False)] = None,
    by: ByOpt = None,
    layer: Annotated[str | None, typer.Option(
        "--layer", help="activations: the layer (default: the last).",
        show_default=False)] = None,
    unit: Annotated[str, typer.Option("--unit", help="activations: unit or 'all'.")] = "0",
    fmt: Annotated[FigureFormat, typer.Option(
        "--format", help="The figures' file format.")] = FigureFormat.png,
    dpi: DpiOpt = None,
    band: BandOpt = Band.ci,
    label: LabelOpt = None,
) -> None:
    """Learning curves, the train/inference gap, steps, activation percentiles (Ioffe &
    Szegedy Fig. 1) and drift, as far as the runs' files allow."""

    with exit_codes():
        from bnexp.views import outputs

        if isinstance(out, StandardOutput):
            raise BadInput("-: --out: plot runs writes several figures into a folder, which "
                           "standard output is not; name a folder")
        outputs.plot_runs(folder, out, by, layer, unit, fmt=fmt.value, dpi=dpi,
                          band=band.value, labels=label)


@plot_app.command("sweep")
def plot_sweep(
    runs_dir: Annotated[Path, typer.Argument(
        parser=path_arg, help="A folder of run folders, searched down.")],
    x: Annotated[str, typer.Option(
        "--x", help="The swept config key on the x axis, e.g. data.batch_size.",
        show_default=False)],
    by: Annotated[list[str] | None, typer.Option(
        "--by", help="One line per value of these keys (default: every other key that "
        "differs).", show_default=False)] = None,
    metric: Annotated[str, typer.Option(
        "--metric", help="A metrics.csv column at the final epoch, or NAME_error for "
        "1 - NAME_acc (test_error).")] = "test_acc",
    out: Annotated[Path | None, typer.Option(
        "--out", parser=path_arg, help="The figure: .png, .svg or .pdf (default: "
        "RUNS_DIR/sweep_<key>_<metric>.png).", show_default=False)] = None,
    dpi: DpiOpt = None,
    band: BandOpt = Band.ci,
    label: LabelOpt = None,
) -> None:
    """A metric against a swept setting: per group, the mean over seeds at each value with
    its interval (error against batch size per normalization)."""

    with exit_codes():
        from bnexp.views import outputs

        outputs.plot_sweep(runs_dir, x, by, metric, out, dpi=dpi, band=band.value,
                           labels=label)


@plot_app.command("features")
def plot_features(
    run_dir: Annotated[Path, typer.Argument(parser=path_arg,
                                            help="A run folder with a checkpoint.")],
    out: Annotated[Path | None, typer.Option(
        "--out", parser=path_arg, help="The figure: .png, .svg or .pdf (default: "
        "RUN_DIR/features.png).", show_default=False)] = None,
    image: Annotated[int, typer.Option("--image", help="Which test image.")] = 0,
    channels: Annotated[int, typer.Option("--channels", min=1,
                                          help="Channels per layer.")] = 6,
    dpi: DpiOpt = None,
) -> None:
    """A test image's feature maps through the convolutional layers, inference mode."""

    with exit_codes():
        from bnexp.views import plots

        if out is not None:  # before TensorFlow starts
            plots.format_of(out, "--out")
        import_tensorflow()
        from bnexp.analysis import features
        from bnexp.views.tables import print_path

        picture, label, outputs = features.feature_maps(run_dir, image)
        target = out or run_dir / "features.png"
        plots.plot_features(picture, label, outputs, channels, target,
                            class_names=features.class_names(run_dir), dpi=dpi or plots.DPI)
        print_path(target)
