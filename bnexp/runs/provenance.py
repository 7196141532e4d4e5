"""Where a run came from, recorded in its summary.json so a report can say how to run it
again: the config file and --set overrides it was started with (`invocation`), and the
machine that trained it (`machine`: CPU model, cores, GPUs). No TensorFlow here: the
training process passes its GPUs' names in.

The trap: the config file is recorded by its absolute path as it was when the run
started; it may have been edited or moved since. The run's own config.yaml is the
resolved config, so `bnexp train RUN/config.yaml` always trains the same config again
(same config hash); the report gives both.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def invocation(source: str, overrides: dict, runs_dir: Path) -> dict:
    """{config_file: absolute path or None (a config given from Python), set: the --set
    overrides as `key=value` (JSON values, which --set reads back as given), runs_dir}."""
    config_file = _absolute(source) if Path(source).is_file() else None
    return {"config_file": config_file,
            "set": [f"{key}={json.dumps(value)}" for key, value in overrides.items()],
            "runs_dir": _absolute(str(runs_dir))}


def machine(gpus: list[str]) -> dict:
    """{cpu: the CPU's model name, cores: the cores this process may use, gpus: names}."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return {"cpu": cpu_model(), "cores": cores, "gpus": gpus}


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo's `model name`, else what Python knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _absolute(path: str) -> str | None:
    try:
        return os.path.abspath(path)
    except OSError:  # the working folder was deleted
        return path if os.path.isabs(path) else None
