"""Sweeps on Ray: each run of a sweep is a Ray task; results land in the usual run folders.

The driver (this process) does what a local sweep does first: the datasets load and
the models are checked, and the plan (skip finished, resume interrupted, rerun failed
or missing, by config hash) is made from the runs folder. Only then does it submit
one task per run, asking for `cpus` CPUs (and, on a cluster with GPUs, one GPU per
replica). With a file system the workers share, a task trains straight into the runs
folder; with `copy_back`, it trains into a temporary folder on its node and returns
the files, which the driver writes into the runs folder (a hidden folder renamed into
place: a reader never sees half a run). Ctrl-C cancels the tasks; a cancelled run
records itself as interrupted, so the same command later resumes it (shared file
system) or starts it again (copy_back).

Ray is an optional extra: `pip install 'bnexp[ray]'`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from bnexp import config as config_mod
from bnexp import runs, stop
from bnexp.config import RunSpec
from bnexp.errors import BadInput
from bnexp.runs import Outcome

_SPLITS: dict[str, object] = {}  # per worker process: a sweep usually shares one dataset


def require_ray():
    """The ray module, or BadInput saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BadInput("--backend ray: Ray is not installed; install it with "
                       "pip install 'bnexp[ray]' (or pip install ray)") from None
    return ray


def run(todo: list[tuple[RunSpec, Path | None]], runs_dir: Path, reporter, source: str,
        address: str | None = None, copy_back: bool = False, cpus: int = 1) -> list[Outcome]:
    """Train every (spec, folder to resume or None) of todo as a Ray task; one Outcome each.

    Uses the Ray instance this process is already connected to, else connects to
    `address` ("auto": the running cluster), else starts a local one for the sweep."""
    ray = require_ray()
    if not todo:
        return []
    started = not ray.is_initialized()
    if started:
        _connect(ray, address)
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        task = ray.remote(_task)
        pending = {}
        for spec, resume_path in todo:
            request = {"num_cpus": cpus}
            if gpus:
                request["num_gpus"] = spec.config.train.replicas or gpus
            ref = task.options(**request).remote(
                spec, str(runs_dir.resolve()), source,
                str(resume_path) if resume_path and not copy_back else None, copy_back, cpus)
            pending[ref] = spec
        slots = min(max(1, int(ray.cluster_resources().get("CPU", 1) // cpus)), len(todo))
        reporter.sweep_started(len(todo), slots)
        return _collect(ray, pending, runs_dir, reporter, slots)
    finally:
        if started:
            ray.shutdown()


def check(address: str | None = None, **_) -> None:
    """Before any work: BadInput if Ray is missing or an explicit address is unreachable."""
    require_ray()
    if address and address != "auto":
        _reachable(address)


def _connect(ray, address: str | None) -> None:
    options = {"include_dashboard": False, "log_to_driver": False,
               "logging_level": logging.WARNING}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = address or "a local instance"
        raise BadInput(f"--address {where}: cannot connect to Ray: "
                       f"{str(e).strip().splitlines()[0]}") from None


def _reachable(address: str, seconds: float = 5.0) -> None:
    """BadInput unless HOST:PORT accepts a TCP connection: Ray itself retries an
    unreachable head for minutes before it gives up."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=seconds):
            pass
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise BadInput(f"--address {address}: no Ray head answers there ({reason}); "
                       "start one with `ray start --head` or use --address auto") from None


def _collect(ray, pending: dict, runs_dir: Path, reporter, slots: int) -> list[Outcome]:
    """Wait for the tasks, report each as it ends; on Ctrl-C cancel the rest. "running"
    counts the slots in use: Ray starts a waiting task as soon as one ends."""
    outcomes = []
    for _ in range(slots):
        reporter.sweep_run_started(None)
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            reporter.sweep_tick()
            stop.check()
            for ref in done:
                outcomes.append(_finished(ray, ref, pending.pop(ref), runs_dir, reporter))
                if len(pending) >= slots:
                    reporter.sweep_run_started(None)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)
        with contextlib.suppress(Exception):  # let cancelled runs record "interrupted"
            ray.wait(list(pending), num_returns=len(pending), timeout=30)
        raise
    finally:
        reporter.sweep_finished()
    return outcomes


def _finished(ray, ref, spec: RunSpec, runs_dir: Path, reporter) -> Outcome:
    try:
        result = ray.get(ref)
    except Exception as e:  # noqa: BLE001 - a task that died is a failed run; the sweep goes on
        reporter.sweep_run_error(spec.label, str(e).strip().splitlines()[0])
        return Outcome(None, "failed")
    path = Path(result["path"])
    if result["files"] is not None:
        path = write_back(runs_dir, result["name"], result["files"])
    elif not wait_for(path / "summary.json"):
        reporter.sweep_run_error(spec.label, f"{path}: not visible to the driver; without a "
                                 "shared file system use --copy-back")
        return Outcome(None, "failed")
    summary = runs.read_summary(path)
    reporter.sweep_run_done(path, summary)
    return Outcome(path, summary.get("status", "failed"))


def write_back(runs_dir: Path, name: str, files: dict[str, bytes]) -> Path:
    """Write a run folder's files under runs_dir: into a hidden folder, then renamed into
    place whole. A name taken already gets a -k suffix."""
    hidden = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=runs_dir))
    for relative, content in files.items():
        target = hidden / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    for k in range(10_000):
        final = runs_dir / (name if k == 0 else f"{name}-{k}")
        if not final.exists():
            os.rename(hidden, final)
            return final
    raise RuntimeError(f"{runs_dir}: no free run folder name for {name}")


def _task(spec: RunSpec, runs_dir: str, source: str, resume_path: str | None, copy_back: bool,
          threads: int) -> dict:
    """One run in a Ray worker: train, and return where it went (and its files with
    copy_back). Runs in the worker process, which imports TensorFlow on its first task."""
    from bnexp.tfquiet import import_tensorflow

    tf = import_tensorflow()
    with contextlib.suppress(RuntimeError):  # only before TensorFlow's first op
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    from bnexp import data, distribute, train

    distribute.prepare_devices(config_mod.cpu_devices_needed([spec.config]))
    key = spec.config.data.model_dump_json()
    if key not in _SPLITS:
        _SPLITS.clear()
        _SPLITS[key] = data.load(spec.config.data, source)
    splits = _SPLITS[key]
    reporter = _Silent()
    if resume_path:
        outcome = train.resume_run(Path(resume_path), splits, reporter)
        return {"path": str(outcome.path), "name": outcome.path.name, "files": None}
    if not copy_back:
        outcome = train.run_one(spec, splits, Path(runs_dir), reporter)
        return {"path": str(outcome.path), "name": outcome.path.name, "files": None}
    scratch = Path(tempfile.mkdtemp(prefix="bnexp-ray-"))
    try:
        outcome = train.run_one(spec, splits, scratch, reporter)
        files = {str(p.relative_to(outcome.path)): p.read_bytes()
                 for p in sorted(outcome.path.rglob("*")) if p.is_file()}
        return {"path": str(outcome.path), "name": outcome.path.name, "files": files}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Silent:
    """A reporter that says nothing: progress shows on the driver, per finished run."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def wait_for(path: Path, seconds: float = 5.0) -> bool:
    """True once path exists (a shared file system may show a file late)."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
