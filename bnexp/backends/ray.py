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
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bnexp import runs
from bnexp.backends import Todo, worker
from bnexp.config import RunSpec, cpu_devices_needed
from bnexp.errors import BadInput
from bnexp.reporter import NullReporter, Reporter
from bnexp.runs import Outcome
from bnexp.training import stop

_WORKER = worker.Worker()  # this Ray worker process's: its runs share a dataset and steps


@dataclass(frozen=True)
class RayOptions:
    """`bnexp train --backend ray`'s options."""

    address: str | None = None  # the cluster ("auto": the running one); None: start one
    copy_back: bool = False  # workers send the run folder's files back to the driver
    cpus: int = 1  # CPUs each run asks for


def require_ray():
    """The ray module, or BadInput saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BadInput("--backend ray: Ray is not installed; install it with "
                       "pip install 'bnexp[ray]' (or pip install ray)") from None
    return ray


class RayBackend:
    """Each run a Ray task. Uses the Ray instance this process is already connected to,
    else connects to options.address ("auto": the running cluster), else starts a local
    one for the sweep."""

    def __init__(self, options: RayOptions):
        self.options = options

    def check(self) -> None:
        """Before any work: BadInput if Ray is missing or an explicit address is unreachable."""
        require_ray()
        if self.options.address and self.options.address != "auto":
            _reachable(self.options.address)

    def run(self, todo: list[Todo], runs_dir: Path, reporter: Reporter) -> list[Outcome]:
        ray = require_ray()
        if not todo:
            return []
        options = self.options
        started = not ray.is_initialized()
        if started:
            _connect(ray, options.address)
        try:
            check_fits(ray, options.cpus)
            gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
            task = ray.remote(_task)
            pending = {}
            for spec, fresh in todo:
                request = {"num_cpus": options.cpus}
                if gpus:
                    request["num_gpus"] = spec.config.train.replicas or gpus
                ref = task.options(**request).remote(
                    spec, str(runs_dir.resolve()), options.copy_back, options.cpus, fresh)
                pending[ref] = spec
            slots = min(max(1, int(ray.cluster_resources().get("CPU", 1) // options.cpus)),
                        len(todo))
            reporter.sweep_started(len(todo), slots)
            return _collect(ray, pending, runs_dir, reporter, slots)
        finally:
            if started:
                ray.shutdown()


def check_fits(ray, cpus: int) -> None:
    """BadInput, before any task is submitted, where no node of the cluster has `cpus`
    CPUs: a run is one task on one node, and Ray waits for ever for a node that can take
    it (`--cpus 64` on a 2-core machine hung, its Ray left running)."""
    largest = max((node.get("Resources", {}).get("CPU", 0) for node in ray.nodes()
                   if node.get("Alive")), default=0)
    if largest < cpus:
        raise BadInput(f"--cpus {cpus}: no node of this Ray cluster has {cpus} CPUs (the "
                       f"largest has {largest:g}); each run is one task on one node: ask "
                       f"for at most {largest:g}")


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
    if result["skipped"]:  # claimed or finished by another process meanwhile
        path = Path(result["path"]) if result["path"] else None
        reporter.run_skipped(path, result["status"], spec.label)
        return Outcome(path, result["status"], skipped=True)
    path = Path(result["path"])
    if result["files"] is not None:
        path = write_back(runs_dir, result["name"], result["files"])
    elif not wait_for(path / "summary.json"):
        reporter.sweep_run_error(spec.label, f"{path}: not visible to the driver; without a "
                                 "shared file system use --copy-back")
        return Outcome(None, "failed")
    record = runs.read_record(path)
    reporter.sweep_run_done(path, record.summary)
    return Outcome(path, record.status)


def write_back(runs_dir: Path, name: str, files: dict[str, bytes]) -> Path:
    """Write a run folder's files under runs_dir: into a hidden folder, then renamed into
    place whole. A name taken already gets a -k suffix."""
    hidden = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=runs_dir))
    for relative, content in files.items():
        target = hidden / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return runs.move_into(runs_dir, hidden, name)


def _task(spec: RunSpec, runs_dir: str, copy_back: bool, threads: int,
          fresh: bool = False) -> dict:
    """One run in a Ray worker: train, and return where it went (and its files with
    copy_back). Runs in the worker process, which imports TensorFlow on its first task."""
    worker.start(threads, cpu_devices_needed([spec.config]))
    target = Path(tempfile.mkdtemp(prefix="bnexp-ray-")) if copy_back else Path(runs_dir)
    try:
        outcome = _WORKER.train(spec, target, NullReporter(), fresh)
        if outcome.skipped:
            return {"path": outcome.path and str(outcome.path), "status": outcome.status,
                    "skipped": True}
        files = None
        if copy_back:
            files = {str(p.relative_to(outcome.path)): p.read_bytes()
                     for p in sorted(outcome.path.rglob("*")) if p.is_file()}
        return {"path": str(outcome.path), "name": outcome.path.name, "files": files,
                "skipped": False}
    finally:
        if copy_back:
            shutil.rmtree(target, ignore_errors=True)


def wait_for(path: Path, seconds: float = 5.0) -> bool:
    """True once path exists (a shared file system may show a file late)."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
