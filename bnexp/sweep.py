"""A sweep: every run a config expands to, checked first, finished runs skipped, the rest
given to a backend (local, pool or Ray).

Order matters for "nothing half-done": every dataset is loaded and every model built
once before the first run folder is created, so bad input exits 2 with nothing
written. For each config and seed, the latest attempt under the runs folder (found by
the config hash in summary.json) decides what happens: finished (completed or
diverged) is skipped, still running elsewhere is left alone, interrupted is resumed
in its own folder from its last checkpoint; failed or missing runs start afresh.
`force` starts every run afresh. With jobs > 1 this process never imports
TensorFlow: the workers start first, so their slow imports overlap the checks here,
and one of them checks that the models build.
"""

from __future__ import annotations

from pathlib import Path

from bnexp import config as config_mod
from bnexp import data as data_mod
from bnexp import runs
from bnexp.backends import Todo
from bnexp.backends.pool import PoolBackend, threads_per_job, usable_cores
from bnexp.config import RunSpec
from bnexp.errors import BadInput
from bnexp.reporter import Reporter
from bnexp.runs import Outcome, claims
from bnexp.runs.plan import plan, resumable
from bnexp.tfquiet import import_tensorflow
from bnexp.xlacache import xla_cache_dir


def run_all(specs: list[RunSpec], runs_dir: Path, reporter: Reporter, jobs: int = 1,
            force: bool = False, ray=None) -> list[Outcome]:
    """Check, skip or resume what exists, and train the rest; one Outcome per run.

    jobs: processes at once (0 = one per core); a single job trains in this process.
    ray: a backends.ray.RayOptions: the runs go to Ray tasks (the checks run here)."""
    runs.ensure_writable(runs_dir)
    xla_cache_dir()  # the environment is input too: checked here, not in a worker
    backend = None
    if ray is not None:
        from bnexp.backends.ray import RayBackend

        backend = RayBackend(ray)
        backend.check()
        jobs = 1
    jobs = min(jobs or usable_cores(), len(specs))  # 0: one per core (measured)
    devices = config_mod.cpu_devices_needed([spec.config for spec in specs])
    pool = PoolBackend(jobs, threads_per_job(jobs), devices) if jobs > 1 else None
    try:
        datasets = _load_datasets(specs)
        models = _distinct_models(specs, datasets)
        if pool:
            pool.check_buildable(models)
        else:
            _check_here(models, devices)
        outcomes, todo = plan(specs, runs_dir, force, reporter)
        todo = [Todo(spec, force) for spec, _ in todo]
        runs.make_folder(runs_dir, "--runs-dir")  # only now that every check passed
        if backend is None:
            backend = pool or _local(datasets)
        return outcomes + backend.run(todo, runs_dir, reporter)
    finally:
        if pool:
            pool.close()



def _check_here(models, devices: int) -> None:
    import_tensorflow()
    from bnexp.training import distribute

    distribute.prepare_devices(devices)  # before TensorFlow runs its first op
    from bnexp.model.build import check_buildable

    check_buildable(models)


def _local(datasets: dict):
    from bnexp.backends.local import LocalBackend

    return LocalBackend(datasets)


def resume(path: Path, reporter: Reporter) -> Outcome:
    """`bnexp train --resume RUN_DIR`: continue the run; a finished run is left as it is.
    The check that nobody runs it and the summary that says it runs here are one step,
    under the folder's lock: another process at it is one line, exit 2."""
    path = Path(path)
    try:
        with claims.run_folder(path):
            summary, config = resumable(path)  # bad input answered before TensorFlow starts
            if summary["status"] in runs.FINISHED:
                reporter.run_skipped(path, summary["status"])
                return Outcome(path, summary["status"], skipped=True)
            import_tensorflow()
            from bnexp.training import distribute, lifecycle

            distribute.prepare_devices(config_mod.cpu_devices_needed([config]))
            begun = lifecycle.begin_resume(path, None)
    except claims.Taken as e:
        raise BadInput(str(e)) from None
    return lifecycle.train(begun, reporter)


def _data_key(spec: RunSpec) -> str:
    return spec.config.data.model_dump_json()


def _load_datasets(specs: list[RunSpec]) -> dict[str, data_mod.Splits]:
    """Each distinct dataset once: this is where missing or corrupt files are found."""
    datasets = {}
    for spec in specs:
        if _data_key(spec) not in datasets:
            datasets[_data_key(spec)] = data_mod.load(spec.config.data, spec.source)
    return datasets


def _distinct_models(specs, datasets) -> list:
    """(ModelConfig, input shape, the config file that asks for it) triples, each model
    and shape once."""
    seen = {}
    for spec in specs:
        shape = datasets[_data_key(spec)].input_shape
        seen.setdefault((spec.config.model.model_dump_json(), shape),
                        (spec.config.model, shape, spec.source))
    return list(seen.values())
