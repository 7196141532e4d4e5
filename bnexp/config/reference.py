"""The config reference (docs/config.md), generated from the schema's own field docs.

    python -m bnexp.config.reference > docs/config.md

A test regenerates it and fails when docs/config.md differs, so the reference can
never drift from the schema: change a default or a docstring, then run the line above.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from bnexp.config.keys import section_type, written_as_a_name
from bnexp.config.layers import (
    BN,
    Activation,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GroupNorm,
    Initializer,
    InstanceNorm,
    LayerNorm,
    Noise,
    Pool,
)
from bnexp.config.network import GlobalAvgPool, Residual, ScalarBias, ScalarScale
from bnexp.config.schema import Config
from bnexp.config.sections import DEFAULT_HIDDEN
from bnexp.yamltext import format_value

INTRO = """# Config reference

Generated from the schema (`bnexp/config/sections.py`) by
`python -m bnexp.config.reference > docs/config.md`; a test fails when they differ.

Every key has a default; a YAML file only states what differs. Unknown keys, wrong
types and values out of range are errors (exit code 2) naming the file and the key.
`--set KEY=VALUE` overrides any key from the command line; `sweep.grid` takes the
same dotted keys.
"""


LAYERS_INTRO = """## The model as a list of layers

With `model.arch: layers`, `model.layers` lists the model layer by layer, each a
mapping with its `type`; the last layer must give 10 outputs. A `bn` layer's settings
left out come from `model.bn`. `bnexp summary` shows the built model, and the presets
(lenet, mlp) as the same list. Example (notebook 000's order, BN before max-pooling
before ReLU):

```yaml
model:
  arch: layers
  layers:
    - {type: conv, filters: 6, kernel_size: 3}
    - {type: bn, momentum: 0.99, epsilon: 1.0e-3}
    - {type: max_pool, pool_size: 2}
    - {type: activation, activation: relu}
    - {type: flatten}
    - {type: dense, units: 10, kernel_initializer: {name: random_normal, stddev: 0.01}}
```

A residual block holds its branch as a list of its own; the shortcut follows from the
shapes (`identity` needs the branch to keep them; `projection` adds a 1x1 convolution
and the branch's first normalization; `pad` strides and zero-pads). A small ResNet:

```yaml
model:
  arch: layers
  layers:
    - {type: conv, filters: 16, kernel_size: 3, padding: same, use_bias: false}
    - {type: bn}
    - {type: activation, activation: relu}
    - type: residual
      shortcut: projection
      activation: relu
      layers:
        - {type: conv, filters: 32, kernel_size: 3, strides: 2, padding: same, use_bias: false}
        - {type: bn}
        - {type: activation, activation: relu}
        - {type: conv, filters: 32, kernel_size: 3, padding: same, use_bias: false}
        - {type: bn}
    - {type: global_avg_pool}
    - {type: dense, units: 10}
```

`model.arch: resnet` builds He et al.'s CIFAR ResNet this way (`bnexp summary` shows
its blocks).
"""


def markdown() -> str:
    """The whole reference: one table per section, in schema order, then the layers."""
    layers = [_table(f"`type: {_kinds(kind)}`: {_first_line(kind.__doc__)}", "", kind)
              for kind in (Conv, Dense, BN, GroupNorm, LayerNorm, InstanceNorm, Dropout,
                           Noise, Activation, Pool, Flatten, GlobalAvgPool, Residual,
                           ScalarBias, ScalarScale, Initializer)]
    layers[-1] = layers[-1].replace("`type: `: ", "Initializers: ")
    return "\n".join([INTRO, *_section("", Config), LAYERS_INTRO, *layers])


def _kinds(kind) -> str:
    annotation = kind.model_fields["type"].annotation if "type" in kind.model_fields else None
    return " \\| ".join(typing.get_args(annotation)) if annotation else ""


def _section(prefix: str, model: type[BaseModel]) -> list[str]:
    title = f"`{prefix[:-1]}`: {_first_line(model.__doc__)}" if prefix else "Top level"
    tables = [_table(title, prefix, model)]
    for name, info in model.model_fields.items():
        sub = section_type(info.annotation)
        if sub is not None:
            tables += _section(f"{prefix}{name}.", sub)
    return tables


def _table(title: str, prefix: str, model: type[BaseModel]) -> str:
    lines = [f"## {title}", "", "| key | type | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        optional = type(None) in getattr(info.annotation, "__args__", ())
        if _is_section(info.annotation) and not optional:
            continue
        kind = ("mapping (below) or null" if _is_section(info.annotation)
                else _type(info.annotation, info.metadata))
        meaning = " ".join((info.description or "").split()).replace("|", "\\|")
        lines.append(f"| `{prefix}{name}` | {kind} | "
                     f"{_default(prefix + name, info.default)} | {meaning} |")
    return "\n".join(lines) + "\n"


def _is_section(annotation: Any) -> bool:
    """A nested section (data, model.bn, ...), not a value that may also be a mapping."""
    return section_type(annotation) is not None


def _type(annotation: Any, metadata: list) -> str:
    r"""A field's type as a reader writes it: 'auto' \| true \| false, int or null, ..."""
    bounds = []
    for item in metadata:
        for op, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="),
                         ("max_length", "length <=")):
            if getattr(item, op, None) is not None:
                bounds.append(f"{sign} {getattr(item, op)}")
    return _kind(annotation) + (f" ({', '.join(bounds)})" if bounds else "")


def _kind(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(_yaml(v) for v in args)
    if origin is typing.Annotated:
        return _kind(args[0])
    if annotation is bool:
        return "true \\| false"
    if origin in (typing.Union, types.UnionType):
        if written_as_a_name(args) and any(isinstance(a, type) and issubclass(a, BaseModel)
                                           for a in args):
            return "initializer" + (" or null" if type(None) in args else "")
        parts = [_kind(a) for a in args if a is not type(None)]
        return " \\| ".join(parts) + (" or null" if type(None) in args else "")
    if origin is list:
        return f"list of {_kind(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _default(key: str, value: Any) -> str:
    if value is PydanticUndefined:
        return ""
    if key == "model.hidden":
        return "null (" + ", ".join(f"{k} {v}" for k, v in DEFAULT_HIDDEN.items()) + ")"
    return f"`{_yaml(value)}`"


def _yaml(value: Any) -> str:
    return "{}" if value == {} else str(format_value(value))


def _first_line(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


if __name__ == "__main__":
    print(markdown(), end="")
