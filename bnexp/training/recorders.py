"""Watching BN while it trains: population statistics and precise BN, moving-statistics
drift, activation percentiles, per-step curves, TensorBoard; the Recorder writes them.

Everything here looks at the model in inference mode (training=False) and changes no
variable, except `precise_bn`, whose job is to set the moving statistics. The trap the
functions avoid: calling a BN layer with training=True to "measure" it also moves its
moving averages.

The files (steps.csv, activations.csv, drift.csv) are appended as training goes; a
resumed run first cuts them back to its checkpoint (`Recorder.cut_to`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow import keras

from bnexp import config as config_mod
from bnexp import runs, shifts
from bnexp.config import Config
from bnexp.model.bn import BatchNorm
from bnexp.model.build import to_unit
from bnexp.model.residual import leaves, walk
from bnexp.runs import evals
from bnexp.training import probes
from bnexp.training.objective import learning_rate_at

PERCENTILES = (15, 50, 85)
STEP_COLUMNS = ["step", "epoch", "train_loss", "train_acc", "test_loss", "test_acc"]
ACTIVATION_COLUMNS = ["step", "layer", "unit", "p15", "p50", "p85"]
DRIFT_COLUMNS = ["epoch", "layer", "mean_error", "variance_error"]


def is_bn(layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization | BatchNorm)


def population_stats(model: keras.Model, x, keep: bool = False) -> dict[str, tuple]:
    """Each BN layer's population (mean, biased variance) of its input over the examples x
    (uint8 pixels), the weights fixed, as float64 NumPy arrays keyed by layer name.

    Layer by layer in inference mode, each BN layer normalizing with its population
    statistics before the next one is measured: the statistics precise BN sets. With
    keep=False the moving statistics are put back afterwards, bit for bit.
    """
    saved = [(v, v.numpy()) for v in model.non_trainable_weights]
    stats = {}

    def measure(layer, h):
        if not is_bn(layer):
            return
        axes = list(range(len(h.shape) - 1))
        h64 = tf.cast(h, tf.float64)
        mean = tf.reduce_mean(h64, axis=axes)
        variance = tf.reduce_mean(tf.square(h64 - mean), axis=axes)
        stats[layer.name] = (mean.numpy(), variance.numpy())
        layer.moving_mean.assign(tf.cast(mean, tf.float32))
        layer.moving_variance.assign(tf.cast(variance, tf.float32))
        if getattr(layer, "renorm", False):  # renorm infers with moving_stddev too
            layer.moving_stddev.assign(tf.cast(tf.sqrt(variance + layer.epsilon), tf.float32))

    try:
        walk(model.layers, to_unit(x), before=measure)
    finally:
        if not keep:
            for variable, value in saved:
                variable.assign(value)
    return stats


def precise_bn(model: keras.Model, x) -> None:
    """Set every BN layer's moving statistics to its population statistics over x
    (Wu & Johnson 2021): see `population_stats`."""
    population_stats(model, x, keep=True)


def drift(model: keras.Model, x) -> list[dict]:
    """Per BN layer, how far its moving statistics are from the population statistics of
    the current weights over x (uint8 pixels).

    mean_error: RMS over units of (moving_mean - mean) / sqrt(variance + eps), the shift
    of the layer's normalized output in units of its population standard deviation.
    variance_error: RMS over units of (moving_variance - variance) / (variance + eps).
    Both 0 when the moving statistics are exact.
    """
    population = population_stats(model, x)
    rows = []
    for layer in leaves(model.layers):
        if not is_bn(layer):
            continue
        mean, variance = population[layer.name]
        eps = float(layer.epsilon)
        moving_mean = layer.moving_mean.numpy().astype(np.float64)
        moving_variance = layer.moving_variance.numpy().astype(np.float64)
        mean_error = _rms((moving_mean - mean) / np.sqrt(variance + eps))
        variance_error = _rms((moving_variance - variance) / (variance + eps))
        rows.append({"layer": layer.name, "mean_error": mean_error,
                     "variance_error": variance_error})
    return rows


def activation_inputs(model: keras.Model, x) -> dict[str, np.ndarray]:
    """The input of every Activation layer on x (uint8 pixels) in inference mode, as a
    (values, units) array: a conv layer's positions count as values of its channels."""
    inputs = {}

    def keep(layer, h):
        if isinstance(layer, keras.layers.Activation):
            inputs[layer.name] = tf.cast(h, tf.float32).numpy().reshape(-1, h.shape[-1])

    walk(model.layers, to_unit(x), before=keep)
    return inputs


def percentile_rows(step: int, inputs: dict[str, np.ndarray], units: int) -> list[dict]:
    """p15/p50/p85 per layer for its first `units` units and over all its values."""
    rows = []
    for layer, values in inputs.items():
        columns = [(str(u), values[:, u]) for u in range(min(units, values.shape[1]))]
        for unit, column in [*columns, ("all", values.ravel())]:
            p = np.percentile(column, PERCENTILES)
            rows.append({"step": step, "layer": layer, "unit": unit,
                         "p15": p[0], "p50": p[1], "p85": p[2]})
    return rows


class Recorder:
    """Writes the diagnostics a config asks for into a run folder while `fit` trains.

    fit calls: `cut_to` first, `probe(step)` when the global step is a multiple of
    every_steps, `steps(...)` after each compiled call, `epoch_drift(epoch)` after an
    epoch's training (before precise BN or evaluation touch anything), `epoch_weights`
    before the epoch's checkpoint, `epoch_done(row)` after its row.
    """

    def __init__(self, config: Config, folder: Path, steps, x_train, y_train, x_test, y_test):
        d = config.diagnostics
        self.cfg, self.folder, self.model, self.train_steps = d, folder, steps.model, steps
        probing = d.step_metrics or d.activations or d.grad_norms or d.predictiveness
        self.every = d.every_steps if probing else 0
        self.x_test, self.y_test, self.evaluate = x_test, y_test, steps.evaluate
        self.probe_x = x_test[: d.probe_size]
        batch = config.data.batch_size  # the gradient probes' batch: one step's size
        self.grad_x, self.grad_y = x_train[:batch], y_train[:batch]
        self.drift_x = x_train[: d.drift] if d.drift else None
        self.shifts = shifts.parse_all(config.data.test_shift)
        self.shifted_x = (tf.convert_to_tensor(shifts.apply_all(self.shifts, x_test.numpy()))
                          if self.shifts else None)
        self.batch_stats = config_mod.batch_stats_eval(config)
        self.batch_size = config.data.batch_size
        self.writer = None
        if config.train.tensorboard:
            new = not (folder / "tensorboard").is_dir()  # a resumed run has its session
            self.writer = tf.summary.create_file_writer(str(folder / "tensorboard"))
            if new:
                self._write_hparams(config, folder)
        self._test_at: dict[int, tuple[float, float]] = {}

    def _write_hparams(self, config: Config, folder: Path) -> None:
        """The run's session for TensorBoard's HParams dashboard: its settings (trial id:
        the folder's name); the dashboard's metrics are the epoch scalars (last value)."""
        from tensorboard.plugins.hparams import api as hp

        cell = (runs.read_summary(folder).get("cell") or {}
                if (folder / "summary.json").is_file() else {})
        with self.writer.as_default():
            hp.hparams(hparams_of(config, cell), trial_id=folder.name)
        self.writer.flush()

    def cut_to(self, steps_done: int, epochs_done: int) -> None:
        """Drop rows written after the checkpoint a resumed run starts from. Step 0's and
        epoch 0's rows are written before any checkpoint: a run resumed from none (killed
        in its first epoch) writes them again, so they go too. Then, for a run starting
        from nothing, the weight norms before training (epoch 0)."""
        by_step = {"steps.csv": STEP_COLUMNS, "activations.csv": ACTIVATION_COLUMNS,
                   "grad_norms.csv": probes.GRAD_COLUMNS,
                   "predictiveness.csv": probes.PREDICTIVENESS_COLUMNS}
        for name, columns in by_step.items():
            runs.cut_csv(self.folder / name,
                         lambda r: steps_done > 0 and int(r["step"]) <= steps_done, columns)
        runs.cut_csv(self.folder / "drift.csv", lambda r: int(r["epoch"]) <= epochs_done,
                     DRIFT_COLUMNS)
        runs.cut_csv(self.folder / evals.FILENAME,  # data.test_shift's rows, bnexp eval's
                     lambda r: (r.get("epoch") or "").isdigit() and int(r["epoch"]) <= epochs_done,
                     evals.COLUMNS)
        runs.cut_csv(self.folder / "weight_norms.csv",
                     lambda r: epochs_done > 0 and int(r["epoch"]) <= epochs_done,
                     probes.WEIGHT_COLUMNS)
        if epochs_done == 0:
            self.epoch_weights(0, learning_rate_at(self.train_steps.optimizer, 0))

    def probe(self, step: int) -> None:
        if self.cfg.step_metrics:
            self._test_at[step] = self.evaluate(self.x_test, self.y_test)
            if step == 0:
                self._write_steps([{"step": 0, "epoch": 0}])
        if self.cfg.activations:
            rows = percentile_rows(step, activation_inputs(self.model, self.probe_x),
                                   self.cfg.activation_units)
            runs.append_csv(self.folder / "activations.csv", ACTIVATION_COLUMNS, rows)
        if self.cfg.grad_norms:
            rows = probes.grad_norm_rows(step, self.train_steps, self.grad_x, self.grad_y)
            runs.append_csv(self.folder / "grad_norms.csv", probes.GRAD_COLUMNS, rows)
        if self.cfg.predictiveness:
            lr = learning_rate_at(self.train_steps.optimizer, step)
            rows = probes.predictiveness_rows(step, self.train_steps, self.grad_x, self.grad_y,
                                              lr, self.cfg.predictiveness_scales)
            runs.append_csv(self.folder / "predictiveness.csv", probes.PREDICTIVENESS_COLUMNS,
                            rows)

    def steps(self, epoch: int, first_step: int, per_step: np.ndarray) -> None:
        """per_step: (steps, 2) training loss and accuracy of the steps first_step + 1, ..."""
        if not self.cfg.step_metrics:
            return
        rows = [{"step": first_step + i + 1, "epoch": epoch, "train_loss": loss,
                 "train_acc": acc} for i, (loss, acc) in enumerate(per_step)]
        self._write_steps(rows)

    def _write_steps(self, rows: list[dict]) -> None:
        for row in rows:
            if row["step"] in self._test_at:
                row["test_loss"], row["test_acc"] = self._test_at.pop(row["step"])
        runs.append_csv(self.folder / "steps.csv", STEP_COLUMNS, rows)

    def epoch_drift(self, epoch: int) -> None:
        if self.drift_x is not None:
            rows = [{"epoch": epoch, **row} for row in drift(self.model, self.drift_x)]
            runs.append_csv(self.folder / "drift.csv", DRIFT_COLUMNS, rows)

    def epoch_shifted(self, epoch: int) -> None:
        """data.test_shift: the shifted test set evaluated with the moving statistics (and
        each batch's own, where batch_stats_eval), a row each in eval.csv."""
        if self.shifted_x is None:
            return
        measured = [("population", None, self.evaluate(self.shifted_x, self.y_test))]
        if self.batch_stats:
            measured.append(("batch", self.batch_size, self.train_steps.evaluate_batch_stats(
                self.shifted_x, self.y_test, self.batch_size)))
        for stats, batch, (loss, acc) in measured:
            evals.append(self.folder, {
                "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "epoch": epoch,
                "data": evals.OWN_TEST, "shift": shifts.label_of(self.shifts), "stats": stats,
                "batch_size": batch, "examples": len(self.y_test), "loss": loss, "acc": acc})

    def epoch_weights(self, epoch: int, lr: float) -> None:
        if self.cfg.weight_norms:
            rows = probes.weight_norm_rows(epoch, self.model, lr)
            runs.append_csv(self.folder / "weight_norms.csv", probes.WEIGHT_COLUMNS, rows)

    def epoch_done(self, row: dict) -> None:
        if self.writer is None:
            return
        epoch = row["epoch"]
        with self.writer.as_default():
            for key, value in row.items():
                if key != "epoch" and value is not None and math.isfinite(value):
                    tf.summary.scalar(key, value, step=epoch)
            for layer in leaves(self.model.layers):
                if is_bn(layer):
                    for weight in layer.weights:
                        tf.summary.histogram(f"{layer.name}/{_short(weight)}", weight, step=epoch)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


HPARAM_KEYS = ("seed", "model.arch", "model.activation", "optimizer.name",
               "optimizer.learning_rate", "data.batch_size")


def hparams_of(config: Config, cell: dict) -> dict:
    """A run's hyperparameters for TensorBoard's HParams dashboard: the keys its sweep
    cell varies, every model.bn setting, and a few keys that tell runs apart. Values are
    what HParams takes (bool, int, float, str); null and lists become text."""
    flat = config_mod.flatten(config.model_dump(exclude={"sweep"}))
    keys = [*cell, *(k for k in flat if k.startswith("model.bn.")), *HPARAM_KEYS]
    return {key: _hparam_value(flat.get(key)) for key in dict.fromkeys(keys) if key in flat}


def _hparam_value(value):
    if isinstance(value, bool | int | float | str):
        return value
    return "null" if value is None else str(value)


def _short(weight) -> str:
    return weight.path.rsplit("/", 1)[-1] if hasattr(weight, "path") else weight.name


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values))))
