"""`bnexp eval`'s TensorFlow part: a finished run rebuilt from its folder (config.yaml and
the weights of checkpoint.npz, moving statistics included) and measured on a test set
without training it again, with the run's own loss and the compiled evaluation its
training used (bnexp.training.steps.Steps), so that population statistics on the
unshifted test set give the run's last test_loss and test_acc again.

    population  inference mode: BN normalizes with the moving statistics (as training's
                evaluation after each epoch)
    batch       BN in training mode on batches of the test set, each normalized with its
                own statistics; dropout and noise off; the moving statistics untouched
                (Steps.evaluate_batch_stats puts them back bit for bit)
    adapt       AdaBN (Li et al. 2016): each BN layer's statistics recomputed on the test
                images evaluated (labels unused), layer by layer in inference mode
                (bnexp.training.recorders.population_stats), then inference mode

The trap: adapting changes the model's moving statistics; they are put back after the
measurement and never written anywhere: checkpoint.npz stays as training left it. Needs
TensorFlow; the options and data were checked before (bnexp.analysis.eval_plan).
"""

from __future__ import annotations

import time
from pathlib import Path

from tensorflow import keras

from bnexp import runs, shifts
from bnexp.analysis.eval_plan import Request, Target
from bnexp.config import Config, input_shape
from bnexp.errors import BadInput
from bnexp.model.build import build
from bnexp.runs import checkpoint, claims, evals
from bnexp.training import recorders
from bnexp.training.loop import precision_policy
from bnexp.training.objective import Loss
from bnexp.training.steps import Steps
from bnexp.training.xla import xla_mode


class Evaluator:
    """A run rebuilt from its folder: `model` with the checkpoint's weights, its compiled
    `steps` (the run's loss and XLA mode), and `epoch`, the epochs the checkpoint holds."""

    def __init__(self, folder: Path, config: Config):
        keras.backend.clear_session(free_memory=False)  # a process evaluates run after run
        keras.utils.set_random_seed(config.seed)
        shape = input_shape(config.data)
        with precision_policy(config.train.precision):
            self.model = build(config.model, shape)
        path = folder / checkpoint.FILENAME
        self.epoch = len(checkpoint.rows(path))
        checkpoint.load_weights(path, self.model)
        # the optimizer is never used: Steps wants one (plain SGD builds no slots)
        self.steps = Steps(self.model, keras.optimizers.SGD(), shape,
                           jit_compile=xla_mode(config),
                           loss=Loss(config.train.loss, config.train.from_logits))

    def measure(self, x, y, stats: str, batch_size: int | None = None) -> tuple[float, float]:
        """(mean loss, accuracy) on uint8 pixels x and labels y with `stats` (population,
        batch in batches of batch_size, adapt); the model is as it was afterwards."""
        if stats == "population":
            return self.steps.evaluate(x, y)
        if stats == "batch":
            return self.steps.evaluate_batch_stats(x, y, batch_size)
        saved = [(v, v.numpy()) for v in self.model.non_trainable_weights]
        try:
            self.adapt(x)
            return self.steps.evaluate(x, y)
        finally:
            for variable, value in saved:
                variable.assign(value)

    def adapt(self, x) -> dict:
        """Set every BN layer's moving statistics to its population statistics over x
        (AdaBN); {layer name: (mean, variance)} as float64 NumPy arrays."""
        return recorders.population_stats(self.model, x, keep=True)


def evaluate_all(targets: list[Target], request: Request) -> tuple[list[dict], list[str]]:
    """Each target measured as `request` asks and its row appended to its eval.csv at
    once (an interruption keeps the rows done); ([run_id, path and the row], warnings).
    A run that cannot be rebuilt (a checkpoint that does not fit its config), or that
    another process is training or resuming (bnexp.runs.claims: its folder stays locked
    while it is measured), is a warning among several runs, BadInput alone."""
    rows, warnings = [], []
    for target in targets:
        try:
            with claims.run_folder(target.folder):
                _not_training(target.folder)
                row = evaluate_one(target, request)
                evals.append(target.folder, row)
        except claims.Taken as e:
            error = BadInput(str(e))
        except BadInput as e:
            error = e
        else:
            rows.append({"run_id": target.folder.name, "path": str(target.folder), **row})
            continue
        if len(targets) == 1:
            raise error
        warnings.append(f"skipped {target.folder}: {str(error).splitlines()[0]}")
    if not rows:
        raise BadInput(*warnings)
    return rows, warnings


def _not_training(folder: Path) -> None:
    record = runs.read_record(folder)
    if record.status == "running":
        summary = record.summary
        raise BadInput(f"{folder}: still training (pid {summary.get('pid')} on "
                       f"{summary.get('host')}); evaluate it once it has stopped")


def evaluate_one(target: Target, request: Request) -> dict:
    """The eval.csv row of one target (evals.COLUMNS)."""
    evaluator = Evaluator(target.folder, target.config)
    size = target.batch_size(request)
    loss, acc = evaluator.measure(target.x, target.y, request.stats, size)
    return {"evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "epoch": evaluator.epoch,
            "data": request.data_label, "shift": shifts.label_of(request.shifts),
            "stats": request.stats, "batch_size": size, "examples": len(target.x),
            "loss": loss, "acc": acc}
