"""Configs: the schema (sections: every key and its meaning; schema: the config as a
whole and one run of it), how YAML files become runs (loading), and what --smoke makes
of them (smoke_runs).

`load(path, overrides)` -> [RunSpec], one per sweep cell and seed. No TensorFlow.
"""

from bnexp.config.keys import leaf_keys
from bnexp.config.loading import (
    apply_overrides,
    config_hash,
    expand,
    load,
    load_all,
    read_yaml,
    to_yaml,
    validate,
)
from bnexp.config.presets import batch_stats_eval, has_bn, model_layers
from bnexp.config.schema import (
    DEFAULT_CPU_REPLICAS,
    Config,
    RunSpec,
    cpu_devices_needed,
    input_shape,
)
from bnexp.config.sections import (
    NUM_CLASSES,
    BNConfig,
    DataConfig,
    DiagnosticsConfig,
    ModelConfig,
    OptimizerConfig,
    SweepConfig,
    TrainConfig,
)
from bnexp.config.smoke_runs import smoke, smoke_specs
from bnexp.yamltext import flatten, format_value, parse_yaml

__all__ = [
    "BNConfig",
    "Config",
    "DEFAULT_CPU_REPLICAS",
    "DataConfig",
    "DiagnosticsConfig",
    "ModelConfig",
    "NUM_CLASSES",
    "OptimizerConfig",
    "RunSpec",
    "SweepConfig",
    "TrainConfig",
    "apply_overrides",
    "batch_stats_eval",
    "config_hash",
    "cpu_devices_needed",
    "expand",
    "flatten",
    "format_value",
    "has_bn",
    "input_shape",
    "leaf_keys",
    "load",
    "load_all",
    "model_layers",
    "parse_yaml",
    "read_yaml",
    "smoke",
    "smoke_specs",
    "to_yaml",
    "validate",
]
