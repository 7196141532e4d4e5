"""The `bnexp` command: parse arguments, call one function per verb, map errors to exit codes.

No logic and no heavy imports here: TensorFlow is imported only inside the
commands that train or build a model, so `bnexp --help` and `bnexp validate`
answer at once.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from bnexp.errors import BadInput
from bnexp.tfquiet import import_tensorflow

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="bnexp: batch-normalization experiments in TensorFlow, from a YAML config.",
)

ConfigArg = Annotated[Path, typer.Argument(help="The experiment's YAML config.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key: --set model.bn.placement=after."),
]


@contextmanager
def _exit_codes():
    """Bad input: one line on stderr and exit code 2."""
    try:
        yield
    except BadInput as e:
        from bnexp.report import print_error

        print_error(str(e))
        raise typer.Exit(2) from None


@app.command()
def train(
    config: Annotated[
        Path | None, typer.Argument(help="The experiment's YAML config.", show_default=False)
    ] = None,
    set_: SetOpt = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run folders go.")] = Path(
        "runs"
    ),
    smoke: Annotated[
        bool, typer.Option("--smoke", help="A few batches of one epoch, first seed only (CI).")
    ] = False,
    jobs: Annotated[
        int,
        typer.Option("--jobs", min=0, help="Runs at once, in separate processes; "
                     "0 = one per core, up to the number of runs."),
    ] = 0,
    force: Annotated[
        bool, typer.Option("--force", help="Rerun runs that already finished under --runs-dir.")
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue this interrupted run from its last epoch."),
    ] = None,
    backend: Annotated[
        str, typer.Option("--backend", help="local (processes here) or ray (Ray tasks).")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option("--address", help="ray: the cluster ('auto': the running one); "
                     "default: start a local Ray for the sweep."),
    ] = None,
    copy_back: Annotated[
        bool, typer.Option("--copy-back", help="ray: workers share no file system; they "
                           "send each run folder back to be written here."),
    ] = False,
    cpus: Annotated[int, typer.Option("--cpus", min=1, help="ray: CPUs per run.")] = 1,
) -> None:
    """Train CONFIG: one run, or one per sweep cell and seed. Prints each run folder."""
    with _exit_codes():
        from bnexp import config as config_mod

        if (config is None) == (resume is None):
            raise BadInput("bnexp train: give either CONFIG or --resume RUN_DIR")
        if backend not in ("local", "ray"):
            raise BadInput(f"--backend {backend}: expected local or ray")
        ray = {"address": address, "copy_back": copy_back, "cpus": cpus}
        if backend == "local" and (address or copy_back):
            raise BadInput("--address and --copy-back need --backend ray")
        specs = [] if resume else config_mod.load(config, set_ or [])
        if smoke and specs:
            specs = config_mod.smoke_specs(specs)
        from bnexp import report, stop, sweep

        try:
            with stop.handling():
                if resume:
                    outcomes = [sweep.resume(resume, report.make_reporter())]
                else:
                    outcomes = sweep.run_all(specs, runs_dir, report.make_reporter(),
                                             source=str(config), jobs=jobs, force=force,
                                             ray=ray if backend == "ray" else None)
        except KeyboardInterrupt:
            report.print_error("interrupted; the same command again finishes what is left")
            raise typer.Exit(130) from None
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(1)


@app.command()
def summary(config: ConfigArg, set_: SetOpt = None) -> None:
    """Print the model's layers, output shapes and parameter counts, as Keras counts them."""
    with _exit_codes():
        from bnexp import config as config_mod

        spec = config_mod.load(config, set_ or [])[0]
        import_tensorflow()
        from bnexp import models, report

        model = models.build(spec.config.model, config_mod.input_shape(spec.config.data))
        report.print_model_summary(model.name, models.layer_rows(model), models.param_counts(model))


@app.command()
def validate(config: ConfigArg, set_: SetOpt = None) -> None:
    """Check CONFIG and list the runs it expands to, without training (no TensorFlow)."""
    with _exit_codes():
        from bnexp import config as config_mod
        from bnexp import report

        report.print_run_list(str(config), config_mod.load(config, set_ or []))


@app.command()
def compare(
    runs_dir: Annotated[Path, typer.Argument(help="A folder of run folders, searched down.")],
    by: Annotated[
        list[str] | None, typer.Option("--by", help="Group by these config keys instead.")
    ] = None,
    metric: Annotated[str, typer.Option("--metric", help="A metrics.csv column.")] = "test_acc",
    at: Annotated[str, typer.Option("--at", help="final (last epoch) or best.")] = "final",
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", help="KEY=VALUE: differences and p-values against it."),
    ] = None,
    runs: Annotated[bool, typer.Option("--runs", help="One row per run instead.")] = False,
    fmt: Annotated[
        str | None, typer.Option("--format", help="table, csv, markdown or json.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the table to this file.")] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Learning curves per group, as a PNG.")
    ] = None,
) -> None:
    """One row per group of runs that differ only by seed: counts, mean, std, 95% CI."""
    with _exit_codes():
        from bnexp import compare as compare_mod
        from bnexp import report

        found = compare_mod.load(runs_dir)
        report.print_warnings(found.warnings)
        if runs:
            frame = compare_mod.run_rows(found, metric, at, by)
        else:
            frame = compare_mod.table(found, metric, at, by, baseline)
        title = (f"{runs_dir}: {metric} at {at} epoch; statistics over completed runs "
                 "(diverged, failed, interrupted: counted, not averaged)")
        report.emit_table(frame, fmt, out, title)
        if plot:
            report.plot_curves(compare_mod.curves(found, metric, by), metric, plot)


@app.command()
def plot(
    targets: Annotated[
        list[str],
        typer.Argument(help="RUN_DIR or RUNS_DIR: the standard figures; or: features RUN_DIR.",
                       show_default=False),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the PNGs (default: the folder plotted); "
                     "for features, the PNG (default RUN_DIR/features.png)."),
    ] = None,
    by: Annotated[
        list[str] | None, typer.Option("--by", help="Group by these config keys instead.")
    ] = None,
    layer: Annotated[
        str | None, typer.Option("--layer", help="activations.png: the layer (default: last).")
    ] = None,
    unit: Annotated[str, typer.Option("--unit", help="activations.png: unit or 'all'.")] = "0",
    image: Annotated[int, typer.Option("--image", help="features: which test image.")] = 0,
    channels: Annotated[int, typer.Option("--channels", min=1,
                                          help="features: channels per layer.")] = 6,
) -> None:
    """Draw learning curves, the train/inference gap, steps and activation percentiles
    (Ioffe & Szegedy Fig. 1), drift; or a run's feature maps. PNG files."""
    with _exit_codes():
        from bnexp import report

        if targets[0] == "features" and len(targets) == 2:
            run_dir = Path(targets[1])
            import_tensorflow()
            from bnexp import diagnostics

            picture, label, outputs = diagnostics.feature_maps(run_dir, image)
            target = out or run_dir / "features.png"
            report.plot_features(picture, label, outputs, channels, target)
            print(target)
            return
        if len(targets) != 1:
            raise BadInput("bnexp plot: give one RUN_DIR or RUNS_DIR, or: features RUN_DIR")
        from bnexp import compare as compare_mod

        folder = Path(targets[0])
        found = compare_mod.load(folder)
        report.print_warnings(found.warnings)
        out_dir = out or folder
        _make_folder(out_dir)
        written = report.plot_all(found, out_dir, by, layer, unit)
        if not written:
            raise BadInput(f"{folder}: nothing to plot (no completed run with metrics)")
        for path in written:
            print(path)


def _make_folder(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"{path}: --out: cannot create the folder ({e.strerror})") from None


def main() -> None:
    app()
