"""A run's compiled steps: made new (`make_steps`), or taken over from an earlier run
of the same model through a `StepCache` that the process training several runs owns
(a sweep's local backend, a pool or Ray worker) and passes to `fit`.

Tracing a Keras model into its tf.functions costs ~1 s per run (LeNet: training,
evaluation and batch-statistics steps), more than a short run's training. A run whose
model, loss, optimizer (all but the learning rate), XLA mode and input shape equal an
earlier run's in the same cache takes over that run's Steps: the fresh model's
variables (weights, moving statistics, random-seed states) and a fresh optimizer's
(iteration 0, zero slots, this run's learning rate) are copied into the kept ones, so
training starts from exactly the state new Steps would have (tests/test_train.py
compares the two). `fit` copies the trained state back into the model it was given.

The trap: every Python value a trace bakes in must be part of the key (`reuse_key`):
BN's momentum and epsilon, SGD's momentum, the loss; the learning rate is a variable.
"""

from __future__ import annotations

import json
from collections import OrderedDict

import tensorflow as tf

from bnexp.config import Config
from bnexp.training.distribute import MirroredSteps
from bnexp.training.objective import Loss, make_optimizer
from bnexp.training.steps import Steps
from bnexp.training.xla import xla_mode


def make_steps(config: Config, model, input_shape, strategy=None) -> Steps:
    """New Steps for a run: on one device, or split across the strategy's replicas."""
    optimizer = make_optimizer(config.optimizer)
    loss = Loss(config.train.loss, config.train.from_logits)
    if strategy is not None:
        return MirroredSteps(model, optimizer, input_shape, strategy, loss=loss)
    return Steps(model, optimizer, input_shape, jit_compile=xla_mode(config), loss=loss)


def reuse_key(config: Config, input_shape) -> str:
    """What the compiled steps depend on, as text: equal keys, interchangeable steps."""
    return json.dumps({
        "model": config.model.model_dump(mode="json"),
        "optimizer": config.optimizer.model_dump(mode="json", exclude={"learning_rate"}),
        "train": config.train.model_dump(mode="json", include={
            "loss", "from_logits", "deterministic", "precision", "strategy"}),
        "xla": xla_mode(config),
        "input_shape": list(input_shape),
    }, sort_keys=True)


class StepCache:
    """The compiled steps of the last `size` distinct models one process trained: a
    sweep's cells, memory stays small. Runs of a mirrored strategy are never kept."""

    def __init__(self, size: int = 4):
        self.size = size
        self._kept: OrderedDict[str, Steps] = OrderedDict()

    def steps_for(self, config: Config, model, input_shape, strategy=None) -> Steps:
        """Steps to train `model` (fresh from new_model): kept ones of an earlier run with
        the same key, now holding model's state (their own model object, not `model`),
        or new ones for `model` (then kept)."""
        if strategy is not None:
            return make_steps(config, model, input_shape, strategy)
        key = reuse_key(config, input_shape)
        kept = self._kept.get(key)
        if kept is not None and _copy_state(model, make_optimizer(config.optimizer), kept):
            self._kept.move_to_end(key)
            return kept
        steps = make_steps(config, model, input_shape)
        self._kept[key] = steps
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return steps


def _copy_state(model, optimizer, steps: Steps) -> bool:
    """Copy `model`'s variables and the new `optimizer`'s (built for model) into steps'
    own; False, changing nothing, where they do not line up one to one."""
    optimizer.build(model.trainable_variables)
    steps.optimizer.build(steps.model.trainable_variables)  # no-op once it has trained
    sources = [*model.variables, *optimizer.variables]
    targets = [*steps.model.variables, *steps.optimizer.variables]
    if not copy_variables(sources, targets):
        return False
    steps.sums.assign(tf.zeros(3))
    steps.first_bad.assign(-1)
    return True


def copy_variables(sources, targets) -> bool:
    """Assign each source variable to its target; False, changing nothing, where the two
    lists do not line up one to one in shape and dtype."""
    if len(sources) != len(targets) or any(
            tuple(s.shape) != tuple(t.shape) or s.dtype != t.dtype
            for s, t in zip(sources, targets, strict=True)):
        return False
    for source, target in zip(sources, targets, strict=True):
        target.assign(source)
    return True
