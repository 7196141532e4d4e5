"""bnexp: batch-normalization experiments in TensorFlow, from a YAML config.

From Python or Jupyter (bnexp.api): train, load_run, load_runs, compare, doctor, eval,
report, export_mlflow and the plot_* functions, and BadInput, the error their bad input
raises. They are loaded on first use, so `import bnexp` (and `bnexp --help`) stays
light: no pandas, no TensorFlow.
"""

from bnexp.version import __version__

_API = {"Run", "train", "load_run", "load_runs", "compare", "doctor", "eval", "plot_curves",
        "plot_gap", "plot_steps", "plot_activations", "plot_drift", "plot_features",
        "plot_sweep", "report", "export_mlflow"}

__all__ = ["BadInput", "__version__", *sorted(_API)]


def __getattr__(name: str):
    if name in _API:
        from bnexp import api

        return getattr(api, name)
    if name == "BadInput":
        from bnexp.errors import BadInput

        return BadInput
    raise AttributeError(f"module 'bnexp' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
