"""Data-parallel training: `train.strategy: mirrored` with tf.distribute.MirroredStrategy.

Each replica gets a slice of the global batch; the loss is summed per replica and
divided by the global batch size, and Keras' optimizer sums the replicas' gradients,
so the update is the one-device update on the whole batch, except for BN: with
`model.bn.synchronized: false` each replica normalizes its slice by the slice's own
statistics (ghost batches), with true by the global batch's. `MirroredSteps` is that
training step: every replica receives the whole gathered batch and takes its own slice
by replica id (an uneven batch splits as evenly as it can). Evaluation and the
diagnostics run the model outside the replicas, on the mirrored weights, as on one
device.

Without GPUs the CPU is split into `train.replicas` logical devices. The trap:
TensorFlow fixes its devices when it runs its first op, so `prepare_devices` must run
before anything else touches TensorFlow in the process (sweep.run_all and the
workers call it first).
"""

from __future__ import annotations

import contextlib

import tensorflow as tf

from bnexp.config import DEFAULT_CPU_REPLICAS, Config
from bnexp.errors import BadInput
from bnexp.model.build import to_unit
from bnexp.training.objective import Loss, Update
from bnexp.training.steps import Steps, correct


def prepare_devices(cpu_devices: int) -> None:
    """Split the CPU into cpu_devices logical devices (no-op with GPUs or for 0/1)."""
    if cpu_devices <= 1 or tf.config.list_physical_devices("GPU"):
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    # RuntimeError: TensorFlow already started; strategy_for then checks the devices
    with contextlib.suppress(RuntimeError):
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)


def strategy_for(config: Config) -> tf.distribute.Strategy | None:
    """The MirroredStrategy of a mirrored run (None otherwise), over its GPUs or the
    logical CPU devices; BadInput if the process has fewer devices than it asks for."""
    if config.train.strategy != "mirrored":
        return None
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        devices = [d.name for d in gpus][: config.train.replicas or None]
        if config.data.batch_size < len(devices):
            raise BadInput(f"data.batch_size: {config.data.batch_size} is fewer examples "
                           f"than the {len(devices)} replicas (GPUs) need, one each")
        return tf.distribute.MirroredStrategy(devices)
    wanted = config.train.replicas or DEFAULT_CPU_REPLICAS
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(cpus) < wanted:
        raise BadInput(f"train.replicas: {wanted} replicas, but TensorFlow already started "
                       f"with {len(cpus)} CPU device(s) in this process")
    return tf.distribute.MirroredStrategy(
        cpus[:wanted], cross_device_ops=tf.distribute.ReductionToOneDevice())


def scope(strategy: tf.distribute.Strategy | None):
    """strategy.scope(), or a no-op without a strategy: build model and optimizer in it."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


class MirroredSteps(Steps):
    """Steps whose training step splits each batch across the strategy's replicas (the
    module's docstring says how); never XLA-compiled."""

    def __init__(self, model, optimizer, input_shape, strategy: tf.distribute.Strategy,
                 loss: Loss | None = None, update: Update | None = None):
        self.strategy = strategy
        self.smallest_batch = strategy.num_replicas_in_sync
        super().__init__(model, optimizer, input_shape, jit_compile=False, loss=loss,
                         update=update)

    def train_step_body(self, x, y):
        per_replica = self.strategy.run(self._replica_step, args=(to_unit(x), y))
        sums = self.strategy.reduce("SUM", per_replica, axis=None)  # [loss sum, hits, n]
        loss = sums[0] / sums[2]
        # the replicas have applied their gradients: this step's iteration is one back
        self._mark_divergence(loss, self.optimizer.iterations - 1)
        self.sums.assign_add(sums)
        return tf.stack([loss, sums[1] / sums[2]])

    def _replica_step(self, x, y):
        context = tf.distribute.get_replica_context()
        i, k = context.replica_id_in_sync_group, context.num_replicas_in_sync
        n = tf.shape(x)[0]
        start, end = n * i // k, n * (i + 1) // k
        xs, ys = x[start:end], y[start:end]
        with tf.GradientTape() as tape:
            logits = tf.cast(self.model(xs, training=True), tf.float32)
            per_example = self.loss_fn.per_example(ys, logits)
            total = tf.reduce_sum(per_example) / tf.cast(n, tf.float32)
            if self.model.losses:
                total += tf.add_n(self.model.losses) / k
            if self.update.l2 and self.update.kernels:  # summed over the replicas: once
                total += self.update.penalty() / k
        grads = tape.gradient(total, self.update.variables)
        self.optimizer.apply_gradients(zip(grads, self.update.variables, strict=True))
        return tf.stack([tf.reduce_sum(per_example), tf.reduce_sum(correct(logits, ys)),
                         tf.cast(end - start, tf.float32)])
