"""Two logical CPU replicas: synchronized BN (scratch and Keras) equals BN over the
whole batch, per-replica BN equals ghost batches; run by tests/test_replicas.py in its
own process (the devices must be split before TensorFlow starts)."""

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tensorflow import keras  # noqa: E402 - after the devices are split

from bnexp.model.bn import BatchNorm, batch_norm_numpy  # noqa: E402

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
x = rng.normal(2.0, 3.0, size=(8, 5, 5, 3)).astype(np.float32)
half = len(x) // 2


def run(layer_factory):
    with strategy.scope():
        layer = layer_factory()
        layer.build(x.shape)
        layer.gamma.assign([1.5, 0.5, 2.0])
        layer.beta.assign([0.1, -0.2, 0.3])
    slices = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(x[ctx.replica_id_in_sync_group * half:
                                  (ctx.replica_id_in_sync_group + 1) * half]))
    step = tf.function(lambda xs: layer(xs, training=True))
    outputs = strategy.experimental_local_results(strategy.run(step, args=(slices,)))
    return (np.concatenate([o.numpy() for o in outputs]), layer.moving_mean.numpy(),
            layer.moving_variance.numpy())


gamma, beta = np.array([1.5, 0.5, 2.0]), np.array([0.1, -0.2, 0.3])
args = dict(momentum=0.9, epsilon=1e-3, training=True)
whole = batch_norm_numpy(x.astype(np.float64), gamma, beta, np.zeros(3), np.ones(3), **args)
ghost = batch_norm_numpy(x.astype(np.float64), gamma, beta, np.zeros(3), np.ones(3),
                         virtual_batch_size=half, **args)

for name, factory, expected in [
    ("scratch synchronized",
     lambda: BatchNorm(momentum=0.9, epsilon=1e-3, synchronized=True), whole),
    ("scratch per replica",
     lambda: BatchNorm(momentum=0.9, epsilon=1e-3, synchronized=False), ghost),
    ("keras synchronized", lambda: keras.layers.BatchNormalization(
        momentum=0.9, epsilon=1e-3, synchronized=True), whole),
]:
    got = run(factory)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=name)
    print("ok", name)
