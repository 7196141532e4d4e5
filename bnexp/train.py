"""Training: a tf.function GradientTape step, an inference-mode evaluation, the epoch loop.

The two modes are the whole point of BN experiments, so they are explicit:
`train_step` calls the model with training=True (batch statistics, moving
averages updated) and `evaluate` with training=False (moving statistics, nothing
updated). train_* metrics are averaged over the epoch's steps in training mode;
val_* and test_* are measured after the epoch, over the full sets, in inference
mode. A NaN or infinite loss stops the run at once with status "diverged".
"""

from __future__ import annotations

import math
import os
import platform
import socket
import subprocess
import time
import traceback
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow import keras

import bnexp
from bnexp import checkpoint, diagnostics, distribute, models, runs, stop, xla
from bnexp import config as config_mod
from bnexp import data as data_mod
from bnexp.config import Config, OptimizerConfig, RunSpec
from bnexp.errors import BadInput
from bnexp.runs import Outcome

EVAL_BYTES = 32 * 2**20  # an inference call's widest activation: see eval_batch_size
XLA_BY_DEFAULT = {"mlp": True, "lenet": "except_conv"}  # measured: benchmarks/throughput.py


class Steps:
    """The compiled train and eval steps of one model, with on-device metric sums.

    Data stays on the device as uint8 pixels; a call gathers its batches by index and
    scales them to [0, 1] there. `train_many` runs several steps per call: Python and
    the TensorFlow runtime are paid once per call, not once per step. jit_compile True
    XLA-compiles the whole steps; "except_conv" compiles the model's layers between its
    convolutions (bnexp/xla.py). Where XLA cannot compile them, they fall back to plain
    tf.function (recorded in `self.fallback`).
    """

    def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer, input_shape,
                 jit_compile: bool | str = False):
        self.model, self.optimizer = model, optimizer
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        # [sum of loss * batch, correct predictions, examples] since the last reset
        self.sums = tf.Variable(tf.zeros(3), trainable=False)
        # the optimizer iteration at which the loss first became NaN or infinite; -1: never
        self.first_bad = tf.Variable(tf.constant(-1, tf.int64), trainable=False)
        self.input_shape, self.fallback = tuple(input_shape), None
        self.eval_batch = eval_batch_size(model)
        self._xla_ran = False  # the first train_many call with XLA succeeded
        self._compile(jit_compile)

    def _compile(self, jit_compile: bool | str) -> None:
        self.jit_compile = jit_compile
        self.forward = (xla.forward_except_conv(self.model) if jit_compile == "except_conv"
                        else self._plain_forward)
        jit_compile = jit_compile is True
        images = tf.TensorSpec((None, *self.input_shape), tf.uint8)
        labels = tf.TensorSpec((None,), tf.int32)
        chunk = tf.TensorSpec((None, None), tf.int32)
        self._train_many = tf.function(self.eager_train_many, jit_compile=jit_compile,
                                       input_signature=[images, labels, chunk])
        self._eval_step = tf.function(self.eager_eval_step, jit_compile=jit_compile,
                                      input_signature=[images, labels])
        self._batch_stats_step = tf.function(self.eager_batch_stats_step,
                                             jit_compile=jit_compile,
                                             input_signature=[images, labels])

    def _plain_forward(self, x, training: bool):
        return self.model(x, training=training)

    def eager_train_step(self, x, y):
        """One SGD step in training mode on uint8 pixels x; returns the batch's
        [mean loss, accuracy] (training mode: as the model was before the update)."""
        x = tf.cast(x, tf.float32) / 255.0
        with tf.GradientTape() as tape:
            logits = self.forward(x, True)
            loss = self.loss_fn(y, logits)
            total = loss + tf.add_n(self.model.losses) if self.model.losses else loss
        bad = tf.logical_and(tf.logical_not(tf.math.is_finite(total)), self.first_bad < 0)
        iteration = tf.cast(tf.convert_to_tensor(self.optimizer.iterations), tf.int64)
        self.first_bad.assign(tf.where(bad, iteration, self.first_bad))
        grads = tape.gradient(total, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables, strict=True))
        sums = _batch_sums(loss, logits, y)
        self.sums.assign_add(sums)
        return tf.stack([loss, sums[1] / sums[2]])

    def eager_train_many(self, x_all, y_all, chunk):
        """One training step per row of `chunk` (indices into x_all); returns the (steps, 2)
        [mean loss, accuracy] of each step's batch."""
        n = tf.shape(chunk)[0]
        per_step = tf.TensorArray(tf.float32, size=n, element_shape=(2,))
        for i in tf.range(n):
            per_step = per_step.write(
                i, self.eager_train_step(tf.gather(x_all, chunk[i]), tf.gather(y_all, chunk[i])))
        return per_step.stack()

    def train_many(self, x_all, y_all, chunk):
        """The compiled train_many. If XLA fails in the first call, the variables that call
        may already have changed are put back and the steps recompiled without XLA.

        The trap: with except_conv, a failing piece stops the call part way, after other
        pieces ran (input BN moved its statistics, the iteration count went up), so
        "nothing happened yet" must be restored, not assumed."""
        if not self.jit_compile or self._xla_ran:
            return self._train_many(x_all, y_all, chunk)
        self.optimizer.build(self.model.trainable_variables)  # its variables exist now
        state = [*self.model.variables, *self.optimizer.variables, self.sums, self.first_bad]
        saved = [v.numpy() for v in state]
        try:
            result = self._train_many(x_all, y_all, chunk)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
            for variable, value in zip(state, saved, strict=True):
                variable.assign(value)
            self.fallback = f"XLA could not compile the step ({type(e).__name__}); without XLA"
            self._compile(False)
            return self._train_many(x_all, y_all, chunk)
        self._xla_ran = True
        return result

    def train_step(self, x, y):
        """One compiled training step on a single batch (uint8 pixels): [loss, accuracy]."""
        x = tf.convert_to_tensor(x, tf.uint8)
        index = tf.range(tf.shape(x)[0])[None]
        return self.train_many(x, tf.convert_to_tensor(y, tf.int32), index)[0]

    def eager_eval_step(self, x, y):
        """Loss and accuracy sums of one batch in inference mode; changes no variable."""
        logits = self.forward(tf.cast(x, tf.float32) / 255.0, False)
        return _batch_sums(self.loss_fn(y, logits), logits, y)

    def eager_batch_stats_step(self, x, y):
        """Loss and accuracy sums of one batch with BN on its batch statistics (training
        mode). The trap: that also moves the moving statistics; evaluate_batch_stats puts
        them back."""
        logits = self.forward(tf.cast(x, tf.float32) / 255.0, True)
        return _batch_sums(self.loss_fn(y, logits), logits, y)

    def evaluate_batch_stats(self, x, y, batch: int) -> tuple[float, float]:
        """(mean loss, accuracy) over a set with batch statistics, in batches of `batch`;
        every non-trainable variable (the moving statistics) is restored bit for bit."""
        if len(x) == 0:
            return math.nan, math.nan
        saved = [v.numpy() for v in self.model.non_trainable_weights]
        x, y = tf.convert_to_tensor(x, tf.uint8), tf.convert_to_tensor(y, tf.int32)
        total = tf.zeros(3)
        try:
            for i in range(0, int(x.shape[0]), batch):
                total += self._batch_stats_step(x[i : i + batch], y[i : i + batch])
        finally:
            for variable, value in zip(self.model.non_trainable_weights, saved, strict=True):
                variable.assign(value)
        loss_sum, correct, n = total.numpy()
        return float(loss_sum / n), float(correct / n)

    def take_sums(self) -> tuple[float, float]:
        """(mean loss, accuracy) since the last call, and reset."""
        loss_sum, correct, n = self.sums.numpy()
        self.sums.assign(tf.zeros(3))
        return float(loss_sum / max(n, 1)), float(correct / max(n, 1))

    def evaluate(self, x, y) -> tuple[float, float]:
        """(mean loss, accuracy) over a whole set in inference mode; NaN for an empty set."""
        if len(x) == 0:
            return math.nan, math.nan
        x, y = tf.convert_to_tensor(x, tf.uint8), tf.convert_to_tensor(y, tf.int32)
        total = tf.zeros(3)
        step = self.eval_batch
        for i in range(0, int(x.shape[0]), step):
            total += self._eval_step(x[i : i + step], y[i : i + step])
        loss_sum, correct, n = total.numpy()
        return float(loss_sum / n), float(correct / n)


class MirroredSteps(Steps):
    """Steps whose training step splits each batch across a MirroredStrategy's replicas.

    Every replica receives the whole gathered batch and takes its own slice by replica
    id (an uneven batch splits as evenly as it can); its loss is the sum over its slice
    divided by the global batch size, and the optimizer sums the replicas' gradients:
    the one-device update. Evaluation and the diagnostics run the model outside the
    replicas, on the mirrored weights, as on one device.
    """

    def __init__(self, model, optimizer, input_shape, strategy: tf.distribute.Strategy):
        self.strategy = strategy
        self.per_example_loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction=None)
        super().__init__(model, optimizer, input_shape, jit_compile=False)

    def eager_train_step(self, x, y):
        x = tf.cast(x, tf.float32) / 255.0
        per_replica = self.strategy.run(self._replica_step, args=(x, y))
        sums = self.strategy.reduce("SUM", per_replica, axis=None)  # [loss sum, hits, n]
        loss = sums[0] / sums[2]
        bad = tf.logical_and(tf.logical_not(tf.math.is_finite(loss)), self.first_bad < 0)
        iteration = tf.cast(tf.convert_to_tensor(self.optimizer.iterations), tf.int64) - 1
        self.first_bad.assign(tf.where(bad, iteration, self.first_bad))
        self.sums.assign_add(sums)
        return tf.stack([loss, sums[1] / sums[2]])

    def _replica_step(self, x, y):
        context = tf.distribute.get_replica_context()
        i, k = context.replica_id_in_sync_group, context.num_replicas_in_sync
        n = tf.shape(x)[0]
        start, end = n * i // k, n * (i + 1) // k
        xs, ys = x[start:end], y[start:end]
        with tf.GradientTape() as tape:
            logits = self.model(xs, training=True)
            per_example = self.per_example_loss(ys, logits)
            total = tf.reduce_sum(per_example) / tf.cast(n, tf.float32)
            if self.model.losses:
                total += tf.add_n(self.model.losses) / k
        grads = tape.gradient(total, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables, strict=True))
        hits = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), ys)
        return tf.stack([tf.reduce_sum(per_example), tf.reduce_sum(tf.cast(hits, tf.float32)),
                         tf.cast(end - start, tf.float32)])


def eval_batch_size(model: keras.Model) -> int:
    """Examples per inference call: as many as keep the model's widest layer output under
    EVAL_BYTES in float32, between 1,000 and 10,000. Bigger calls spread each call's fixed
    cost (MLP: 40 ms per 10,000 test examples in one call, 57 ms in calls of 1,000);
    the cap keeps the memory peak small. In inference mode results do not depend on it."""
    widest = max(math.prod(layer.output.shape[1:]) for layer in model.layers)
    return int(min(10_000, max(1_000, EVAL_BYTES // (4 * widest))))


def make_steps(config: Config, model, input_shape, strategy=None) -> Steps:
    """The Steps of a run: on one device, or split across the strategy's replicas."""
    optimizer = make_optimizer(config.optimizer)
    if strategy is not None:
        return MirroredSteps(model, optimizer, input_shape, strategy)
    return Steps(model, optimizer, input_shape, jit_compile=xla_mode(config))


def batch_chunks(perm: np.ndarray, batch: int, per_call: int, first_step: int = 0,
                 every: int = 0) -> list[np.ndarray]:
    """An epoch's order cut into (steps, batch) index arrays of up to per_call steps each;
    a last partial batch gets a chunk of its own. With `every`, a chunk also ends at each
    global step that is a multiple of it (the epoch starts after step first_step), so a
    probe can run there."""
    full = len(perm) // batch
    batches = perm[: full * batch].reshape(full, batch).astype(np.int32)
    chunks, i = [], 0
    while i < full:
        end = min(i + per_call, full)
        if every:
            end = min(end, ((first_step + i) // every + 1) * every - first_step)
        chunks.append(batches[i:end])
        i = end
    if len(perm) % batch:
        chunks.append(perm[full * batch :].astype(np.int32)[None])
    return chunks


def _batch_sums(mean_loss, logits, y):
    n = tf.cast(tf.shape(y)[0], tf.float32)
    hits = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), y), tf.float32)
    return tf.stack([mean_loss * n, tf.reduce_sum(hits), n])


def make_optimizer(cfg: OptimizerConfig) -> keras.optimizers.Optimizer:
    if cfg.name == "sgd":
        return keras.optimizers.SGD(learning_rate=cfg.learning_rate, momentum=cfg.momentum)
    if cfg.name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=cfg.learning_rate, momentum=cfg.momentum)
    return keras.optimizers.Adam(learning_rate=cfg.learning_rate)


class Diverged(Exception):
    """The loss became NaN or infinite: a result (e.g. too high a learning rate), not a crash."""

    def __init__(self, epoch: int, step: int):
        super().__init__(f"loss became non-finite at epoch {epoch}, step {step}")
        self.epoch, self.step = epoch, step


def fit(config: Config, splits: data_mod.Splits, on_epoch, reporter, model=None,
        folder: Path | None = None, strategy=None):
    """Train `config` on `splits`; call on_epoch(row) after each epoch. Raises Diverged.

    With a run folder, the state is saved to its checkpoint after every epoch (before
    on_epoch), training continues from a checkpoint already there, and the diagnostics
    the config asks for are written there. A model given with a strategy (mirrored) must
    have been built in its scope.
    """
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    if model is None:
        strategy = distribute.strategy_for(config)
        with distribute.scope(strategy):
            model = models.build(config.model, splits.input_shape)
    with distribute.scope(strategy):
        return _fit(config, splits, on_epoch, reporter, model, folder,
                    make_steps(config, model, splits.input_shape, strategy))


def _fit(config, splits, on_epoch, reporter, model, folder, steps):
    order = np.random.default_rng(config.seed)  # the data order, one permutation per epoch
    rows = []
    checkpoint_path = folder / checkpoint.FILENAME if folder is not None else None
    if checkpoint_path is not None and checkpoint_path.exists():
        rows = checkpoint.restore(checkpoint_path, model, steps.optimizer, order)
    # on the device once per run, as uint8: a quarter of the float32 dataset
    x_train = tf.convert_to_tensor(splits.x_train, tf.uint8)
    y_train = tf.convert_to_tensor(splits.y_train, tf.int32)
    x_val, x_test = (tf.convert_to_tensor(x, tf.uint8) for x in (splits.x_val, splits.x_test))
    recorder = None
    if folder is not None:
        recorder = diagnostics.Recorder(config, folder, model, x_train, x_test, splits.y_test,
                                        steps.evaluate)
        recorder.cut_to(int(steps.optimizer.iterations.numpy()), len(rows))
    try:
        _epochs(config, splits, steps, order, rows, on_epoch, reporter, recorder,
                x_train, y_train, x_val, x_test)
    finally:
        if recorder is not None:
            recorder.close()
    if steps.fallback:
        reporter.note(steps.fallback)
    return model


def _epochs(config, splits, steps, order, rows, on_epoch, reporter, recorder,
            x_train, y_train, x_val, x_test):
    """fit's epoch loop, from the epoch after the last of `rows`."""
    model, folder = steps.model, recorder.folder if recorder else None
    every = recorder.every if recorder else 0
    batch, n = config.data.batch_size, len(splits.x_train)
    for epoch in range(len(rows) + 1, config.train.epochs + 1):
        perm = order.permutation(n)
        first_iteration, done = int(steps.optimizer.iterations.numpy()), 0
        chunks = batch_chunks(perm, batch, config.train.steps_per_call, first_iteration, every)
        reporter.epoch_started(epoch, sum(len(c) for c in chunks))
        if every and first_iteration == 0:
            recorder.probe(0)
        start = time.perf_counter()
        for chunk in chunks:
            per_step = steps.train_many(x_train, y_train, chunk).numpy()  # (steps, 2)
            stop.check()
            bad = int(steps.first_bad.numpy())  # host syncs once per call, not per step
            if bad >= 0:
                raise Diverged(epoch, bad - first_iteration + 1)
            if every:
                at = first_iteration + done + len(chunk)
                if at % every == 0:
                    recorder.probe(at)
                recorder.steps(epoch, first_iteration + done, per_step.tolist())
            done += len(chunk)
            reporter.step(epoch, done, float(per_step[-1, 0]))
        train_loss, train_acc = steps.take_sums()
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        if recorder is not None:
            recorder.epoch_drift(epoch)
        if config.train.precise_bn:
            diagnostics.precise_bn(model, x_train[: config.train.precise_bn])
        val_loss, val_acc = steps.evaluate(x_val, splits.y_val)
        test_loss, test_acc = steps.evaluate(x_test, splits.y_test)
        gap = {}
        if config.diagnostics.batch_stats_eval:
            loss_b, acc_b = steps.evaluate_batch_stats(x_test, splits.y_test, batch)
            gap = {"test_loss_batchstats": loss_b, "test_acc_batchstats": acc_b}
        rows.append({
            "epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
            "val_loss": val_loss, "val_acc": val_acc,
            "test_loss": test_loss, "test_acc": test_acc,
            "seconds": seconds, "samples_per_sec": n / seconds,
            "eval_seconds": time.perf_counter() - start, **gap,
        })
        if folder is not None:
            checkpoint.save(folder / checkpoint.FILENAME, model, steps.optimizer, order, rows)
            recorder.epoch_done(rows[-1])
        on_epoch(rows[-1])


def xla_mode(config: Config) -> bool | str:
    """train.jit_compile resolved: True, False or "except_conv". auto picks what was
    measured faster for the architecture, and never XLA for a mirrored run."""
    if config.train.strategy == "mirrored":
        return False
    if config.train.jit_compile == "auto":
        return XLA_BY_DEFAULT[config.model.arch]
    return config.train.jit_compile


# ---------------------------------------------------------------- runs


def run_one(spec: RunSpec, splits: data_mod.Splits, runs_dir: Path, reporter) -> Outcome:
    """One run in a new folder under runs_dir. Never raises for a failing run: it is recorded."""
    config = spec.config
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    strategy = distribute.strategy_for(config)
    with distribute.scope(strategy):
        model = models.build(config.model, splits.input_shape)
    path = runs.create(runs_dir, spec.label)
    folder = runs.RunFolder(path)
    summary = _initial_summary(spec, splits, model, path)
    folder.write_summary(summary)  # first: a reader never sees a run folder without one
    folder.write_config(config_mod.to_yaml(config))
    folder.start_metrics()
    folder.log(f"started {path.name}: {splits.source}, {summary['data']}")
    return _execute(config, splits, folder, summary, model, [], reporter, strategy)


def resume_run(path: Path, splits: data_mod.Splits | None, reporter) -> Outcome:
    """Continue an interrupted or failed run in its own folder from its last checkpoint.

    metrics.csv is first made to agree with the checkpoint: a torn last line, or a row
    written after the checkpoint's epoch, goes; rows the checkpoint has and the file
    lacks are appended. So the file ends with no gap and no duplicate.
    """
    folder = runs.RunFolder(path)
    summary, config = resumable(path)
    if splits is None:
        splits = data_mod.load(config.data, str(path / "config.yaml"))
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    strategy = distribute.strategy_for(config)
    with distribute.scope(strategy):
        model = models.build(config.model, splits.input_shape)
    ckpt = path / checkpoint.FILENAME
    rows = checkpoint.rows(ckpt) if ckpt.exists() else []
    runs.repair_metrics(path, rows)
    summary.update(status="running", error=None, pid=os.getpid(), host=socket.gethostname(),
                   epochs_done=len(rows))
    summary.setdefault("resumed", []).append({"at": _now(), "from_epoch": len(rows)})
    folder.write_summary(summary)
    folder.log(f"resumed after epoch {len(rows)}")
    return _execute(config, splits, folder, summary, model, rows, reporter, strategy)


def resumable(path: Path) -> tuple[dict, Config]:
    """(summary, config) of a run that can be resumed; BadInput saying why one cannot."""
    if not (path / "summary.json").is_file():
        raise BadInput(f"{path}: --resume: not a run folder (no summary.json)")
    summary = runs.read_summary(path)
    status = runs.effective_status(summary)
    if status == "running":
        raise BadInput(f"{path}: --resume: still running (pid {summary.get('pid')} on "
                       f"{summary.get('host')})")
    (spec,) = config_mod.load(path / "config.yaml")
    if config_mod.config_hash(spec.config) != summary.get("config_hash"):
        raise BadInput(f"{path}/config.yaml: --resume: the config changed since the run "
                       "started; start a new run instead")
    return summary, spec.config


def _execute(config, splits, folder: runs.RunFolder, summary: dict, model, rows: list[dict],
             reporter, strategy=None) -> Outcome:
    """Train to the end, keeping metrics.csv, checkpoint and summary.json up to date."""
    t0 = time.time() - (summary.get("wall_seconds") or 0.0)
    reporter.run_started(folder.path, config.train.epochs)

    def on_epoch(row):
        rows.append(row)
        folder.append_metrics(row)
        summary.update(epochs_done=row["epoch"], final=_metrics(row), best=runs.best_of(rows),
                       bn_gap=bn_gap(row))
        folder.write_summary(summary)
        reporter.epoch_done(row)

    try:
        fit(config, splits, on_epoch, reporter, model=model, folder=folder.path,
            strategy=strategy)
        summary["status"] = "completed"
    except Diverged as e:
        summary.update(status="diverged", diverged_at={"epoch": e.epoch, "step": e.step})
        folder.log(str(e))
    except Exception as e:  # noqa: BLE001 - a failing run is recorded, the sweep goes on
        summary.update(status="failed", error=f"{type(e).__name__}: {e}")
        folder.log("failed:\n" + traceback.format_exc())
    except KeyboardInterrupt:
        summary["status"] = "interrupted"
        _finish(summary, folder, t0)
        raise
    _finish(summary, folder, t0)
    reporter.run_done(folder.path, summary)
    return Outcome(folder.path, summary["status"])


def check_buildable(models_and_shapes, source: str) -> None:
    """BadInput if a (ModelConfig, input shape) cannot be built, e.g. a kernel too big."""
    for model_cfg, shape in models_and_shapes:
        try:
            models.build(model_cfg, shape)
        except ValueError as e:
            first = str(e).strip().splitlines()[0]
            raise BadInput(
                f"{source}: model: cannot build {model_cfg.arch} on inputs of shape "
                f"{tuple(shape)} (check kernel_size, filters, data.pad_to): {first}"
            ) from None
        finally:
            keras.backend.clear_session()


def _initial_summary(spec: RunSpec, splits, model, path: Path) -> dict:
    return {
        "run_id": path.name,
        "status": "running",
        "epochs_done": 0,
        "epochs": spec.config.train.epochs,
        "seed": spec.config.seed,
        "config_hash": config_mod.config_hash(spec.config),
        "cell": spec.cell,
        "config": spec.config.model_dump(exclude={"sweep"}),
        "params": models.param_counts(model),
        "data": {"source": splits.source, "train": len(splits.x_train),
                 "validation": len(splits.x_val), "test": len(splits.x_test)},
        "final": {},
        "best": {},
        "started": _now(),
        "ended": None,
        "wall_seconds": None,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "versions": {"bnexp": bnexp.__version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__, "python": platform.python_version(),
                     "numpy": np.__version__},
        "git_commit": _git_commit(),
        "error": None,
    }


def _finish(summary: dict, folder: runs.RunFolder, t0: float) -> None:
    summary["ended"] = _now()
    summary["wall_seconds"] = round(time.time() - t0, 3)
    summary["peak_rss_mb"] = peak_rss_mb()
    folder.write_summary(summary)
    folder.log(f"{summary['status']} after {summary['epochs_done']} epochs")


GAP_WARNING = 0.05  # test accuracy points between batch and moving statistics


def bn_gap(row: dict) -> dict | None:
    """The train/inference gap of the last epoch, with a note when it is large."""
    batch_acc = row.get("test_acc_batchstats")
    if batch_acc is None or not math.isfinite(batch_acc):
        return None
    gap = batch_acc - row["test_acc"]
    note = None
    if gap > GAP_WARNING:
        note = (f"test accuracy is {gap:.3f} higher with batch statistics than with the "
                "moving statistics: the moving averages lag (lower model.bn.momentum or "
                "train longer)")
    return {"test_acc_batchstats": batch_acc, "test_acc": row["test_acc"], "gap": gap,
            "note": note}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _metrics(row: dict) -> dict:
    return {k: row.get(k) for k in runs.METRIC_COLUMNS if k != "epoch"}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _git_commit() -> str | None:
    """The commit of the bnexp source tree, where it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
