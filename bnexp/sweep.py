"""Running every run a config expands to: checks first, finished runs skipped, then train.

Order matters for "nothing half-done": every dataset is loaded and every model built
once before the first run folder is created, so bad input exits 2 with nothing
written. Runs that already finished under the runs folder with the same config hash
(config and seed) are skipped, unless `force`. With jobs > 1 this process never
imports TensorFlow: the worker processes are started first, so their slow TensorFlow
imports overlap the checks here, and one of them checks that the models build.
"""

from __future__ import annotations

from pathlib import Path

from bnexp import config as config_mod
from bnexp import data as data_mod
from bnexp import runs, stop
from bnexp.config import RunSpec
from bnexp.runs import Outcome


def run_all(specs: list[RunSpec], runs_dir: Path, reporter, source: str, jobs: int = 1,
            force: bool = False) -> list[Outcome]:
    """Check, skip what is finished, and train the rest; one Outcome per run."""
    runs.ensure_writable(runs_dir)
    pool = None
    if jobs > 1 and len(specs) > 1:
        from bnexp import parallel

        pool = parallel.Pool(min(jobs, len(specs)), parallel.threads_per_job(jobs))
    try:
        datasets = _load_datasets(specs, source)
        models = _distinct_models(specs, datasets)
        if pool:
            pool.check_buildable(models, source)
        else:
            from bnexp.tfquiet import import_tensorflow

            import_tensorflow()
            from bnexp import train

            train.check_buildable(models, source)
        outcomes, todo = _skip_finished(specs, runs_dir, force, reporter)
        if pool:
            return outcomes + pool.run(todo, runs_dir, reporter, source)
        for spec in todo:
            stop.check()
            splits = datasets[_data_key(spec)]
            outcomes.append(train.run_one(spec, splits, runs_dir, reporter))
        return outcomes
    finally:
        if pool:
            pool.close()


def _data_key(spec: RunSpec) -> str:
    return spec.config.data.model_dump_json()


def _load_datasets(specs: list[RunSpec], source: str) -> dict[str, data_mod.Splits]:
    """Each distinct dataset once: this is where missing or corrupt files are found."""
    datasets = {}
    for spec in specs:
        if _data_key(spec) not in datasets:
            datasets[_data_key(spec)] = data_mod.load(spec.config.data, source)
    return datasets


def _distinct_models(specs, datasets) -> list:
    """(ModelConfig, input shape) pairs, each once."""
    seen = {}
    for spec in specs:
        shape = datasets[_data_key(spec)].input_shape
        seen.setdefault((spec.config.model.model_dump_json(), shape), (spec.config.model, shape))
    return list(seen.values())


def _skip_finished(specs, runs_dir: Path, force: bool, reporter):
    """(outcomes of runs already finished, specs still to run)."""
    finished = {} if force else runs.find_finished(runs_dir)
    outcomes, todo = [], []
    for spec in specs:
        path = finished.get(config_mod.config_hash(spec.config))
        if path is None:
            todo.append(spec)
            continue
        status = runs.read_summary(path)["status"]
        outcomes.append(Outcome(path, status, skipped=True))
        reporter.run_skipped(path, status)
    return outcomes, todo
