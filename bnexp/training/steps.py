"""The compiled steps of one model: training (training=True) and evaluation
(training=False), with on-device metric sums and the XLA fallback.

The two modes are the whole point of BN experiments, so they are explicit:
`train_step_body` calls the model with training=True (batch statistics, moving
averages updated), `sums_many_body` with training=False (moving statistics, nothing
updated). The `*_body` methods are what the compiled steps are traced from (a test
calls them eagerly to check the compiled step against them). The trap: anything else
that calls a BN model with training=True (the batch-statistics evaluation) also moves
its moving averages; it puts them back.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tensorflow as tf
from tensorflow import keras

from bnexp.model.build import to_unit
from bnexp.training import xla
from bnexp.training.objective import Loss, Update

EVAL_BYTES = 32 * 2**20  # an inference call's widest activation: see eval_batch_size


class Steps:
    """The compiled train and eval steps of one model, with on-device metric sums.

    Data stays on the device as uint8 pixels; a call gathers its batches by index and
    scales them to [0, 1] there. `train_many` runs several steps per call: Python and
    the TensorFlow runtime are paid once per call, not once per step. jit_compile True
    XLA-compiles the whole steps; "except_conv" compiles the model's layers between its
    convolutions (bnexp/training/xla.py). Where XLA cannot compile them, they fall back to plain
    tf.function (recorded in `self.fallback`).
    """

    smallest_batch = 1  # the fewest examples a training step can take

    def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer, input_shape,
                 jit_compile: bool | str = False, loss: Loss | None = None,
                 update: Update | None = None):
        self.model, self.optimizer = model, optimizer
        self.loss_fn = loss or Loss()
        # what a step updates (default: every trainable variable; train.trainable may
        # freeze some) and train.l2; the optimizer is built on those variables now
        self.update = update or Update.of(model)
        self.update.prepare(optimizer)
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
        # autograph=False: the steps have no Python control flow on tensors (the loop is
        # tf.while_loop), and not converting them halves the tracing time (LeNet: 0.53 -> 0.23 s)
        compile_ = dict(jit_compile=jit_compile, autograph=False)
        self._train_many = tf.function(self.train_many_body, **compile_,
                                       input_signature=[images, labels, chunk])
        weights = tf.TensorSpec((None, None), tf.float32)
        self._eval_many, self._batch_stats_many = (
            tf.function(functools.partial(self.sums_many_body, training=training), **compile_,
                        input_signature=[images, labels, chunk, weights])
            for training in (False, True))

    def _plain_forward(self, x, training: bool, random: bool):
        if random or not training:
            return self.model(x, training=training)
        return xla.call_layers(self.model.layers, x, training, random)

    def _logits(self, x, training: bool, random: bool | None = None):
        """The model's outputs on uint8 pixels x, in float32 whatever the model computes
        in (train.precision: mixed_bfloat16 gives bfloat16): loss and accuracy in float32.
        random (default: training): dropout and noise layers on; off, training mode is
        the normalizations' only (the batch-statistics evaluation)."""
        random = training if random is None else random
        return tf.cast(self.forward(to_unit(x), training, random), tf.float32)

    def train_step_body(self, x, y):
        """One SGD step in training mode on uint8 pixels x; returns the batch's
        [mean loss, accuracy] (training mode: as the model was before the update)."""
        with tf.GradientTape() as tape:
            logits = self._logits(x, True)
            loss = self.loss_fn(y, logits)
            total = loss + tf.add_n(self.model.losses) if self.model.losses else loss
            if self.update.l2 and self.update.kernels:
                total += self.update.penalty()
        self._mark_divergence(total, self.optimizer.iterations)
        grads = tape.gradient(total, self.update.variables)
        self.optimizer.apply_gradients(zip(grads, self.update.variables, strict=True))
        sums = _batch_sums(loss, logits, y)
        self.sums.assign_add(sums)
        return tf.stack([loss, sums[1] / sums[2]])

    def _mark_divergence(self, loss, iteration) -> None:
        """Record `iteration` (the step's optimizer iteration before its update) as the
        first divergence if loss is NaN or infinite and none was recorded yet."""
        bad = tf.logical_and(tf.logical_not(tf.math.is_finite(loss)), self.first_bad < 0)
        iteration = tf.cast(tf.convert_to_tensor(iteration), tf.int64)
        self.first_bad.assign(tf.where(bad, iteration, self.first_bad))

    def train_many_body(self, x_all, y_all, chunk):
        """One training step per row of `chunk` (indices into x_all); returns the (steps, 2)
        [mean loss, accuracy] of each step's batch."""
        n = tf.shape(chunk)[0]

        def step(i, per_step):
            one = self.train_step_body(tf.gather(x_all, chunk[i]), tf.gather(y_all, chunk[i]))
            return i + 1, per_step.write(i, one)

        per_step = tf.TensorArray(tf.float32, size=n, element_shape=(2,))
        _, per_step = tf.while_loop(lambda i, _: i < n, step, (tf.constant(0), per_step))
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

    def sums_many_body(self, x_all, y_all, chunk, weights, training: bool):
        """[loss sum, correct predictions, examples] over the batches of `chunk` (one row of
        indices into x_all per batch), each example counted with its 0/1 weight (a padded
        last batch). training=False: inference mode, changes no variable; training=True:
        BN on each batch's statistics, which also moves the moving statistics (the trap:
        evaluate_batch_stats puts them back); dropout and noise stay off either way. One
        call for a whole set: the host and the TensorFlow runtime are paid once, not once
        per batch."""

        def batch(i, total):
            x, y, w = tf.gather(x_all, chunk[i]), tf.gather(y_all, chunk[i]), weights[i]
            logits = self._logits(x, training, random=False)
            hits = correct(logits, y)
            per_example = self.loss_fn.per_example(y, logits)
            return i + 1, total + tf.stack([tf.reduce_sum(per_example * w),
                                            tf.reduce_sum(hits * w), tf.reduce_sum(w)])

        # one batch at a time: the eval batch size is what bounds the memory peak
        return tf.while_loop(lambda i, _: i < tf.shape(chunk)[0], batch,
                             (tf.constant(0), tf.zeros(3)), parallel_iterations=1)[1]

    def evaluate_batch_stats(self, x, y, batch: int) -> tuple[float, float]:
        """(mean loss, accuracy) over a set with batch statistics, in batches of `batch`
        (the last one smaller, as in training); every non-trainable variable (the moving
        statistics) is restored bit for bit."""
        if len(x) == 0:
            return math.nan, math.nan
        saved = [v.numpy() for v in self.model.non_trainable_weights]
        x, y = tf.convert_to_tensor(x, tf.uint8), tf.convert_to_tensor(y, tf.int32)
        n, total = len(x), tf.zeros(3)
        full = n // batch
        parts = [np.arange(full * batch, dtype=np.int32).reshape(full, batch),
                 np.arange(full * batch, n, dtype=np.int32)[None]]
        try:
            for chunk in parts:
                if chunk.size:
                    total += self._batch_stats_many(x, y, chunk, np.ones(chunk.shape, np.float32))
        finally:
            for variable, value in zip(self.model.non_trainable_weights, saved, strict=True):
                variable.assign(value)
        return _means(total)

    def take_sums(self) -> tuple[float, float]:
        """(mean loss, accuracy) since the last call, and reset."""
        loss_sum, correct, n = self.sums.numpy()
        self.sums.assign(tf.zeros(3))
        return float(loss_sum / max(n, 1)), float(correct / max(n, 1))

    def evaluate(self, x, y) -> tuple[float, float]:
        """(mean loss, accuracy) over a whole set in inference mode, in one call; NaN for an
        empty set. The set is cut into equal batches, the last padded (weight 0): one
        compiled shape per set, not two (results do not depend on the batch in inference
        mode)."""
        if len(x) == 0:
            return math.nan, math.nan
        chunk, weights = padded_batches(len(x), self.eval_batch)
        x, y = tf.convert_to_tensor(x, tf.uint8), tf.convert_to_tensor(y, tf.int32)
        return _means(self._eval_many(x, y, chunk, weights))


def padded_batches(n: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices 0..n-1 in as few rows of equal size as keep each row within `batch`, the
    last row padded with index n-1 (fewer than one padding per row), and the 0/1 weights
    that leave the padding out. Equal rows: one compiled shape per set, little waste."""
    rows = -(-n // batch)
    size = -(-n // rows)
    index = np.arange(rows * size)
    return (np.minimum(index, n - 1).astype(np.int32).reshape(rows, size),
            (index < n).astype(np.float32).reshape(rows, size))


def _means(total) -> tuple[float, float]:
    """(mean loss, accuracy) from [loss sum, correct predictions, examples]."""
    loss_sum, correct, n = total.numpy()
    return float(loss_sum / n), float(correct / n)


def eval_batch_size(model: keras.Model) -> int:
    """Examples per inference call: as many as keep the model's widest layer output under
    EVAL_BYTES in float32, between 1,000 and 10,000. Bigger calls spread each call's fixed
    cost (MLP: 40 ms per 10,000 test examples in one call, 57 ms in calls of 1,000);
    the cap keeps the memory peak small. In inference mode results do not depend on it."""
    widest = max(math.prod(layer.output.shape[1:]) for layer in model.layers)
    return int(min(10_000, max(1_000, EVAL_BYTES // (4 * widest))))


def correct(logits, y) -> tf.Tensor:
    """1.0 for each example whose largest output is its label, else 0.0."""
    return tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), y), tf.float32)


def _batch_sums(mean_loss, logits, y):
    n = tf.cast(tf.shape(y)[0], tf.float32)
    return tf.stack([mean_loss * n, tf.reduce_sum(correct(logits, y)), n])
