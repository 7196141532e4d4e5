"""Probes of gradients and weights while a run trains: grad_norms.csv, weight_norms.csv and
predictiveness.csv (see docs/diagnostics.md for their columns).

- `grad_norms`: per trainable weight, the norm of the training objective's gradient on a
  fixed probe batch (the first data.batch_size training examples), the model in
  training mode: BN normalizes with the probe batch's statistics, as a step would, so
  BN at initialization is seen as it trains (Yang et al. 2019's gradient explosion).
- `weight_norms`: per trainable weight, its norm, and for a kernel followed directly by a
  normalization (its loss is invariant to the kernel's scale) the effective learning rate
  lr / |w|^2 (van Laarhoven 2017; Hoffer et al. 2018).
- `predictiveness`: Santurkar et al. 2018's Fig. 4 on the probe batch: from the weights
  w and the gradient g, a step w - s * lr * g for each scale s, and there the loss and
  how far the gradient moved, |grad(w - s lr g) - g|.

The trap every probe avoids: a forward pass in training mode moves BN's moving averages
and advances the dropout layers' seeds. `_untouched` puts every variable of the model
back as it was, bit for bit, so a run with probes trains exactly as one without.
"""

from __future__ import annotations

import contextlib

import numpy as np
import tensorflow as tf
from tensorflow import keras

from bnexp.model.bn import BatchNorm
from bnexp.model.build import to_unit
from bnexp.model.group_norm import GroupNorm
from bnexp.model.residual import Residual, weight_names
from bnexp.training.objective import KERNEL_LAYERS

GRAD_COLUMNS = ["step", "layer", "weight", "grad_norm"]
WEIGHT_COLUMNS = ["epoch", "layer", "weight", "norm", "scale_invariant", "lr", "effective_lr"]
PREDICTIVENESS_COLUMNS = ["step", "scale", "step_size", "loss", "loss_after", "grad_norm",
                          "grad_change", "smoothness"]
NORMALIZATIONS = (keras.layers.BatchNormalization, BatchNorm, GroupNorm,
                  keras.layers.GroupNormalization)


@contextlib.contextmanager
def _untouched(model: keras.Model):
    """Every variable of the model (weights, moving statistics, seed states) as it was
    when the block began, once it ends."""
    saved = [(v, v.numpy()) for v in model.variables]
    try:
        yield
    finally:
        for variable, value in saved:
            variable.assign(value)


def objective_and_gradients(steps, x, y) -> tuple[float, list[tf.Tensor]]:
    """The training objective (loss, the model's own losses, train.l2's penalty) on uint8
    pixels x in training mode, and its gradient for each variable a step updates. Leaves
    every variable as it was."""
    with _untouched(steps.model), tf.GradientTape() as tape:
        logits = tf.cast(steps.model(to_unit(x), training=True), tf.float32)
        total = steps.loss_fn(y, logits)
        if steps.model.losses:
            total += tf.add_n(steps.model.losses)
        if steps.update.l2 and steps.update.kernels:
            total += steps.update.penalty()
    return float(total), tape.gradient(total, steps.update.variables)


def names_of(model: keras.Model, variables) -> list[tuple[str, str]]:
    """(layer, weight) of each variable, as `bnexp summary` and checkpoint.npz name it."""
    by_id = {id(w): name for w, name in zip(model.weights, weight_names(model), strict=True)}
    out = []
    for v in variables:
        layer, _, weight = by_id.get(id(v), v.name).rpartition("/")
        out.append((layer, weight))
    return out


def grad_norm_rows(step: int, steps, x, y) -> list[dict]:
    """One row per updated weight: the norm of the objective's gradient at this step."""
    _, grads = objective_and_gradients(steps, x, y)
    names = names_of(steps.model, steps.update.variables)
    return [{"step": step, "layer": layer, "weight": weight, "grad_norm": _norm(g)}
            for (layer, weight), g in zip(names, grads, strict=True)]


def scale_invariant(model: keras.Model) -> set[int]:
    """ids of the kernels whose layer is followed directly by a normalization (in its own
    list: a residual branch's layers are a list of their own): the loss does not change
    when the kernel is scaled. BN removes a bias too; group, layer and instance norm do
    only without one, so a kernel before them counts only where its layer has no bias."""
    found = set()

    def visit(layers):
        for layer, after in zip(layers, [*layers[1:], None], strict=False):
            if isinstance(layer, Residual):
                visit(layer.branch)
                visit(layer.shortcut)
            elif isinstance(layer, KERNEL_LAYERS) and isinstance(after, NORMALIZATIONS):
                batch = isinstance(after, keras.layers.BatchNormalization | BatchNorm)
                if batch or not layer.use_bias:
                    found.add(id(layer.kernel))

    visit(list(model.layers))
    return found


def weight_norm_rows(epoch: int, model: keras.Model, lr: float) -> list[dict]:
    """One row per trainable weight: its norm, and lr / norm^2 where it is scale-invariant."""
    invariant = scale_invariant(model)
    names = names_of(model, model.trainable_variables)
    rows = []
    for (layer, weight), w in zip(names, model.trainable_variables, strict=True):
        norm = _norm(w)
        free = id(w) in invariant
        rows.append({"epoch": epoch, "layer": layer, "weight": weight, "norm": norm,
                     "scale_invariant": free, "lr": lr,
                     "effective_lr": lr / norm**2 if free and norm > 0 else None})
    return rows


def predictiveness_rows(step: int, steps, x, y, lr: float, scales) -> list[dict]:
    """Santurkar et al.'s loss landscape and gradient predictiveness at this step: for each
    scale s, the objective at w - s * lr * g and |grad there - g|; smoothness is that
    change over the distance moved (their "effective beta-smoothness" is its maximum)."""
    variables = steps.update.variables
    loss, grads = objective_and_gradients(steps, x, y)
    g_norm = _global_norm(grads)
    rows = []
    for scale in scales:
        size = float(scale) * lr
        with _untouched(steps.model):
            for v, g in zip(variables, grads, strict=True):
                v.assign_sub(tf.cast(size * g, v.dtype))
            after, moved = objective_and_gradients(steps, x, y)
        change = _global_norm([a - g for a, g in zip(moved, grads, strict=True)])
        distance = size * g_norm
        rows.append({"step": step, "scale": float(scale), "step_size": size, "loss": loss,
                     "loss_after": after, "grad_norm": g_norm, "grad_change": change,
                     "smoothness": change / distance if distance > 0 else None})
    return rows


def _norm(t) -> float:
    return float(np.sqrt(np.sum(np.square(np.asarray(tf.convert_to_tensor(t), np.float64)))))


def _global_norm(tensors) -> float:
    return float(np.sqrt(sum(_norm(t) ** 2 for t in tensors)))
