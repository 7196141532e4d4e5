"""The training loop: epochs of compiled training steps, each followed by an evaluation
in inference mode, a checkpoint and a metrics row. Read `fit` top to bottom.

train_* metrics are averaged over the epoch's steps in training mode (batch
statistics, as the model was before each update); val_* and test_* are measured after
the epoch, over the whole sets, in inference mode (moving statistics); lr is the
learning rate of the epoch's last step (a schedule's, or the constant one). A NaN or
infinite loss stops the run at once: `Diverged`, a result, not a crash.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow import keras

from bnexp.config import Config, batch_stats_eval
from bnexp.data import Splits, epoch_order
from bnexp.model.build import build
from bnexp.reporter import RunReporter
from bnexp.runs import checkpoint
from bnexp.training import distribute, recorders, stop
from bnexp.training.compiled import StepCache, copy_variables, make_steps
from bnexp.training.objective import learning_rate_at
from bnexp.training.steps import Steps


class Diverged(Exception):
    """The loss became NaN or infinite: a result (e.g. too high a learning rate), not a crash."""

    def __init__(self, epoch: int, step: int):
        super().__init__(f"loss became non-finite at epoch {epoch}, step {step}")
        self.epoch, self.step = epoch, step


def new_model(config: Config, input_shape) -> tuple[keras.Model, tf.distribute.Strategy | None]:
    """A fresh Keras session, the run's seed, and its model built (in the strategy's scope
    for a mirrored run): every run and every check starts here."""
    keras.backend.clear_session(free_memory=False)  # gc.collect: 0.2 s a call
    keras.utils.set_random_seed(config.seed)
    strategy = distribute.strategy_for(config)
    with distribute.scope(strategy), precision_policy(config.train.precision):
        return build(config.model, input_shape), strategy


@contextlib.contextmanager
def precision_policy(name: str):
    """Keras' global dtype policy is `name` inside the block (layers take it when they
    are made), and what it was after: a process trains runs of either precision."""
    saved = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(saved)


@dataclass
class Context:
    """What the epoch loop works on: the config, the compiled steps, the data on the
    device (uint8 pixels, a quarter of float32), the data-order RNG, the rows so far."""

    config: Config
    steps: Steps
    splits: Splits
    x_train: tf.Tensor
    y_train: tf.Tensor
    x_val: tf.Tensor
    x_test: tf.Tensor
    order: np.random.Generator
    rows: list[dict]
    reporter: RunReporter
    recorder: recorders.Recorder | None = None


def fit(config: Config, splits: Splits, on_epoch, reporter: RunReporter, model=None,
        folder: Path | None = None, strategy=None, cache: StepCache | None = None
        ) -> keras.Model:
    """Train `config` on `splits`; call on_epoch(row) after each epoch. Raises Diverged.

    Returns the model it was given (or the one it built), trained. With a run folder,
    the state is saved to its checkpoint after every epoch (before on_epoch), training
    continues from a checkpoint already there, and the diagnostics the config asks for
    are written there. A model given with a strategy (mirrored) must have been built in
    its scope (`new_model`). With a cache, an earlier run's compiled steps of the same
    model train in its place and the trained state is copied back (compiled.py).
    """
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    if model is None:
        model, strategy = new_model(config, splits.input_shape)
    keras.utils.set_random_seed(config.seed)
    with distribute.scope(strategy):
        n = len(splits.x_train)  # a schedule counts the run's steps
        steps = (cache.steps_for(config, model, splits.input_shape, strategy, n) if cache
                 else make_steps(config, model, splits.input_shape, strategy, n))
        ctx = _context(config, splits, steps, reporter, folder)
        try:
            for epoch in range(len(ctx.rows) + 1, config.train.epochs + 1):
                row = {"epoch": epoch, **train_epoch(ctx, epoch), **evaluate(ctx)}
                ctx.rows.append(row)
                if folder is not None:
                    ctx.recorder.epoch_weights(epoch, row["lr"])
                    checkpoint.save(folder / checkpoint.FILENAME, steps.model, steps.optimizer,
                                    ctx.order, ctx.rows)
                    ctx.recorder.epoch_done(row)
                on_epoch(row)
        finally:
            if ctx.recorder is not None:
                ctx.recorder.close()
    if steps.model is not model:
        copy_variables(steps.model.variables, model.variables)
    if steps.fallback:
        reporter.note(steps.fallback)
    return model


def _context(config, splits, steps, reporter, folder) -> Context:
    """The loop's context; from the run folder's checkpoint where there is one."""
    order = np.random.default_rng(config.seed)  # the data order, one permutation per epoch
    rows = []
    if folder is not None and (folder / checkpoint.FILENAME).exists():
        rows = checkpoint.restore(folder / checkpoint.FILENAME, steps.model, steps.optimizer,
                                  order)
    x_val, x_test = (tf.convert_to_tensor(x, tf.uint8) for x in (splits.x_val, splits.x_test))
    ctx = Context(config, steps, splits, tf.convert_to_tensor(splits.x_train, tf.uint8),
                  tf.convert_to_tensor(splits.y_train, tf.int32), x_val, x_test, order, rows,
                  reporter)
    if folder is not None:
        ctx.recorder = recorders.Recorder(config, folder, steps, ctx.x_train, ctx.y_train,
                                          x_test, splits.y_test)
        ctx.recorder.cut_to(int(steps.optimizer.iterations.numpy()), len(rows))
    return ctx


def train_epoch(ctx: Context, epoch: int) -> dict:
    """One pass over the training set in compiled calls of up to steps_per_call steps;
    the host syncs once per call. Returns the epoch's train_* metrics, timing, and the
    learning rate of its last step."""
    steps, recorder = ctx.steps, ctx.recorder
    every = recorder.every if recorder else 0
    n = len(ctx.splits.x_train)
    first = int(steps.optimizer.iterations.numpy())
    perm = epoch_order(ctx.order, n, ctx.config.data.shuffle_buffer)
    chunks = batch_chunks(perm, ctx.config.data.batch_size,
                          ctx.config.train.steps_per_call, first, every, steps.smallest_batch)
    ctx.reporter.epoch_started(epoch, sum(len(c) for c in chunks))
    if every and first == 0:
        recorder.probe(0)
    start, done = time.perf_counter(), 0
    for chunk in chunks:
        per_step = steps.train_many(ctx.x_train, ctx.y_train, chunk).numpy()  # (steps, 2)
        stop.check()
        bad = int(steps.first_bad.numpy())
        if bad >= 0:
            raise Diverged(epoch, bad - first + 1)
        if every:
            if (first + done + len(chunk)) % every == 0:
                recorder.probe(first + done + len(chunk))
            recorder.steps(epoch, first + done, per_step.tolist())
        done += len(chunk)
        ctx.reporter.step(epoch, done, float(per_step[-1, 0]))
    train_loss, train_acc = steps.take_sums()
    seconds = time.perf_counter() - start
    last = int(steps.optimizer.iterations.numpy()) - 1
    return {"train_loss": train_loss, "train_acc": train_acc, "seconds": seconds,
            "samples_per_sec": n / seconds, "lr": learning_rate_at(steps.optimizer, last)}


def evaluate(ctx: Context) -> dict:
    """After an epoch's training: drift (before anything touches the moving statistics),
    precise BN where asked, then val_* and test_* in inference mode, test_*_batchstats
    with batch statistics where asked, and data.test_shift's rows of eval.csv."""
    config, steps, splits = ctx.config, ctx.steps, ctx.splits
    start = time.perf_counter()
    if ctx.recorder is not None:
        ctx.recorder.epoch_drift(len(ctx.rows) + 1)
    if config.train.precise_bn:
        recorders.precise_bn(steps.model, ctx.x_train[: config.train.precise_bn])
    val_loss, val_acc = steps.evaluate(ctx.x_val, splits.y_val)
    test_loss, test_acc = steps.evaluate(ctx.x_test, splits.y_test)
    row = {"val_loss": val_loss, "val_acc": val_acc, "test_loss": test_loss,
           "test_acc": test_acc}
    if batch_stats_eval(config):
        loss, acc = steps.evaluate_batch_stats(ctx.x_test, splits.y_test, config.data.batch_size)
        row.update(test_loss_batchstats=loss, test_acc_batchstats=acc)
    if ctx.recorder is not None:
        ctx.recorder.epoch_shifted(len(ctx.rows) + 1)
    return {**row, "eval_seconds": time.perf_counter() - start}


def batch_chunks(perm: np.ndarray, batch: int, per_call: int, first_step: int = 0,
                 every: int = 0, smallest: int = 1) -> list[np.ndarray]:
    """An epoch's order cut into (steps, batch) index arrays of up to per_call steps each;
    a last partial batch gets a chunk of its own, unless it has fewer than `smallest`
    examples (mirrored: one per replica; an empty slice would break the step). With
    `every`, a chunk also ends at each global step that is a multiple of it (the epoch
    starts after step first_step), so a probe can run there."""
    full = len(perm) // batch
    batches = perm[: full * batch].reshape(full, batch).astype(np.int32)
    chunks, i = [], 0
    while i < full:
        end = min(i + per_call, full)
        if every:
            end = min(end, ((first_step + i) // every + 1) * every - first_step)
        chunks.append(batches[i:end])
        i = end
    if len(perm) % batch >= smallest:
        chunks.append(perm[full * batch :].astype(np.int32)[None])
    return chunks
