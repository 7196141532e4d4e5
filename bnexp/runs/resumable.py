"""Whether a run folder can be resumed, checked from its files alone (no TensorFlow), so
`bnexp train --resume` answers bad input before TensorFlow starts."""

from __future__ import annotations

from pathlib import Path

from bnexp import config as config_mod
from bnexp.config import Config
from bnexp.errors import BadInput
from bnexp.runs.reader import read_record


def resumable(path: Path) -> tuple[dict, Config]:
    """(summary, config) of a run that can be resumed; BadInput saying why one cannot."""
    if not (path / "summary.json").is_file():
        raise BadInput(f"{path}: --resume: not a run folder (no summary.json)")
    try:
        record = read_record(path)
    except ValueError as e:
        raise BadInput(f"{path}/summary.json: --resume: {e}") from None
    summary = record.summary
    if record.status == "running":
        raise BadInput(f"{path}: --resume: still running (pid {summary.get('pid')} on "
                       f"{summary.get('host')})")
    (spec,) = config_mod.load(path / "config.yaml")
    if config_mod.config_hash(spec.config) != summary.get("config_hash"):
        raise BadInput(f"{path}/config.yaml: --resume: the config changed since the run "
                       "started; start a new run instead")
    return summary, spec.config
