"""The `bnexp` command: parse arguments, call one function per verb, map errors to exit codes.

No logic and no heavy imports here: TensorFlow is imported only inside the commands
that train or build a model, so `bnexp --help`, `validate`, `compare` and `plot`
answer at once. Bad input (BadInput) is one line on stderr and exit code 2. What
compare and plot runs put out: bnexp.views.outputs; the standard streams: bnexp.stdio.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

try:  # newer typer vendors click as typer._click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer on click itself
    from click.exceptions import ClickException

from bnexp import stdio
from bnexp.cli_args import (
    At,
    Backend,
    DoctorFormat,
    Format,
    StandardOutput,
    exit_codes,
    out_path_arg,
    path_arg,
    possible_path,
)
from bnexp.cli_plot import DpiOpt, plot_app
from bnexp.errors import BadInput, escaped, one_line
from bnexp.tfquiet import import_tensorflow


class _OneLineErrors(TyperGroup):
    """Usage errors (a bad --format choice, a missing argument) as one line on stderr with
    exit code 2, like every other bad input, instead of click's boxed multi-line message."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except ClickException as e:
            ctx = getattr(e, "ctx", None)
            if type(e).__name__ == "NoArgsIsHelpError":  # bare `bnexp`: the help, as click does
                print(ctx.get_help())
                sys.exit(e.exit_code)
            where = f"{ctx.command_path}: " if ctx else ""
            message = e.format_message().replace("Value error, ", "")
            print(one_line(f"error: {where}{message}"), file=sys.stderr, flush=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            print("error: aborted", file=sys.stderr, flush=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="bnexp: batch-normalization experiments in TensorFlow, from a YAML config.",
)
app.add_typer(plot_app, name="plot")  # its commands: bnexp.cli_plot
export_app = typer.Typer(no_args_is_help=True,
                         help="Send runs to a tracker (no TensorFlow).")
app.add_typer(export_app, name="export")


ConfigArg = Annotated[Path, typer.Argument(parser=path_arg, help="The experiment's YAML config.",
                                           show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a config key: --set model.bn.placement=after.", show_default=False)]
ByOpt = Annotated[list[str] | None, typer.Option(
    "--by", help="Group by these config keys instead of the keys that differ.",
    show_default=False)]
SWEEP, RAY = "Sweeps", "Ray (--backend ray)"


def _print_version(value: bool) -> None:
    if value:
        from bnexp.version import __version__

        print(f"bnexp {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print bnexp's version and exit.")] = False) -> None:
    pass


@app.command()
def train(
    configs: Annotated[list[Path] | None, typer.Argument(
        parser=path_arg,
        metavar="CONFIG", show_default=False,
        help="The experiment's YAML config; several are all checked, then trained in turn.")
    ] = None,
    set_: SetOpt = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="The runs' name (their folder names start with it).",
        show_default=False)] = None,
    runs_dir: Annotated[str | None, typer.Option(
        "--runs-dir", parser=possible_path, help="Where run folders go. [default: runs]",
        show_default=False)] = None,
    smoke: Annotated[bool, typer.Option(
        "--smoke", help="A few batches of one epoch, first seed only (CI).")] = False,
    resume: Annotated[Path | None, typer.Option(
        "--resume", parser=path_arg, help="Continue this interrupted run from its last epoch.",
        show_default=False)] = None,
    jobs: Annotated[int, typer.Option(
        "--jobs", min=0, rich_help_panel=SWEEP,
        help="Runs at once, in separate processes; 0 = one per core.")] = 0,
    force: Annotated[bool, typer.Option(
        "--force", rich_help_panel=SWEEP,
        help="Rerun runs that already finished under --runs-dir.")] = False,
    backend: Annotated[Backend, typer.Option(
        "--backend", rich_help_panel=SWEEP, help="Where runs train.")] = Backend.local,
    address: Annotated[str | None, typer.Option(
        "--address", rich_help_panel=RAY, show_default=False,
        help="The cluster ('auto': the running one); default: a local Ray.")] = None,
    copy_back: Annotated[bool, typer.Option(
        "--copy-back", rich_help_panel=RAY,
        help="Workers share no file system: they send each run folder back.")] = False,
    cpus: Annotated[int, typer.Option("--cpus", min=1, rich_help_panel=RAY,
                                      help="CPUs per run.")] = 1,
) -> None:
    """Train CONFIG: one run, or one per sweep cell and seed. Prints each run folder."""
    with exit_codes():
        from bnexp import config as config_mod

        if (not configs) == (resume is None):
            raise BadInput("bnexp train: give either CONFIG or --resume RUN_DIR")
        if resume and (set_ or name is not None or smoke or runs_dir is not None or force):
            raise BadInput("--resume: continues a run as it was configured, in its own "
                           "folder: --set, --name, --smoke, --runs-dir and --force do not apply")
        if runs_dir is not None and not runs_dir.strip():
            raise BadInput("--runs-dir: an empty folder name (leave the option out for ./runs)")
        if backend is Backend.local and (address or copy_back):
            raise BadInput("--address and --copy-back need --backend ray")
        overrides = [*(set_ or []), *([f"name={name}"] if name is not None else [])]
        specs = [] if resume else config_mod.load_all(configs, overrides, smoke)
        _train(specs, resume, Path(runs_dir or "runs"), jobs, force,
               _ray_options(backend, address, copy_back, cpus))


def _ray_options(backend: Backend, address, copy_back, cpus):
    if backend is not Backend.ray:
        return None
    from bnexp.backends.ray import RayOptions

    return RayOptions(address=address, copy_back=copy_back, cpus=cpus)


def _train(specs, resume, runs_dir, jobs, force, ray) -> None:
    from bnexp import sweep
    from bnexp.training import stop
    from bnexp.views.progress import make_reporter
    from bnexp.views.tables import print_error

    try:
        with stop.handling():
            if resume:
                outcomes = [sweep.resume(resume, make_reporter())]
            else:
                outcomes = sweep.run_all(specs, runs_dir, make_reporter(), jobs=jobs,
                                         force=force, ray=ray)
    except KeyboardInterrupt:
        print_error("interrupted; the same command again finishes what is left")
        raise typer.Exit(130) from None
    if any(o.status == "failed" or (o.status == "interrupted" and not o.skipped)
           for o in outcomes):  # interrupted here, without a Ctrl-C: a worker was killed
        raise typer.Exit(1)


@app.command()
def summary(
    config: ConfigArg,
    set_: SetOpt = None,
    weights: Annotated[bool, typer.Option(
        "--weights", help="Also list every variable: name, shape, trainable.")] = False,
    cell: Annotated[int | None, typer.Option(
        "--cell", min=0, show_default=False, help="The model of the sweep's cell N: 0 is the "
        "first; a cell is an arm and grid values, seeds aside, in the order `bnexp validate` "
        "lists the runs. Default: cell 0, saying so where the cells' models differ.")] = None,
) -> None:
    """Print the model's layers, output shapes and parameter counts, as Keras counts them."""
    with exit_codes():
        from bnexp import config as config_mod
        from bnexp.config.cells import pick_cell

        spec, which = pick_cell(config_mod.load(config, set_ or []), cell, str(config))
        if which:
            print(one_line(which))
        import_tensorflow()
        from bnexp.model.build import build
        from bnexp.training.freezing import param_counts, summary_rows
        from bnexp.views.tables import print_model_summary

        model = build(spec.config.model, config_mod.input_shape(spec.config.data))
        print_model_summary(model.name, summary_rows(spec.config, model),
                            param_counts(spec.config, model), weights=weights)


@app.command()
def validate(config: ConfigArg, set_: SetOpt = None) -> None:
    """Check CONFIG and list the runs it expands to, without training (no TensorFlow)."""
    with exit_codes():
        from bnexp import config as config_mod
        from bnexp.views.tables import print_run_list

        print_run_list(str(config), config_mod.load(config, set_ or []))


@app.command()
def compare(
    runs_dir: Annotated[Path, typer.Argument(
        parser=path_arg, help="A folder of run folders, searched down.")],
    by: Annotated[list[str] | None, typer.Option(
        "--by", help="Group by these config keys first; runs that also differ in another key "
        "get rows of their own (never pooled).", show_default=False)] = None,
    metric: Annotated[str, typer.Option("--metric", help="A metrics.csv column.")] = "test_acc",
    at: Annotated[At, typer.Option(
        "--at", help="The last epoch, or the epoch chosen on validation (--select).")
    ] = At.final,
    select: Annotated[str | None, typer.Option(
        "--select", help="--at best: the epoch of the best val_loss or val_acc (default: "
        "val_acc for an accuracy, else val_loss).", show_default=False)] = None,
    baseline: Annotated[str | None, typer.Option(
        "--baseline", help="KEY=VALUE: differences, p-values and effect sizes against that "
        "group.", show_default=False)] = None,
    runs: Annotated[bool, typer.Option("--runs", help="One row per run instead.")] = False,
    columns: Annotated[list[str] | None, typer.Option(
        "--columns", help="Only these columns, in this order (comma-separated or repeated).",
        show_default=False)] = None,
    fmt: Annotated[Format | None, typer.Option(
        "--format", help="Default: table, or from --out's suffix.", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", parser=out_path_arg, help="Write the table to this file ('-': standard output, "
        "as csv unless --format says else).", show_default=False)] = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", parser=path_arg, help="Learning curves per group: PNG, SVG or PDF by the suffix.",
        show_default=False)] = None,
    dpi: DpiOpt = None,
) -> None:
    """One row per group of runs that differ only by seed: counts, mean, std, 95% CI."""
    with exit_codes():
        from bnexp.views import outputs

        outputs.compare(runs_dir, by=by, metric=metric, at=at.value, baseline=baseline,
                        per_run=runs, fmt=fmt and fmt.value, out=out,
                        to_stdout=isinstance(out, StandardOutput), plot=plot, select=select,
                        columns=columns, dpi=dpi)


@app.command()
def doctor(
    path: Annotated[Path, typer.Argument(parser=path_arg,
                                         help="A run folder or a folder of runs.")],
    fmt: Annotated[DoctorFormat, typer.Option(
        "--format", help="text: one block per finding; json: a list of objects.")
    ] = DoctorFormat.text,
) -> None:
    """The classic BN problems a run's files show, with evidence and fix (no TensorFlow).

    Exit code 0 whatever it finds."""
    with exit_codes():
        from bnexp.analysis import doctor as doctor_mod
        from bnexp.views import findings, tables

        each, warnings = doctor_mod.diagnose_each(path)
        tables.print_warnings(warnings)
        if fmt is DoctorFormat.json:
            findings.print_json([f for found in each.values() for f in found])
        else:
            findings.print_text(each)


@app.command()
def report(
    runs_dir: Annotated[Path, typer.Argument(
        parser=path_arg, help="A folder of run folders, searched down.")],
    out: Annotated[Path, typer.Option(
        "--out", parser=path_arg, help="report.html: one self-contained page; report.md: "
        "Markdown, its figures in report_files/ beside it.")] = Path("report.html"),
    by: Annotated[list[str] | None, typer.Option(
        "--by", help="Group by these config keys first (as compare).",
        show_default=False)] = None,
    metric: Annotated[str, typer.Option("--metric", help="A metrics.csv column.")] = "test_acc",
    baseline: Annotated[str | None, typer.Option(
        "--baseline", help="KEY=VALUE: differences and effect sizes against that group.",
        show_default=False)] = None,
) -> None:
    """A study to hand over: compare's table, figures, doctor's findings, settings,
    runs, provenance and the commands that reproduce it, in one page (no TensorFlow)."""
    with exit_codes():
        from bnexp.analysis import study
        from bnexp.views import report as report_view
        from bnexp.views import tables

        report_view.check_out(out)
        found = study.gather(runs_dir, by=by, metric=metric, baseline=baseline)
        figures, notes = report_view.draw(found)
        found.warnings += notes
        tables.print_warnings(found.warnings)
        for path in report_view.write(found, figures, out):
            tables.print_path(path)


@export_app.command("mlflow")
def export_mlflow(
    runs_dir: Annotated[Path, typer.Argument(
        parser=path_arg, help="A folder of run folders, searched down.")],
    tracking_uri: Annotated[str, typer.Option(
        "--tracking-uri", help="Where MLflow keeps runs: a database (sqlite:///FILE) or a "
        "server (http://HOST:PORT).")] = "sqlite:///mlflow.db",
    experiment: Annotated[str | None, typer.Option(
        "--experiment", help="The MLflow experiment (default: the runs folder's name).",
        show_default=False)] = None,
) -> None:
    """Every run into MLflow: params, each epoch's metrics, the probes' series, tags and
    files. Again: nothing twice, only what a run has gained (pip install 'bnexp[mlflow]')."""
    with exit_codes():
        from bnexp import mlflow_export
        from bnexp.views import tables

        warnings: list[str] = []
        done = mlflow_export.export(runs_dir, tracking_uri, experiment, warn=warnings.append)
        tables.print_warnings(warnings)
        for run in done:
            print(f"{run['action']}: {escaped(str(run['folder']))} (MLflow run "
                  f"{run['mlflow_run_id']}, {run['metric_steps']} metric values)")


class Stats(StrEnum):
    """`bnexp eval --stats`: which statistics BN normalizes the test images with."""

    population = "population"
    batch = "batch"
    adapt = "adapt"


@app.command("eval")
def evaluate(
    path: Annotated[Path, typer.Argument(
        parser=path_arg, help="A run folder, or a folder of runs: each with a checkpoint.")],
    shift: Annotated[list[str] | None, typer.Option(
        "--shift", help="noise=SIGMA (pixel units 0-255), rotate=DEG, contrast=F or invert; "
        "repeated: applied in order.", show_default=False)] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", parser=path_arg, help="A folder of IDX test files in place of the run's "
        "test set.", show_default=False)] = None,
    stats: Annotated[Stats, typer.Option(
        "--stats", help="population: the moving statistics; batch: each test batch's own; "
        "adapt: recomputed on the test images (AdaBN).")] = Stats.population,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", min=1, help="--stats batch: examples per batch (default: the run's "
        "data.batch_size).", show_default=False)] = None,
) -> None:
    """Evaluate trained runs from their checkpoints, without training; append a row to each
    run's eval.csv (compare reads it: --metric 'test_acc@noise=80/adapt')."""
    with exit_codes():
        from bnexp.analysis import eval_plan
        from bnexp.views import tables

        request = eval_plan.Request.of(shift, data, stats.value, batch_size)
        targets, warnings = eval_plan.plan(path, request)
        tables.print_warnings(warnings)
        import_tensorflow()
        from bnexp.analysis import evaluate as evaluate_mod

        try:
            rows, warnings = evaluate_mod.evaluate_all(targets, request)
        except KeyboardInterrupt:
            tables.print_error("interrupted; the runs evaluated so far have their rows in "
                               "eval.csv")
            raise typer.Exit(130) from None
        tables.print_table(tables.stdout_console(), tables.rich_table(
            eval_plan.shown(rows), f"{path}: appended to each run's eval.csv", compact=False))
        tables.print_warnings(warnings)


def main() -> None:
    stdio.run(lambda: app(prog_name="bnexp"))  # also under `python -m bnexp`
