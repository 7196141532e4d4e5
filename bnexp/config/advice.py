"""Warnings about a config that runs but is probably not what its author meant: a loss
that reads the outputs wrongly, a BN fault or behaviour chosen on purpose. Each is one
line naming the key, what is wrong and the usual choice; a run records them as notes
(train.log, summary.json) when it starts. No TensorFlow here.
"""

from __future__ import annotations

from bnexp.config.presets import model_layers
from bnexp.config.schema import Config

BEHAVIOUR_NOTES = {
    "moving_stats_in_training": "training normalizes with the moving statistics, not the "
    "batch's (d2l's exercise)",
    "batch_stats_at_inference": "inference normalizes with each test batch's own statistics, "
    "so a prediction depends on the rest of its batch",
    "frozen_moving_stats": "the moving statistics never move from their initial values",
}


def notes_for(config: Config) -> list[str]:
    """Every warning for `config`, in a stable order."""
    return _output_warnings(config) + _bn_warnings(config)


def output_activation(config: Config) -> str | None:
    """The activation the model's outputs go through last (None: they are raw logits)."""
    last = model_layers(config.model)[-1]
    if last.type == "activation":
        return None if last.activation == "linear" else last.activation
    return getattr(last, "activation", None)


def _output_warnings(config: Config) -> list[str]:
    act, logits = output_activation(config), config.train.from_logits
    if logits and act in ("softmax", "sigmoid"):
        return [f"train.from_logits: true, but the last layer applies {act}: the loss "
                "applies softmax once more to probabilities; the usual choice: no activation "
                "on the last layer with from_logits: true"]
    if not logits and act is None:
        return ["train.from_logits: false, but the last layer has no softmax: the loss takes "
                "raw outputs for probabilities (Keras rescales them to sum to 1 and clips "
                "them); the usual choice: from_logits: true, or a softmax last layer"]
    if not logits and act != "softmax":
        return [f"train.from_logits: false with a {act} output: {act} outputs are not a "
                "distribution over the classes; the usual choice: a softmax last layer "
                "(or none, with from_logits: true)"]
    return []


def _bn_warnings(config: Config) -> list[str]:
    out = []
    for layer in model_layers(config.model):
        if layer.type != "bn":
            continue
        if layer.fault == "mxnet_moving_average":
            out.append(f"{layer.name}: fault mxnet_moving_average: notebook 004's broken "
                       "update (moving_mean += momentum - momentum * batch variance; the moving "
                       "variance never updated) reproduced on purpose; inference will use "
                       "wrong statistics; the usual choice: fault: null")
        if layer.behaviour in BEHAVIOUR_NOTES:
            out.append(f"{layer.name}: behaviour {layer.behaviour}: "
                       f"{BEHAVIOUR_NOTES[layer.behaviour]}; the usual choice: standard")
    return _collapse(out)


def _collapse(lines: list[str]) -> list[str]:
    """The same warning for several layers once, naming them all."""
    by_text: dict[str, list[str]] = {}
    for line in lines:
        name, _, text = line.partition(": ")
        by_text.setdefault(text, []).append(name)
    return [f"{', '.join(names)}: {text}" for text, names in by_text.items()]
