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
BN's momentum and epsilon, SGD's momentum and nesterov, weight decay, train.l2, what
train.trainable freezes, the loss. A constant learning rate is a variable (a sweep over
it reuses the steps); a schedule's numbers (its rate, the run's steps) are traced in.
"""

from __future__ import annotations

import json
from collections import OrderedDict

import tensorflow as tf

from bnexp.config import Config
from bnexp.training.distribute import MirroredSteps
from bnexp.training.freezing import trained_variables, update_for
from bnexp.training.objective import Loss, make_optimizer, scheduled, steps_per_epoch
from bnexp.training.steps import Steps
from bnexp.training.xla import xla_mode


def make_steps(config: Config, model, input_shape, strategy=None,
               train_size: int | None = None) -> Steps:
    """New Steps for a run: on one device, or split across the strategy's replicas.
    train_size (training examples) sets the steps per epoch a schedule counts in."""
    optimizer = new_optimizer(config, train_size, strategy)
    loss = Loss(config.train.loss, config.train.from_logits)
    update = update_for(config, model)
    if strategy is not None:
        return MirroredSteps(model, optimizer, input_shape, strategy, loss=loss, update=update)
    return Steps(model, optimizer, input_shape, jit_compile=xla_mode(config), loss=loss,
                 update=update)


def new_optimizer(config: Config, train_size: int | None, strategy=None):
    """The run's optimizer, its schedule (if any) over the run's steps."""
    return make_optimizer(config.optimizer, _per_epoch(config, train_size, strategy),
                          config.train.epochs)


def _per_epoch(config: Config, train_size: int | None, strategy=None) -> int | None:
    if train_size is None:
        return None
    smallest = strategy.num_replicas_in_sync if strategy is not None else 1
    return steps_per_epoch(train_size, config.data.batch_size, smallest)


def reuse_key(config: Config, input_shape, train_size: int | None = None) -> str:
    """What the compiled steps depend on, as text: equal keys, interchangeable steps."""
    schedule = scheduled(config.optimizer)
    return json.dumps({
        "model": config.model.model_dump(mode="json"),
        "optimizer": config.optimizer.model_dump(
            mode="json", exclude=None if schedule else {"learning_rate"}),
        "train": config.train.model_dump(mode="json", include={
            "loss", "from_logits", "deterministic", "precision", "strategy", "l2",
            "trainable"}),
        # a schedule traces the run's length in steps
        "steps": [_per_epoch(config, train_size), config.train.epochs] if schedule else None,
        "xla": xla_mode(config),
        "input_shape": list(input_shape),
    }, sort_keys=True)


class StepCache:
    """The compiled steps of the last `size` distinct models one process trained: a
    sweep's cells, memory stays small. Runs of a mirrored strategy are never kept."""

    def __init__(self, size: int = 4):
        self.size = size
        self._kept: OrderedDict[str, Steps] = OrderedDict()

    def steps_for(self, config: Config, model, input_shape, strategy=None,
                  train_size: int | None = None) -> Steps:
        """Steps to train `model` (fresh from new_model): kept ones of an earlier run with
        the same key, now holding model's state (their own model object, not `model`),
        or new ones for `model` (then kept)."""
        if strategy is not None:
            return make_steps(config, model, input_shape, strategy, train_size)
        key = reuse_key(config, input_shape, train_size)
        kept = self._kept.get(key)
        if kept is not None and _copy_state(model, new_optimizer(config, train_size),
                                            trained_variables(config, model), kept):
            self._kept.move_to_end(key)
            return kept
        steps = make_steps(config, model, input_shape, None, train_size)
        self._kept[key] = steps
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return steps


def _copy_state(model, optimizer, trained: list, steps: Steps) -> bool:
    """Copy `model`'s variables and the new `optimizer`'s (built for model's `trained`
    variables, as the steps' own was built in Steps) into steps' own; False, changing
    nothing, where they do not line up one to one."""
    optimizer.build(trained)
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
