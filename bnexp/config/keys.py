"""Looking the schema up: the section at a dotted path and every dotted key. Used by error
messages, sweeps and the reference (config values as YAML shows them: bnexp.yamltext)."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

from bnexp.config.schema import Config


def section_at(loc: tuple) -> type[BaseModel] | None:
    """The schema section at a location, e.g. ('model', 'bn') -> BNConfig."""
    model: Any = Config
    for part in loc:
        info = model.model_fields.get(part) if isinstance(model, type) else None
        if info is None:
            return None
        model = section_type(info.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def section_type(annotation: Any) -> Any:
    """The section class an annotation holds (BNConfig, SweepConfig | None, ...), or None;
    a value that may be written as a string or a mapping (an initializer) is no section."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = getattr(annotation, "__args__", ())
    if written_as_a_name(args):
        return None
    for arg in args:
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def written_as_a_name(args: tuple) -> bool:
    """Whether a union's members include a string (any, or one of a Literal's): then a
    mapping member (an initializer) is a value, not a section."""
    return any(arg is str or typing.get_origin(arg) is typing.Literal for arg in args)


def leaf_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    """Every dotted key a sweep grid or --set may name (sweep itself aside): each value,
    and a section that may be null as a whole too (model.dropout: [null, {rate: 0.5}])."""
    keys = []
    for name, info in model.model_fields.items():
        sub = section_type(info.annotation)
        if name == "sweep":
            continue
        optional = sub and type(None) in getattr(info.annotation, "__args__", ())
        keys += [f"{prefix}{name}"] if optional or not sub else []
        keys += leaf_keys(sub, f"{prefix}{name}.") if sub else []
    return keys
