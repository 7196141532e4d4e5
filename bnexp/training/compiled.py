"""Compiled steps kept for the next run of the same model: a process that trains several
runs (a sweep worker, `--jobs 1`, a notebook) traces and compiles each distinct model
once, not once per run.

Tracing a Keras model into its tf.functions costs ~1 s per run (LeNet: training,
evaluation and batch-statistics steps), more than a short run's training. A run whose
model, loss, optimizer (all but the learning rate), XLA mode and input shape equal an
earlier run's in this process takes over that run's Steps: the fresh model's variables
(weights, moving statistics, random-seed states) and a fresh optimizer's (iteration 0,
zero slots, this run's learning rate) are copied into the kept ones, so training starts
from exactly the state new Steps would have (tests/test_train.py compares the two).

The trap: every Python value a trace bakes in must be part of the key (`reuse_key`):
BN's momentum and epsilon, SGD's momentum, the loss; the learning rate is a variable.
"""

from __future__ import annotations

import json
from collections import OrderedDict

import tensorflow as tf

from bnexp.config import Config
from bnexp.training.steps import Steps, make_optimizer, make_steps, xla_mode

KEPT = 4  # distinct models kept per process: a sweep's cells, memory stays small
_kept: OrderedDict[str, Steps] = OrderedDict()


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


def steps_for(config: Config, model, input_shape, strategy=None) -> Steps:
    """The Steps to train `model` (fresh from new_model): kept ones of an earlier run
    with the same key, holding model's state, or new ones (then kept). A mirrored run
    (strategy given) always gets new ones."""
    if strategy is not None:
        return make_steps(config, model, input_shape, strategy)
    key = reuse_key(config, input_shape)
    kept = _kept.get(key)
    if kept is not None and _adopt(kept, model, make_optimizer(config.optimizer)):
        _kept.move_to_end(key)
        return kept
    steps = make_steps(config, model, input_shape)
    _kept[key] = steps
    while len(_kept) > KEPT:
        _kept.popitem(last=False)
    return steps


def forget() -> None:
    """Drop every kept Steps: the next run traces and compiles afresh."""
    _kept.clear()


def _adopt(steps: Steps, model, optimizer) -> bool:
    """Copy `model`'s variables and the new `optimizer`'s (built for model) into steps'
    own; False, changing nothing, where they do not line up one to one."""
    optimizer.build(model.trainable_variables)
    steps.optimizer.build(steps.model.trainable_variables)  # no-op once it has trained
    sources = [*model.variables, *optimizer.variables]
    targets = [*steps.model.variables, *steps.optimizer.variables]
    if len(sources) != len(targets) or any(
            tuple(s.shape) != tuple(t.shape) or s.dtype != t.dtype
            for s, t in zip(sources, targets, strict=True)):
        return False
    for source, target in zip(sources, targets, strict=True):
        target.assign(source)
    steps.sums.assign(tf.zeros(3))
    steps.first_bad.assign(-1)
    return True
